//! Answering one request whose framing was accepted and whose body the edge
//! has read: route it, read its parameters, check its signature, choose the
//! reply, log the message.
//!
//! [`Webhook::answer`] returns one of the answers [`Prepared`] when the
//! webhook was built, and never writes anything itself: the edge decides
//! where and when the answer is sent.

use log::{info, warn};

use crate::config::Config;
use crate::http::incoming::Incoming;
use crate::http::response::Prepared;
use crate::logging::Escaped;
use crate::replies::Replies;
use crate::routes::{self, HEALTH_METHODS, Route, WEBHOOK_METHODS, WEBHOOK_PATH};
use crate::twilio::params::{self, Inbound};
use crate::twilio::signature::{
    self, AUTH_TOKEN_VAR, Keys, Payload, SETTINGS_HEADER, SHARED_KEY_VAR, SIGNATURE_HEADER, Verdict,
};

/// The webhook: every answer, and the signature settings, built once.
#[derive(Debug)]
pub struct Webhook {
    replies: Replies,
    keys: Keys,
    public_url: Option<String>,
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
            keys: config.keys.clone(),
            public_url: config.public_url.clone(),
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
            Route::Webhook => self.webhook(request),
            Route::Health => &self.health,
            Route::NotFound => &self.not_found,
            Route::MethodNotAllowed {
                allow: WEBHOOK_METHODS,
            } => &self.webhook_not_allowed,
            Route::MethodNotAllowed { .. } => &self.health_not_allowed,
        }
    }

    fn webhook(&self, request: &Incoming<'_>) -> &Prepared {
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
                warn!("rejected {} {WEBHOOK_PATH}: {rejection}", request.method());
                return &self.forbidden;
            }
        }
        let (_, query) = routes::split_url(request.target());
        let inbound = Inbound::parse(query.as_bytes(), is_form.then_some(request.body()));
        let choice = self.replies.choose(inbound.body.as_deref());
        let (from, text) = (inbound.sender(), inbound.text());
        match choice.keyword {
            None => info!("incoming message from {from}: {text}"),
            Some(_) => info!("incoming message from {from} ({choice}): {text}"),
        }
        choice.answer
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
