//! Answering one request whose framing was accepted and whose body the edge
//! has read: route it, check its signature, read its parameters, tell what
//! kind of request it is, choose the answer, and log it.
//!
//! An inbound message gets the reply its `Body` chooses, and so does a
//! fallback request for one (logged as a warning) and a check that is not
//! from Twilio (no `MessageSid`, no `From`). A delivery status, at
//! `/whatsapp` or `/status`, gets an empty `<Response />`, never a reply.
//!
//! [`Webhook::answer`] says *what* to answer, as an [`Answer`]: a TwiML
//! document (rendered when the webhook was built, for a fixed reply) or a
//! short text. It never writes anything itself: the edge, which sees a
//! request through the [`Request`] trait, decides where and when the answer
//! is sent, and writes its bytes.

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use log::{Level, debug, info, warn};

use crate::config::Config;
use crate::events;
use crate::handler::{self, Handler, Message};
use crate::later::Sender;
use crate::logging::{self, Escaped};
use crate::ngrok::Tunnels;
use crate::program::{self, Program};
use crate::repeats::Repeats;
use crate::replies::{Fixed, Named, Rules};
use crate::replying::{Later, Limits, Replying, STOP_LIMIT};
use crate::routes::STATUS_PATH;
use crate::routes::{self, Route, WEBHOOK_PATH};
use crate::twilio::params::{self, Kind, Params};
use crate::twilio::signature::{
    self, AUTH_TOKEN_VAR, Keys, Payload, SETTINGS_HEADER, SHARED_KEY_VAR, SIGNATURE_HEADER, Verdict,
};
use crate::twilio::twiml::Reply;

/// A request whose framing was accepted and whose body has been read, as
/// the app sees it; the edge implements it.
pub trait Request {
    /// The method, as sent (`GET`, `POST`...).
    fn method(&self) -> &str;
    /// The request target as received: path and query string.
    fn target(&self) -> &str;
    /// The value of the first header called `name` (compared ignoring case).
    fn header(&self, name: &str) -> Option<&str>;
    /// The body, whole.
    fn body(&self) -> &[u8];
}

/// What to answer a request. The edge writes the bytes: the status line,
/// `Date`, `Content-Type`, `Content-Length`, any `Allow`, and the body.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer<'a> {
    /// `200 OK` with a TwiML document (`text/xml`).
    Twiml(Cow<'a, [u8]>),
    /// A short `text/plain` answer.
    Text {
        /// The status code.
        status: u16,
        /// The body.
        text: &'static str,
        /// The `Allow` header of a `405`: the methods the path serves.
        allow: Option<&'static str>,
    },
    /// The answer comes later, once a handler has run (or its time limit
    /// has passed): `200` with TwiML then.
    Later(Later),
    /// `200` with `<Response />` and the [`REPLY_LATER_HEADER`]: no message
    /// now; the reply goes out later, through the Messages API.
    ReplyLater,
}

/// The header an answer with no message carries when the reply goes out
/// later through the Messages API, so that `check` can say so: its name and
/// value.
pub const REPLY_LATER_HEADER: (&str, &str) = (
    "X-Whatsapp-Webhook-Reply",
    "later, through the Messages API",
);

/// `<Response />`, with the declaration the helper libraries write.
pub const EMPTY_TWIML: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Response />"#;

impl Answer<'_> {
    /// A plain-text answer without `Allow`.
    pub const fn text(status: u16, text: &'static str) -> Answer<'static> {
        Answer::Text {
            status,
            text,
            allow: None,
        }
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        match self {
            Answer::Twiml(_) | Answer::Later(_) | Answer::ReplyLater => 200,
            Answer::Text { status, .. } => *status,
        }
    }

    /// The body; none yet for an answer to come.
    pub fn body(&self) -> &[u8] {
        match self {
            Answer::Twiml(document) => document,
            Answer::Text { text, .. } => text.as_bytes(),
            Answer::Later(_) => b"",
            Answer::ReplyLater => EMPTY_TWIML.as_bytes(),
        }
    }
}

const HEALTH: Answer<'static> = Answer::text(200, "ok\n");
const NOT_FOUND: Answer<'static> = Answer::text(404, "not found\n");
const FORBIDDEN: Answer<'static> = Answer::text(403, "invalid or missing Twilio signature\n");
const NOT_A_STATUS: Answer<'static> =
    Answer::text(400, "not a status callback: no MessageStatus\n");

/// The webhook: the handler that answers messages, every fixed reply
/// rendered, and the signature settings, built once.
pub struct Webhook {
    handler: Arc<dyn Handler>,
    /// What a check (no `MessageSid`) gets when the handler runs code.
    default: Fixed,
    /// Runs the handler, started at the first message it is needed for.
    replying: OnceLock<Option<Replying>>,
    fallback: handler::Reply,
    /// Sends replies that come after the answer, with credentials.
    sender: Option<Arc<Sender>>,
    /// ngrok's tunnels to this server, looked for without `PUBLIC_URL`.
    tunnels: Option<Arc<Tunnels>>,
    limits: Limits,
    repeats: Repeats,
    keys: Keys,
    public_url: Option<String>,
    /// The answer to a delivery status: `<Response />`.
    acknowledged: Box<[u8]>,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("limits", &self.limits)
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

impl Webhook {
    /// The webhook `config` describes: keyword rules, then the reply
    /// program or the fixed reply. Logs what the configuration means for
    /// the messages to come.
    pub fn new(config: &Config) -> Webhook {
        let otherwise: Box<dyn Handler> = match &config.reply_command {
            Some(command) => Box::new(Program::new(command, crate::config::SECRET_VARS)),
            None => Box::new(Fixed::new(&config.reply)),
        };
        Webhook::with_handler(config, otherwise)
    }

    /// The webhook of `config`, with `otherwise` answering the messages no
    /// keyword rule does (instead of the fixed reply or reply program of
    /// `config`).
    pub fn with_handler(config: &Config, otherwise: Box<dyn Handler>) -> Webhook {
        log_settings(config);
        let handler: Arc<dyn Handler> = if config.rules.is_empty() {
            Arc::from(otherwise)
        } else {
            Arc::new(Rules::new(&config.rules, otherwise))
        };
        Webhook {
            handler,
            default: Fixed::new(&config.reply),
            replying: OnceLock::new(),
            fallback: config.reply_fallback.clone().into(),
            tunnels: match (&config.public_url, &config.ngrok_api) {
                (None, Some(api)) => Some(Tunnels::new(api, config.port)),
                _ => None,
            },
            sender: config.credentials.clone().map(|credentials| {
                let status_callback = config
                    .public_url
                    .as_ref()
                    .map(|public| format!("{public}{STATUS_PATH}"));
                Arc::new(Sender::new(credentials, status_callback))
            }),
            limits: Limits {
                workers: config.reply_workers,
                timeout: config.reply_timeout,
                // Without a way to send it later, the reply is the answer.
                answer_within: if config.credentials.is_some() {
                    config.answer_within.min(config.reply_timeout)
                } else {
                    config.reply_timeout
                },
            },
            repeats: Repeats::new(),
            keys: config.keys.clone(),
            public_url: config.public_url.clone(),
            acknowledged: Reply::default().render().into_boxed_slice(),
        }
    }

    /// Asks ngrok's agent, on a thread of its own, for the tunnels to this
    /// server, unless `PUBLIC_URL` is set or asking is off.
    pub fn look_for_tunnels(&self) {
        if let Some(tunnels) = &self.tunnels {
            tunnels.ask();
        }
    }

    /// At a stop that began at `began`: waits until every request waiting
    /// for its reply has had an answer and, when late replies are sent,
    /// every handler still running has ended and its reply gone out (within
    /// its time limit, and [`STOP_LIMIT`] at most); then stops the reply
    /// programs still running, and says how many late replies went out.
    pub fn finish(&self, began: Instant) {
        if let Some(Some(replying)) = self.replying.get() {
            let (waiting, running) = replying.finish(began + STOP_LIMIT);
            if waiting > 0 {
                warn!("{waiting} requests were still waiting for their reply at the stop");
            }
            if let Some(sender) = replying.sender() {
                sender.count_unsent(running);
                let (sent, unsent) = sender.counts();
                let level = if unsent > 0 { Level::Warn } else { Level::Info };
                log::log!(
                    level,
                    "stopping: {sent} later replies were sent through the Messages API, {unsent} \
                     could not be{}",
                    if running > 0 {
                        format!(
                            " ({running} still running {}s after the stop began)",
                            STOP_LIMIT.as_secs()
                        )
                    } else {
                        String::new()
                    }
                );
            }
        }
        program::stop_all();
    }

    fn replying(&self) -> Option<&Replying> {
        self.replying
            .get_or_init(|| {
                let started = Replying::start(
                    Arc::clone(&self.handler),
                    self.fallback.clone(),
                    self.limits,
                    self.sender.clone(),
                );
                match started {
                    Ok(replying) => Some(replying),
                    Err(error) => {
                        log::error!(
                            "cannot start the reply workers: {error}; every message gets the \
                             fallback reply"
                        );
                        None
                    }
                }
            })
            .as_ref()
    }

    /// The answer to `request`.
    pub fn answer(&self, request: &impl Request) -> Answer<'_> {
        match routes::route(request.method(), request.target()) {
            Route::Webhook => self.webhook(request, false),
            Route::Status => self.webhook(request, true),
            Route::Health => HEALTH,
            Route::NotFound => NOT_FOUND,
            Route::MethodNotAllowed { allow } => Answer::Text {
                status: 405,
                text: "method not allowed\n",
                allow: Some(allow),
            },
        }
    }

    fn webhook(&self, request: &impl Request, status_only: bool) -> Answer<'_> {
        let (path, query) = routes::split_url(request.target());
        // A request through a tunnel not known yet: ask ngrok's agent, in the
        // background, for the URL Twilio calls.
        if let Some(tunnels) = &self.tunnels {
            let host = request
                .header("X-Forwarded-Host")
                .or(request.header("Host"));
            if let Some(host) = host.filter(|host| !is_local(host) && !tunnels.knows_host(host)) {
                tunnels.ask_about(host);
            }
        }
        let is_form = request.header("Content-Type").is_some_and(params::is_form);
        if !self.keys.is_empty() {
            let payload = if is_form {
                Payload::Form(request.body())
            } else if request.target().contains("bodySHA256") {
                // Only a bodySHA256 in the URL makes a body that is not a
                // form matter.
                Payload::Raw(request.body())
            } else {
                Payload::Nothing
            };
            if let Err(rejection) = self.check_signature(request, payload) {
                warn!(
                    "rejected {} {}: {rejection}",
                    Escaped(request.method()),
                    Escaped(path)
                );
                return FORBIDDEN;
            }
        }
        let form = is_form.then_some(request.body());
        let params = Params::parse(query.as_bytes(), form);
        log_received(request, &params, query, form);
        match params.kind() {
            Kind::Status => {
                let status = events::Status { params: &params };
                let level = if status.failed() {
                    Level::Warn
                } else {
                    Level::Info
                };
                logging::emit(level, module_path!(), &status);
                Answer::Twiml(Cow::Borrowed(&self.acknowledged))
            }
            _ if status_only => NOT_A_STATUS,
            Kind::Check => {
                let chosen = self
                    .handler
                    .choose_at_once(params.body)
                    .unwrap_or_else(|| self.default.chosen());
                info!(
                    "{} {} without MessageSid or From: a check, not a message from Twilio; \
                     answered with the {}",
                    Escaped(request.method()),
                    Escaped(path),
                    Named(chosen.rule)
                );
                Answer::Twiml(Cow::Borrowed(chosen.twiml))
            }
            Kind::Message | Kind::Fallback => {
                let chosen = self.handler.choose_at_once(params.body);
                let repeat = params
                    .message_sid
                    .is_some_and(|sid| self.repeats.seen_before(sid.raw()));
                let message = events::Message {
                    params: &params,
                    rule: chosen.and_then(|chosen| chosen.rule),
                    repeat,
                };
                let level = if message.is_fallback() {
                    Level::Warn
                } else {
                    Level::Info
                };
                logging::emit(level, module_path!(), &message);
                match (chosen, params.message_sid) {
                    (Some(chosen), _) => Answer::Twiml(Cow::Borrowed(chosen.twiml)),
                    // Only a message from Twilio runs the handler, once.
                    (None, Some(sid)) => match self.replying() {
                        Some(replying) => {
                            let message = Message::from_params(&params, repeat);
                            match replying.answer(sid.decode().as_bytes(), message) {
                                Ok(twiml) => Answer::Twiml(Cow::Owned(twiml.to_vec())),
                                Err(later) => Answer::Later(later),
                            }
                        }
                        None => Answer::Twiml(Cow::Owned(self.fallback.render())),
                    },
                    (None, None) => Answer::Twiml(Cow::Borrowed(self.default.chosen().twiml)),
                }
            }
        }
    }

    /// Checks `X-Twilio-Signature`: for the URL `PUBLIC_URL` or the
    /// request's `Host` gives, or for the URL of an ngrok tunnel to this
    /// server. The error says why a request is refused and which URL was
    /// checked, never a secret or an expected signature: for a signature
    /// that matches none, which URL it does match (of a handful the request
    /// could have come through) and the `PUBLIC_URL` to set, or that the
    /// token is the likely cause.
    fn check_signature(&self, request: &impl Request, payload: Payload<'_>) -> Result<(), String> {
        let target = request.target();
        let Some(url) = signature::request_url(
            self.public_url.as_deref(),
            request.header("X-Forwarded-Proto"),
            request.header("Host"),
            target,
        ) else {
            return Err("no Host header to rebuild the URL from (set PUBLIC_URL)".to_owned());
        };
        let check = |url: &str| {
            signature::check(
                &self.keys,
                url,
                payload,
                request.header(SIGNATURE_HEADER),
                request.header(SETTINGS_HEADER),
            )
        };
        let verdict = check(&url);
        match verdict {
            Verdict::Valid => return Ok(()),
            Verdict::NoMatch => {}
            _ => return Err(format!("{verdict} (checked URL {})", Escaped(&url))),
        }
        // ngrok's tunnels to this server are as good as the URL rebuilt
        // from Host, which ngrok may rewrite.
        let tunnels = self
            .tunnels
            .as_ref()
            .map(|tunnels| tunnels.known())
            .unwrap_or_default();
        if tunnels
            .iter()
            .any(|base| check(&format!("{base}{target}")) == Verdict::Valid)
        {
            return Ok(());
        }
        let matching = candidates(request, &url, target)
            .into_iter()
            .find(|candidate| check(candidate) == Verdict::Valid);
        Err(match matching {
            Some(candidate) => format!(
                "{verdict} (checked URL {}); it matches {}: set PUBLIC_URL={}",
                Escaped(&url),
                Escaped(&candidate),
                Escaped(candidate.strip_suffix(target).unwrap_or(&candidate))
            ),
            None => format!(
                "{verdict} (checked URL {}); no URL the request could have come through matches \
                 it either, so the token is the likely cause: {AUTH_TOKEN_VAR} must be the Auth \
                 Token of the account that owns the number",
                Escaped(&url)
            ),
        })
    }
}

/// Whether `host` (a `Host` header's value) names this machine.
fn is_local(host: &str) -> bool {
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    matches!(name, "localhost" | "127.0.0.1" | "[::1]" | "0.0.0.0")
}

/// The URLs other than `checked` a request for `target` could have come
/// through: the other scheme, the host `X-Forwarded-Host` names (ngrok's,
/// when it rewrites `Host`), and the host `Host` names when `PUBLIC_URL`
/// says otherwise. At most six: each costs an HMAC or two.
fn candidates(request: &impl Request, checked: &str, target: &str) -> Vec<String> {
    let swapped = |url: &str| match url.split_once("://") {
        Some(("https", rest)) => Some(format!("http://{rest}")),
        Some(("http", rest)) => Some(format!("https://{rest}")),
        _ => None,
    };
    let mut urls = Vec::with_capacity(6);
    urls.extend(swapped(checked));
    for host in [request.header("X-Forwarded-Host"), request.header("Host")]
        .into_iter()
        .flatten()
        .filter(|host| !host.is_empty() && !host.contains(['/', ' ']))
    {
        let https = format!("https://{host}{target}");
        urls.extend(swapped(&https));
        urls.push(https);
    }
    urls.retain(|url| url != checked);
    urls.dedup();
    urls.truncate(6);
    urls
}
/// At `debug`, every parameter received and Twilio's idempotency token.
fn log_received(request: &impl Request, params: &Params<'_>, query: &str, form: Option<&[u8]>) {
    if !log::log_enabled!(Level::Debug) {
        return;
    }
    let sid = params.message_sid.map(|sid| sid.decode());
    let sid = sid.as_deref().unwrap_or("(no MessageSid)");
    let all: Vec<String> = form
        .into_iter()
        .chain([query.as_bytes()])
        .flat_map(params::pairs)
        .map(|(name, value)| format!("{}={}", Escaped(&params::decode(name)), value.shown()))
        .collect();
    debug!("{} parameters: {}", Escaped(sid), all.join(", "));
    if let Some(token) = request.header("I-Twilio-Idempotency-Token") {
        debug!(
            "{} I-Twilio-Idempotency-Token: {}",
            Escaped(sid),
            Escaped(token)
        );
    }
}

/// Logs what the configuration means for the messages to come.
fn log_settings(config: &Config) {
    for adjusted in &config.adjusted {
        warn!("{}", Escaped(adjusted));
    }
    let replies = std::iter::once(("the reply", &config.reply)).chain(
        config
            .rules
            .iter()
            .map(|rule| ("a rule's reply", rule.reply())),
    );
    for (which, reply) in replies {
        if reply.removed() > 0 {
            warn!(
                "removed {} characters that XML forbids from {which}: \"{}\"",
                reply.removed(),
                Escaped(reply.text())
            );
        }
    }
    if !config.rules.is_empty() {
        let keywords: Vec<String> = config
            .rules
            .iter()
            .map(|rule| format!("\"{}\"", Escaped(rule.keyword())))
            .collect();
        info!("keyword rules: {}", keywords.join(", "));
    }
    if let Some(credentials) = &config.credentials {
        info!(
            "replies that take longer than {}s go out later through the Messages API ({}), as \
             account {}",
            config.answer_within.min(config.reply_timeout).as_secs(),
            Escaped(&credentials.api_url),
            Escaped(&credentials.account_sid)
        );
    }
    if let Some(command) = &config.reply_command {
        info!(
            "messages no rule answers are answered by the reply program: sh -c \"{}\" (at most \
             {}s each, {} at once; when it fails: {})",
            Escaped(command),
            config.reply_timeout.as_secs(),
            config.reply_workers,
            if config.reply_fallback.is_silent() {
                "no reply".to_owned()
            } else {
                format!("\"{}\"", Escaped(config.reply_fallback.text()))
            }
        );
    } else if config.reply.is_silent() {
        info!("the default reply is empty: messages no rule answers are logged, not answered");
    }
    if config.keys.is_empty() {
        warn!(
            "signature checking is off: anyone who finds this URL can post fake messages; \
             set {AUTH_TOKEN_VAR} to your account's Auth Token to turn it on"
        );
    } else {
        let mut secrets = Vec::new();
        for (var, list) in [
            (AUTH_TOKEN_VAR, &config.keys.auth_tokens),
            (SHARED_KEY_VAR, &config.keys.shared_keys),
        ] {
            match list.len() {
                0 => {}
                1 => secrets.push(var.to_owned()),
                n => secrets.push(format!("{var} ({n} values)")),
            }
        }
        let urls = match &config.public_url {
            Some(base) => format!("{base}{WEBHOOK_PATH}"),
            None => format!("X-Forwarded-Proto (default http) :// Host {WEBHOOK_PATH}"),
        };
        info!(
            "checking {SIGNATURE_HEADER} with {}; signed URL: {urls}",
            secrets.join(" and ")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request without a socket.
    struct Fake {
        method: &'static str,
        target: &'static str,
        headers: &'static [(&'static str, &'static str)],
        body: &'static str,
    }

    impl Request for Fake {
        fn method(&self) -> &str {
            self.method
        }
        fn target(&self) -> &str {
            self.target
        }
        fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(field, _)| field.eq_ignore_ascii_case(name))
                .map(|(_, value)| *value)
        }
        fn body(&self) -> &[u8] {
            self.body.as_bytes()
        }
    }

    fn answer_to(webhook: &Webhook, request: Fake) -> (u16, String) {
        let answer = webhook.answer(&request);
        (
            answer.status(),
            String::from_utf8(answer.body().to_vec()).unwrap(),
        )
    }

    fn get(target: &'static str) -> Fake {
        Fake {
            method: "GET",
            target,
            headers: &[],
            body: "",
        }
    }

    #[test]
    fn a_form_post_is_answered_with_the_reply_without_a_socket() {
        let webhook = Webhook::new(&Config::default());
        let request = Fake {
            method: "POST",
            target: "/whatsapp",
            headers: &[("content-type", "application/x-www-form-urlencoded")],
            body: "From=a&Body=b",
        };
        let (status, body) = answer_to(&webhook, request);
        assert_eq!(status, 200);
        assert!(
            body.contains("<Message>What's app, doc?</Message>"),
            "{body}"
        );
    }

    #[test]
    fn local_hosts_name_this_machine_with_or_without_a_port() {
        for local in [
            "localhost",
            "localhost:8767",
            "127.0.0.1:80",
            "[::1]",
            "[::1]:8767",
            "0.0.0.0",
        ] {
            assert!(is_local(local), "{local}");
        }
        for other in [
            "abc.ngrok-free.app",
            "abc.ngrok-free.app:443",
            "localhost.example.com",
            "localhost:x",
            "",
        ] {
            assert!(!is_local(other), "{other}");
        }
    }

    #[test]
    fn candidates_are_the_other_scheme_and_the_hosts_the_request_names() {
        let request = Fake {
            headers: &[
                ("X-Forwarded-Host", "abc.ngrok-free.app"),
                ("Host", "localhost:8767"),
            ],
            ..get("/whatsapp")
        };
        assert_eq!(
            candidates(&request, "https://pub.example/whatsapp", "/whatsapp"),
            [
                "http://pub.example/whatsapp",
                "http://abc.ngrok-free.app/whatsapp",
                "https://abc.ngrok-free.app/whatsapp",
                "http://localhost:8767/whatsapp",
                "https://localhost:8767/whatsapp",
            ]
        );
        // Never the URL checked, and no host that could not be one.
        let request = Fake {
            headers: &[("X-Forwarded-Host", "a/b"), ("Host", "localhost:8767")],
            ..get("/whatsapp")
        };
        assert_eq!(
            candidates(&request, "http://localhost:8767/whatsapp", "/whatsapp"),
            ["https://localhost:8767/whatsapp"]
        );
        assert_eq!(
            candidates(
                &get("/whatsapp"),
                "http://pub.example/whatsapp",
                "/whatsapp"
            ),
            ["https://pub.example/whatsapp"]
        );
    }

    #[test]
    fn debug_shows_the_public_url_and_never_a_secret() {
        let config = Config {
            public_url: Some("https://abc.ngrok-free.app".to_owned()),
            keys: crate::twilio::signature::Keys {
                auth_tokens: vec![crate::twilio::signature::Secret::new("t0ken-t0ken")],
                shared_keys: vec![],
            },
            ..Config::default()
        };
        let debug = format!("{:?}", Webhook::new(&config));
        assert!(
            debug.starts_with("Webhook {") && debug.contains("https://abc.ngrok-free.app"),
            "{debug}"
        );
        assert!(!debug.contains("t0ken"), "{debug}");
    }

    #[test]
    fn routes_map_to_plain_text_answers() {
        let webhook = Webhook::new(&Config::default());
        assert_eq!(answer_to(&webhook, get("/healthz")), (200, "ok\n".into()));
        assert_eq!(
            answer_to(&webhook, get("/nope")),
            (404, "not found\n".into())
        );
        let delete = Fake {
            method: "DELETE",
            ..get("/whatsapp")
        };
        assert_eq!(
            webhook.answer(&delete),
            Answer::Text {
                status: 405,
                text: "method not allowed\n",
                allow: Some("GET, HEAD, POST")
            }
        );
    }
}
