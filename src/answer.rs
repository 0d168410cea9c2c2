//! Answering one request whose framing was accepted: route it, read its
//! parameters, check its signature, choose the reply, log the message.
//!
//! [`Webhook::answer`] returns an [`Answer`] and never responds itself: the
//! server decides where and when the answer is sent. Everything an answer
//! carries was built at start-up.

use std::time::Instant;

use log::{debug, info, warn};
use tiny_http::{Header, Request, Response, StatusCode};

use crate::config::Config;
use crate::http::body::{self, BodyError, MAX_BODY_BYTES};
use crate::logging::Escaped;
use crate::replies::Replies;
use crate::routes::{self, Route, WEBHOOK_PATH};
use crate::twilio::params::{self, Inbound};
use crate::twilio::signature::{self, Keys, Payload, SETTINGS_HEADER, SIGNATURE_HEADER, Verdict};

/// What to send back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer<'a> {
    /// The status code.
    pub status: u16,
    /// The body and its type.
    pub content: Content<'a>,
    /// The value of an `Allow` header, for `405`.
    pub allow: Option<&'static str>,
}

/// The body of an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content<'a> {
    /// A TwiML document, sent as `text/xml; charset=utf-8`.
    Twiml(&'a [u8]),
    /// A short message, sent as `text/plain; charset=utf-8`.
    Text(&'static str),
}

impl<'a> Answer<'a> {
    /// A `text/plain` answer.
    pub fn text(status: u16, text: &'static str) -> Answer<'a> {
        Answer {
            status,
            content: Content::Text(text),
            allow: None,
        }
    }
}

/// Turns answers into tiny_http responses, with headers built once.
#[derive(Debug)]
pub struct Responses {
    xml: Header,
    plain: Header,
    webhook_allow: Header,
    health_allow: Header,
}

impl Responses {
    /// Builds the headers every response reuses.
    pub fn new() -> Responses {
        Responses {
            xml: static_header("Content-Type", "text/xml; charset=utf-8"),
            plain: static_header("Content-Type", "text/plain; charset=utf-8"),
            webhook_allow: static_header("Allow", routes::WEBHOOK_METHODS),
            health_allow: static_header("Allow", routes::HEALTH_METHODS),
        }
    }

    /// The response that sends `answer`.
    pub fn response<'a>(&self, answer: Answer<'a>) -> Response<&'a [u8]> {
        let (content_type, body) = match answer.content {
            Content::Twiml(document) => (&self.xml, document),
            Content::Text(text) => (&self.plain, text.as_bytes()),
        };
        // Response::new allocates its own vector of headers; handing it an
        // empty one and adding to that saves one allocation.
        let mut response = Response::new(
            StatusCode(answer.status),
            Vec::new(),
            body,
            Some(body.len()),
            None,
        );
        response.add_header(content_type.clone());
        match answer.allow {
            Some(routes::WEBHOOK_METHODS) => response.add_header(self.webhook_allow.clone()),
            Some(_) => response.add_header(self.health_allow.clone()),
            None => {}
        }
        response
    }
}

impl Default for Responses {
    fn default() -> Responses {
        Responses::new()
    }
}

fn static_header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("BUG: static headers are ASCII")
}

/// The webhook: the replies and the signature settings, built once.
#[derive(Debug)]
pub struct Webhook {
    replies: Replies,
    keys: Keys,
    public_url: Option<String>,
}

impl Webhook {
    /// Renders every reply of `config`.
    pub fn new(config: &Config) -> Webhook {
        Webhook {
            replies: Replies::new(&config.reply, &config.rules),
            keys: config.keys.clone(),
            public_url: config.public_url.clone(),
        }
    }

    /// Answers `request`. Its body is read into `scratch` only when needed,
    /// and must be readable without waiting past `deadline` (a body tiny_http
    /// already holds needs none).
    pub fn answer(
        &self,
        request: &mut Request,
        scratch: &mut Vec<u8>,
        deadline: Option<Instant>,
    ) -> Answer<'_> {
        match routes::route(request.method(), request.url()) {
            Route::Webhook => self.webhook(request, scratch, deadline),
            Route::Health => Answer::text(200, "ok\n"),
            Route::NotFound => Answer::text(404, "not found\n"),
            Route::MethodNotAllowed { allow } => Answer {
                allow: Some(allow),
                ..Answer::text(405, "method not allowed\n")
            },
        }
    }

    fn webhook(
        &self,
        request: &mut Request,
        body: &mut Vec<u8>,
        deadline: Option<Instant>,
    ) -> Answer<'_> {
        let checking = !self.keys.is_empty();
        let is_form = header(request, "Content-Type").is_some_and(params::is_form);
        // Only a bodySHA256 in the URL makes a body that is not a form matter.
        let raw_body_signed = checking && !is_form && request.url().contains("bodySHA256");
        body.clear();
        if is_form || raw_body_signed {
            let expected = request.body_length();
            if let Err(error) = body::read_body(
                request.as_reader(),
                expected,
                MAX_BODY_BYTES,
                deadline,
                body,
            ) {
                debug!("{} {WEBHOOK_PATH}: {error}", request.method());
                return match error {
                    BodyError::TooLarge { .. } => Answer::text(413, "request body too large\n"),
                    BodyError::TimedOut => Answer::text(408, "request timeout\n"),
                    BodyError::Short { .. } => {
                        Answer::text(400, "request body shorter than its Content-Length\n")
                    }
                    BodyError::Io(_) => Answer::text(400, "cannot read the request body\n"),
                };
            }
        }
        if checking {
            let payload = if is_form {
                Payload::Form(body)
            } else if raw_body_signed {
                Payload::Raw(body)
            } else {
                Payload::Nothing
            };
            if let Err(rejection) = self.check_signature(request, payload) {
                warn!("rejected {} {WEBHOOK_PATH}: {rejection}", request.method());
                return Answer::text(403, "invalid or missing Twilio signature\n");
            }
        }
        let (_, query) = routes::split_url(request.url());
        let inbound = Inbound::parse(query.as_bytes(), is_form.then_some(body.as_slice()));
        let choice = self.replies.choose(inbound.body.as_deref());
        let (from, text) = (inbound.sender(), inbound.text());
        match choice.keyword {
            None => info!("incoming message from {from}: {text}"),
            Some(_) => info!("incoming message from {from} ({choice}): {text}"),
        }
        Answer {
            status: 200,
            content: Content::Twiml(choice.document),
            allow: None,
        }
    }

    /// Checks `X-Twilio-Signature`; the error says why a request is refused
    /// and which URL was checked, never a secret or an expected signature.
    fn check_signature(&self, request: &Request, payload: Payload<'_>) -> Result<(), String> {
        let Some(url) = signature::request_url(
            self.public_url.as_deref(),
            header(request, "X-Forwarded-Proto"),
            header(request, "Host"),
            request.url(),
        ) else {
            return Err("no Host header to rebuild the URL from (set PUBLIC_URL)".to_owned());
        };
        let verdict = signature::check(
            &self.keys,
            &url,
            payload,
            header(request, SIGNATURE_HEADER),
            header(request, SETTINGS_HEADER),
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

/// The value of the first header called `name`.
fn header<'a>(request: &'a Request, name: &'static str) -> Option<&'a str> {
    request
        .headers()
        .iter()
        .find(|h| h.field.equiv(name))
        .map(|h| h.value.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tiny_http::{Method, TestRequest};

    fn answer_to(webhook: &Webhook, request: TestRequest) -> (u16, String, Option<&'static str>) {
        let mut request: Request = request.into();
        let mut scratch = Vec::new();
        let answer = webhook.answer(&mut request, &mut scratch, None);
        let body = match answer.content {
            Content::Twiml(bytes) => String::from_utf8(bytes.to_vec()).unwrap(),
            Content::Text(text) => text.to_owned(),
        };
        (answer.status, body, answer.allow)
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
            )
            .with_body("From=a&Body=b");
        let (status, body, _) = answer_to(&webhook, request);
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
            answer_to(&webhook, get("/healthz")),
            (200, "ok\n".into(), None)
        );
        assert_eq!(
            answer_to(&webhook, get("/nope")),
            (404, "not found\n".into(), None)
        );
        let delete = TestRequest::new()
            .with_method(Method::Delete)
            .with_path("/whatsapp");
        assert_eq!(
            answer_to(&webhook, delete),
            (405, "method not allowed\n".into(), Some("GET, HEAD, POST"))
        );
    }

    #[test]
    fn a_body_shorter_than_announced_is_refused() {
        let webhook = Webhook::new(&Config::default());
        let request = TestRequest::new()
            .with_method(Method::Post)
            .with_path("/whatsapp")
            .with_header(
                "Content-Type: application/x-www-form-urlencoded"
                    .parse()
                    .unwrap(),
            )
            .with_header("Content-Length: 2000".parse().unwrap())
            .with_body("From=a");
        assert_eq!(
            answer_to(&webhook, request).0,
            400,
            "a truncated form must not be taken for a whole one"
        );
    }
}
