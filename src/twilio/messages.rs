//! The Messages API request that sends a reply after Twilio stopped
//! waiting for the webhook's answer: `POST
//! /2010-04-01/Accounts/{AccountSid}/Messages.json`, with HTTP Basic
//! credentials, form-encoded exactly as Twilio's helper libraries send
//! `messages.create` (twilio-python 9.13.0 is captured in
//! `tests/data/twilio-python-messages-create.json`), and what the API's
//! answer means. Pure: the request is sent elsewhere.

use std::fmt;
use std::time::Duration;

use crate::twilio::errors;
use crate::twilio::signature::Secret;

/// The Messages API Twilio runs.
pub const DEFAULT_API_URL: &str = "https://api.twilio.com";

/// Who sends: the account, and its Auth Token or an API key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The account's SID (`AC...`): the account the messages are sent from.
    pub account_sid: String,
    /// What proves it.
    pub auth: Auth,
    /// Where the API is, without a trailing slash: [`DEFAULT_API_URL`], or a
    /// Twilio-compatible API.
    pub api_url: String,
}

/// How the requests authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// The account's Auth Token, with the account SID as the user.
    Token(Secret),
    /// An API key: its SID (`SK...`) as the user, its secret as the
    /// password.
    Key {
        /// The key's SID.
        sid: String,
        /// The key's secret.
        secret: Secret,
    },
}

impl Credentials {
    /// The URL messages are created at.
    pub fn messages_url(&self) -> String {
        format!(
            "{}/2010-04-01/Accounts/{}/Messages.json",
            self.api_url, self.account_sid
        )
    }

    /// The value of the `Authorization` header.
    pub fn authorization(&self) -> String {
        match &self.auth {
            Auth::Token(token) => token.basic_auth(&self.account_sid),
            Auth::Key { sid, secret } => secret.basic_auth(sid),
        }
    }
}

/// One message to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outbound<'a> {
    /// The recipient: the sender of the message this replies to.
    pub to: &'a str,
    /// The sender: the number the message was sent to.
    pub from: &'a str,
    /// The text; empty for a message of media only.
    pub body: &'a str,
    /// The media URLs, in order.
    pub media: &'a [String],
    /// Where Twilio posts the message's delivery statuses, if anywhere.
    pub status_callback: Option<&'a str>,
}

impl Outbound<'_> {
    /// The form body, as twilio-python's `messages.create(to=, from_=,
    /// body=, media_url=, status_callback=)` writes it: `To`,
    /// `StatusCallback`, `From`, `Body`, then one `MediaUrl` per media, each
    /// value encoded as Python's `quote_plus` encodes it.
    pub fn form(&self) -> String {
        let mut form = String::with_capacity(self.body.len() + 128);
        let mut pair = |name: &str, value: &str| {
            if !form.is_empty() {
                form.push('&');
            }
            form.push_str(name);
            form.push('=');
            quote_plus(value, &mut form);
        };
        pair("To", self.to);
        if let Some(callback) = self.status_callback {
            pair("StatusCallback", callback);
        }
        pair("From", self.from);
        if !self.body.is_empty() || self.media.is_empty() {
            pair("Body", self.body);
        }
        for url in self.media {
            pair("MediaUrl", url);
        }
        form
    }
}

/// Appends `text` as Python's `urllib.parse.quote_plus` encodes it: letters,
/// digits and `_.-~` as they are, a space as `+`, every other byte of its
/// UTF-8 as `%XX` in capitals.
pub fn quote_plus(text: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &byte in text.as_bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' => {
                out.push(char::from(byte));
            }
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push(char::from(HEX[usize::from(byte >> 4)]));
                out.push(char::from(HEX[usize::from(byte & 15)]));
            }
        }
    }
}

/// What an answer of the Messages API says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answered {
    /// The message was created: its SID.
    Created {
        /// The new message's SID (`SM...`).
        sid: String,
    },
    /// Twilio refused the request, and sending it again would not help.
    Refused(Rejection),
    /// Worth trying again (`429`, `5xx`): after this long, if the API said.
    Retry {
        /// The status.
        status: u16,
        /// What `Retry-After` asked for.
        after: Option<Duration>,
    },
}

/// Why Twilio refused to create a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The HTTP status.
    pub status: u16,
    /// Twilio's error code, if it sent one.
    pub code: Option<u32>,
    /// Twilio's message.
    pub message: String,
}

impl fmt::Display for Rejection {
    /// `401: error 20003 "Authenticate": authentication failed: ...`, with
    /// a link to Twilio's page for codes not explained here.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.status)?;
        if let Some(code) = self.code {
            write!(f, ": error {code}")?;
        }
        if !self.message.is_empty() {
            write!(f, " \"{}\"", crate::logging::Escaped(&self.message))?;
        }
        match self.code.map(|code| (code, errors::explain(code))) {
            Some((_, Some(meaning))) => write!(f, ": {meaning}"),
            Some((code, None)) => write!(f, " (see {})", errors::docs_url(code)),
            None => Ok(()),
        }
    }
}

/// Reads an answer of the Messages API: its `status`, `Retry-After`
/// header, and JSON `body` (`{"sid": ...}`, or `{"code": ..., "message":
/// ...}`).
pub fn read_answer(status: u16, retry_after: Option<&str>, body: &[u8]) -> Answered {
    let json: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let field = |name: &str| json.as_ref().and_then(|json| json.get(name));
    match status {
        200..=299 => match field("sid").and_then(|sid| sid.as_str()) {
            Some(sid) => Answered::Created {
                sid: sid.to_owned(),
            },
            None => Answered::Refused(Rejection {
                status,
                code: None,
                message: "the answer names no message sid".to_owned(),
            }),
        },
        429 | 500..=599 => Answered::Retry {
            status,
            after: retry_after.and_then(parse_retry_after),
        },
        _ => Answered::Refused(Rejection {
            status,
            code: field("code")
                .and_then(serde_json::Value::as_u64)
                .and_then(|code| u32::try_from(code).ok()),
            message: field("message")
                .and_then(|message| message.as_str())
                .map_or_else(
                    || String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
                    str::to_owned,
                ),
        }),
    }
}

/// `Retry-After` as seconds or an HTTP date, as a wait from now.
fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_is_what_twilio_python_writes() {
        let captured: serde_json::Value = serde_json::from_str(include_str!(
            "../../tests/data/twilio-python-messages-create.json"
        ))
        .unwrap();
        let expected = captured["requests"][0]["body"].as_str().unwrap();
        let media = [
            "https://example.com/a.jpg?x=1&y=2".to_owned(),
            "https://example.com/b.png".to_owned(),
        ];
        let outbound = Outbound {
            to: "whatsapp:+15551234567",
            from: "whatsapp:+14155238886",
            body: "Hello & welcome: 100% ✓\nsecond line",
            media: &media,
            status_callback: Some("https://abc123.ngrok-free.app/status"),
        };
        assert_eq!(outbound.form(), expected);
    }

    #[test]
    fn quote_plus_keeps_what_python_keeps() {
        let mut out = String::new();
        quote_plus("a-b_c.d~e *f/é+", &mut out);
        assert_eq!(out, "a-b_c.d~e+%2Af%2F%C3%A9%2B");
    }

    #[test]
    fn credentials_authenticate_as_twilio_python_does() {
        let captured: serde_json::Value = serde_json::from_str(include_str!(
            "../../tests/data/twilio-python-messages-create.json"
        ))
        .unwrap();
        let header = |at: usize| {
            captured["requests"][at]["headers"]
                .as_array()
                .unwrap()
                .iter()
                .find(|pair| pair[0] == "Authorization")
                .map(|pair| pair[1].as_str().unwrap().to_owned())
                .unwrap()
        };
        let account = "AC0123456789abcdef0123456789abcdef".to_owned();
        let token = Credentials {
            account_sid: account.clone(),
            auth: Auth::Token(Secret::new("token0123456789abcdef0123456789ab")),
            api_url: "http://127.0.0.1:1".to_owned(),
        };
        assert_eq!(token.authorization(), header(0));
        assert_eq!(
            token.messages_url(),
            "http://127.0.0.1:1/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages.json"
        );
        let key = Credentials {
            auth: Auth::Key {
                sid: format!("SK{}", "a".repeat(32)),
                secret: Secret::new("secret0123456789abcdef0123456789"),
            },
            ..token
        };
        assert_eq!(key.authorization(), header(1));
        assert!(!format!("{key:?}").contains("secret0123"));
    }

    #[test]
    fn answers_say_created_refused_or_retry() {
        assert_eq!(
            read_answer(201, None, br#"{"sid": "SM1", "status": "queued"}"#),
            Answered::Created {
                sid: "SM1".to_owned()
            }
        );
        let refused = read_answer(
            401,
            None,
            br#"{"code": 20003, "message": "Authenticate", "status": 401}"#,
        );
        let Answered::Refused(rejection) = refused else {
            panic!("{refused:?}")
        };
        assert!(
            rejection
                .to_string()
                .starts_with("401: error 20003 \"Authenticate\": authentication failed")
        );
        assert_eq!(
            read_answer(400, None, br#"{"code": 21999, "message": "x"}"#),
            Answered::Refused(Rejection {
                status: 400,
                code: Some(21999),
                message: "x".to_owned()
            })
        );
        assert_eq!(
            Rejection {
                status: 400,
                code: Some(21999),
                message: "x".to_owned()
            }
            .to_string(),
            "400: error 21999 \"x\" (see https://www.twilio.com/docs/api/errors/21999)"
        );
        assert_eq!(
            read_answer(429, Some("2"), b""),
            Answered::Retry {
                status: 429,
                after: Some(Duration::from_secs(2))
            }
        );
        assert_eq!(
            read_answer(503, Some("soon"), b"<html>"),
            Answered::Retry {
                status: 503,
                after: None
            }
        );
    }
}
