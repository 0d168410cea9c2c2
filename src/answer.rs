//! Answering one request whose framing was accepted and whose body the edge
//! has read: route it, check its signature, read its parameters, tell what
//! kind of request it is, choose the answer, and log it.
//!
//! An inbound message gets the reply its `Body` chooses, and so does a
//! fallback request for one (logged as a warning) and a check that is not
//! from Twilio (no `MessageSid`, no `From`). A delivery status, at
//! `/whatsapp` or `/status`, gets an empty `<Response />`, never a reply.
//!
//! [`Webhook::answer`] returns one of the answers [`Prepared`] when the
//! webhook was built, and never writes anything itself: the edge decides
//! where and when the answer is sent.

use log::{Level, debug, info, warn};

use crate::config::Config;
use crate::events;
use crate::http::incoming::Incoming;
use crate::http::response::Prepared;
use crate::logging::{self, Escaped};
use crate::repeats::Repeats;
use crate::replies::Replies;
use crate::routes::{self, HEALTH_METHODS, Route, WEBHOOK_METHODS, WEBHOOK_PATH};
use crate::twilio::params::{self, Kind, Params};
use crate::twilio::signature::{
    self, AUTH_TOKEN_VAR, Keys, Payload, SETTINGS_HEADER, SHARED_KEY_VAR, SIGNATURE_HEADER, Verdict,
};
use crate::twilio::twiml::Reply;

/// The webhook: every answer, and the signature settings, built once.
#[derive(Debug)]
pub struct Webhook {
    replies: Replies,
    repeats: Repeats,
    keys: Keys,
    public_url: Option<String>,
    /// The answer to a delivery status: `<Response />`.
    acknowledged: Prepared,
    not_a_status: Prepared,
    health: Prepared,
    not_found: Prepared,
    webhook_not_allowed: Prepared,
    health_not_allowed: Prepared,
    forbidden: Prepared,
}

impl Webhook {
    /// Renders every answer of `config`, and logs what the configuration
    /// means for the messages to come.
    pub fn new(config: &Config) -> Webhook {
        log_settings(config);
        let not_allowed = Prepared::text(405, "method not allowed\n");
        Webhook {
            replies: Replies::new(&config.reply, &config.rules),
            repeats: Repeats::new(),
            keys: config.keys.clone(),
            public_url: config.public_url.clone(),
            acknowledged: Prepared::twiml(Reply::default().render()),
            not_a_status: Prepared::text(400, "not a status callback: no MessageStatus\n"),
            health: Prepared::text(200, "ok\n"),
            not_found: Prepared::text(404, "not found\n"),
            webhook_not_allowed: not_allowed.clone().with_header("Allow", WEBHOOK_METHODS),
            health_not_allowed: not_allowed.with_header("Allow", HEALTH_METHODS),
            forbidden: Prepared::text(403, "invalid or missing Twilio signature\n"),
        }
    }

    /// The answer to `request`.
    pub fn answer(&self, request: &Incoming<'_>) -> &Prepared {
        match routes::route(request.method(), request.target()) {
            Route::Webhook => self.webhook(request, false),
            Route::Status => self.webhook(request, true),
            Route::Health => &self.health,
            Route::NotFound => &self.not_found,
            Route::MethodNotAllowed {
                allow: WEBHOOK_METHODS,
            } => &self.webhook_not_allowed,
            Route::MethodNotAllowed { .. } => &self.health_not_allowed,
        }
    }

    fn webhook(&self, request: &Incoming<'_>, status_only: bool) -> &Prepared {
        let (path, query) = routes::split_url(request.target());
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
                    Escaped(request.method().as_str()),
                    Escaped(path)
                );
                return &self.forbidden;
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
                &self.acknowledged
            }
            _ if status_only => &self.not_a_status,
            Kind::Check => {
                let choice = self.replies.choose_for(params.body);
                info!(
                    "{} {} without MessageSid or From: a check, not a message from Twilio; \
                     answered with the {choice}",
                    Escaped(request.method().as_str()),
                    Escaped(path)
                );
                choice.answer
            }
            Kind::Message | Kind::Fallback => {
                let choice = self.replies.choose_for(params.body);
                let repeat = params
                    .message_sid
                    .is_some_and(|sid| self.repeats.seen_before(sid.raw()));
                let message = events::Message {
                    params: &params,
                    rule: choice.keyword,
                    repeat,
                };
                let level = if message.is_fallback() {
                    Level::Warn
                } else {
                    Level::Info
                };
                logging::emit(level, module_path!(), &message);
                choice.answer
            }
        }
    }

    /// Checks `X-Twilio-Signature`; the error says why a request is refused
    /// and which URL was checked, never a secret or an expected signature.
    fn check_signature(&self, request: &Incoming<'_>, payload: Payload<'_>) -> Result<(), String> {
        let Some(url) = signature::request_url(
            self.public_url.as_deref(),
            request.header("X-Forwarded-Proto"),
            request.header("Host"),
            request.target(),
        ) else {
            return Err("no Host header to rebuild the URL from (set PUBLIC_URL)".to_owned());
        };
        let verdict = signature::check(
            &self.keys,
            &url,
            payload,
            request.header(SIGNATURE_HEADER),
            request.header(SETTINGS_HEADER),
        );
        match verdict {
            Verdict::Valid => Ok(()),
            Verdict::NoMatch => Err(format!(
                "{verdict} (checked URL {}; if Twilio called another URL, set PUBLIC_URL to its start)",
                Escaped(&url)
            )),
            _ => Err(format!("{verdict} (checked URL {})", Escaped(&url))),
        }
    }
}

/// At `debug`, every parameter received and Twilio's idempotency token.
fn log_received(request: &Incoming<'_>, params: &Params<'_>, query: &str, form: Option<&[u8]>) {
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
    if config.reply.is_silent() {
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
    use tiny_http::{Method, Request, TestRequest};

    fn answer_to(webhook: &Webhook, request: TestRequest, body: &str) -> (u16, String) {
        let request: Request = request.into();
        let answer = webhook.answer(&Incoming::new(&request, body.as_bytes()));
        (
            answer.status(),
            String::from_utf8(answer.body().to_vec()).unwrap(),
        )
    }

    #[test]
    fn a_form_post_is_answered_with_the_reply_without_a_socket() {
        let webhook = Webhook::new(&Config::default());
        let request = TestRequest::new()
            .with_method(Method::Post)
            .with_path("/whatsapp")
            .with_header(
                "Content-Type: application/x-www-form-urlencoded"
                    .parse()
                    .unwrap(),
            );
        let (status, body) = answer_to(&webhook, request, "From=a&Body=b");
        assert_eq!(status, 200);
        assert!(
            body.contains("<Message>What's app, doc?</Message>"),
            "{body}"
        );
    }

    #[test]
    fn routes_map_to_plain_text_answers() {
        let webhook = Webhook::new(&Config::default());
        let get = |path: &str| TestRequest::new().with_method(Method::Get).with_path(path);
        assert_eq!(
            answer_to(&webhook, get("/healthz"), ""),
            (200, "ok\n".into())
        );
        assert_eq!(
            answer_to(&webhook, get("/nope"), ""),
            (404, "not found\n".into())
        );
        let delete = TestRequest::new()
            .with_method(Method::Delete)
            .with_path("/whatsapp");
        assert_eq!(
            answer_to(&webhook, delete, ""),
            (405, "method not allowed\n".into())
        );
    }
}
