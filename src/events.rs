//! What the log says about each request: an inbound message (its text,
//! media, location, button, the message it replies to), a fallback request,
//! a delivery status, or a check that is not from Twilio.
//!
//! Each is one line that starts with the `MessageSid`, with every value a
//! sender controls [`Escaped`](crate::logging::Escaped); in JSON logs the
//! line also carries the values as fields (`sid`, `from`, `to`, `body`,
//! `profile_name`, `media`, `location`, `button_payload`, `status`,
//! `error_code`, `repeat`, `window_until`).

use std::fmt;

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

use crate::logging::{self, Collected, Event, Fields};
use crate::twilio::errors;
use crate::twilio::params::{Media, Params, Value};

/// How long after a sender's last message a free-form WhatsApp reply may be
/// sent; afterwards only an approved template (error 63016).
pub const SESSION_WINDOW_SECS: u64 = 24 * 3600;

/// An inbound message, or a fallback request for one.
#[derive(Debug)]
pub struct Message<'p, 'a> {
    /// Its parameters.
    pub params: &'p Params<'a>,
    /// The keyword of the rule that answered it; `None` for the default
    /// reply.
    pub rule: Option<&'p str>,
    /// Whether its `MessageSid` was seen before.
    pub repeat: bool,
}

impl Message<'_, '_> {
    /// Whether Twilio called this URL as a fallback, after the primary URL
    /// failed.
    pub fn is_fallback(&self) -> bool {
        self.params.error_code.is_some() && self.params.error_url.is_some()
    }
}

impl fmt::Display for Message<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.params;
        sid(f, p.message_sid)?;
        if self.is_fallback() {
            write!(f, " fallback after ")?;
            shown_or(f, p.error_url, "(no ErrorUrl)")?;
            write!(f, " failed with error ")?;
            error_code(f, p.error_code)?;
            f.write_str(";")?;
        }
        f.write_str(" incoming message from ")?;
        shown_or(f, p.from, "(no From)")?;
        if let Some(name) = p.profile_name {
            quoted(f, " ", name, "")?;
        }
        if let Some(keyword) = self.rule {
            f.write_str(" (rule \"")?;
            fmt::Display::fmt(&logging::Escaped(keyword), f)?;
            f.write_str("\")")?;
        }
        match p.body {
            Some(body) if !body.is_empty() => {
                f.write_str(": ")?;
                fmt::Display::fmt(&body.shown(), f)?;
            }
            Some(_) => {}
            None => f.write_str(": (no Body)")?,
        }
        let mut media = p.media().peekable();
        if media.peek().is_some() {
            f.write_str("; media:")?;
            for (at, item) in media.enumerate() {
                f.write_str(if at == 0 { " " } else { ", " })?;
                shown_or(f, item.content_type, "(no type)")?;
                f.write_str(" ")?;
                shown_or(f, item.url, "(no URL)")?;
            }
        }
        if p.has_location() {
            f.write_str("; location: ")?;
            shown_or(f, p.latitude, "?")?;
            f.write_str(",")?;
            shown_or(f, p.longitude, "?")?;
            if let Some(label) = p.label {
                quoted(f, " ", label, "")?;
            }
            if let Some(address) = p.address {
                f.write_str(", ")?;
                fmt::Display::fmt(&address.shown(), f)?;
            }
        }
        if p.button_text.is_some() || p.button_payload.is_some() {
            f.write_str("; button")?;
            if let Some(text) = p.button_text {
                quoted(f, " ", text, "")?;
            }
            if let Some(payload) = p.button_payload {
                quoted(f, " (payload ", payload, ")")?;
            }
        }
        if let Some(replied) = p.replied_sid {
            f.write_str("; in reply to ")?;
            fmt::Display::fmt(&replied.shown(), f)?;
        }
        if self.repeat {
            f.write_str(" (repeat)")?;
        }
        Ok(())
    }
}

impl Event for Message<'_, '_> {
    fn fields(&self, fields: &mut Fields<'_, '_>) -> serde_json::Result<()> {
        let p = self.params;
        text_field(fields, "sid", p.message_sid)?;
        text_field(fields, "from", p.from)?;
        text_field(fields, "to", p.to)?;
        text_field(fields, "body", p.body)?;
        text_field(fields, "profile_name", p.profile_name)?;
        if p.media().next().is_some() {
            fields.field("media", &MediaList(p))?;
        }
        if p.has_location() {
            fields.field("location", &Location(p))?;
        }
        text_field(fields, "button_text", p.button_text)?;
        text_field(fields, "button_payload", p.button_payload)?;
        text_field(fields, "in_reply_to", p.replied_sid)?;
        if self.is_fallback() {
            if let Some(code) = p.error_code {
                fields.field("error_code", &Code(code))?;
            }
            text_field(fields, "error_url", p.error_url)?;
        }
        fields.field("repeat", &self.repeat)?;
        let whatsapp = p
            .from
            .is_some_and(|from| from.raw().starts_with(b"whatsapp"));
        if whatsapp {
            let until = logging::unix_now() + SESSION_WINDOW_SECS;
            fields.field("window_until", &Collected(&logging::rfc3339(until)))?;
        }
        Ok(())
    }
}

/// A delivery status of a message this account sent.
#[derive(Debug)]
pub struct Status<'p, 'a> {
    /// Its parameters.
    pub params: &'p Params<'a>,
}

impl Status<'_, '_> {
    /// Whether the message could not be delivered: `failed` or
    /// `undelivered`, which are worth a warning.
    pub fn failed(&self) -> bool {
        self.params
            .message_status
            .is_some_and(|status| matches!(status.raw(), b"failed" | b"undelivered"))
    }
}

impl fmt::Display for Status<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.params;
        sid(f, p.message_sid)?;
        f.write_str(" status ")?;
        shown_or(f, p.message_status, "(none)")?;
        f.write_str(" to ")?;
        shown_or(f, p.to, "(no To)")?;
        if p.error_code.is_some() {
            f.write_str(": error ")?;
            error_code(f, p.error_code)?;
        }
        Ok(())
    }
}

impl Event for Status<'_, '_> {
    fn fields(&self, fields: &mut Fields<'_, '_>) -> serde_json::Result<()> {
        let p = self.params;
        text_field(fields, "sid", p.message_sid)?;
        text_field(fields, "to", p.to)?;
        text_field(fields, "from", p.from)?;
        text_field(fields, "status", p.message_status)?;
        if let Some(code) = p.error_code {
            fields.field("error_code", &Code(code))?;
        }
        Ok(())
    }
}

/// The `MessageSid`, or a placeholder.
fn sid(f: &mut fmt::Formatter<'_>, sid: Option<Value<'_>>) -> fmt::Result {
    shown_or(f, sid, "(no MessageSid)")
}

/// A value for a text line, or a placeholder when it was not sent.
fn shown_or(f: &mut fmt::Formatter<'_>, value: Option<Value<'_>>, missing: &str) -> fmt::Result {
    match value {
        Some(value) => fmt::Display::fmt(&value.shown(), f),
        None => f.write_str(missing),
    }
}

/// `before`, the value in double quotes, `after`.
fn quoted(f: &mut fmt::Formatter<'_>, before: &str, value: Value<'_>, after: &str) -> fmt::Result {
    f.write_str(before)?;
    f.write_str("\"")?;
    fmt::Display::fmt(&value.shown(), f)?;
    f.write_str("\"")?;
    f.write_str(after)
}

/// An error code and what it means.
fn error_code(f: &mut fmt::Formatter<'_>, code: Option<Value<'_>>) -> fmt::Result {
    match code {
        Some(code) => code.with_decoded(|code| f.write_str(&errors::describe(code))),
        None => f.write_str("(no ErrorCode)"),
    }
}

/// Adds a decoded value as a field, if it was sent.
fn text_field(
    fields: &mut Fields<'_, '_>,
    name: &str,
    value: Option<Value<'_>>,
) -> serde_json::Result<()> {
    match value {
        Some(value) => fields.field(name, &Text(value)),
        None => Ok(()),
    }
}

/// A value serialized as its decoded text.
struct Text<'a>(Value<'a>);

impl Serialize for Text<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.with_decoded(|text| serializer.serialize_str(text))
    }
}

/// An error code: a number, as Twilio's are, or the text sent.
struct Code<'a>(Value<'a>);

impl Serialize for Code<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0
            .with_decoded(|text| match text.trim().parse::<u32>() {
                Ok(code) => serializer.serialize_u32(code),
                Err(_) => serializer.serialize_str(text),
            })
    }
}

/// A coordinate: a number when it reads as one, else the text sent.
struct Coordinate<'a>(Value<'a>);

impl Serialize for Coordinate<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0
            .with_decoded(|text| match text.trim().parse::<f64>() {
                Ok(number) if number.is_finite() => serializer.serialize_f64(number),
                _ => serializer.serialize_str(text),
            })
    }
}

/// The media of a message as a list of `{url, content_type}`.
struct MediaList<'p, 'a>(&'p Params<'a>);

impl Serialize for MediaList<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut list = serializer.serialize_seq(None)?;
        for media in self.0.media() {
            list.serialize_element(&MediaItem(media))?;
        }
        list.end()
    }
}

struct MediaItem<'m, 'a>(&'m Media<'a>);

impl Serialize for MediaItem<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("url", &self.0.url.map(Text))?;
        map.serialize_entry("content_type", &self.0.content_type.map(Text))?;
        map.end()
    }
}

/// A shared location as `{latitude, longitude, address, label}`.
struct Location<'p, 'a>(&'p Params<'a>);

impl Serialize for Location<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let p = self.0;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("latitude", &p.latitude.map(Coordinate))?;
        map.serialize_entry("longitude", &p.longitude.map(Coordinate))?;
        map.serialize_entry("address", &p.address.map(Text))?;
        map.serialize_entry("label", &p.label.map(Text))?;
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(form: &str, rule: Option<&str>, repeat: bool) -> String {
        let params = Params::parse(b"", Some(form.as_bytes()));
        Message {
            params: &params,
            rule,
            repeat,
        }
        .to_string()
    }

    #[test]
    fn a_text_message_starts_with_its_sid_and_names_its_sender() {
        assert_eq!(
            line(
                "MessageSid=SM1&From=whatsapp%3A%2B1555&ProfileName=Ada+Lovelace&Body=Hello",
                None,
                false
            ),
            "SM1 incoming message from whatsapp:+1555 \"Ada Lovelace\": Hello"
        );
        assert_eq!(
            line("From=x&Body=HELLO", Some("hello"), true),
            "(no MessageSid) incoming message from x (rule \"hello\"): HELLO (repeat)"
        );
    }

    #[test]
    fn media_location_button_and_reply_are_told() {
        assert_eq!(
            line(
                "MessageSid=MM1&From=a&Body=&NumMedia=2&MediaUrl0=https%3A%2F%2Fx%2F0&MediaContentType0=image%2Fjpeg&MediaUrl1=https%3A%2F%2Fx%2F1&MediaContentType1=video%2Fmp4",
                None,
                false
            ),
            "MM1 incoming message from a; media: image/jpeg https://x/0, video/mp4 https://x/1"
        );
        assert_eq!(
            line(
                "MessageSid=SM2&From=a&Body=&Latitude=52.52&Longitude=13.405&Label=Tor&Address=Pariser+Platz",
                None,
                false
            ),
            "SM2 incoming message from a; location: 52.52,13.405 \"Tor\", Pariser Platz"
        );
        assert_eq!(
            line(
                "MessageSid=SM3&From=a&Body=Yes&ButtonText=Yes&ButtonPayload=yes_1&OriginalRepliedMessageSid=MM9",
                None,
                false
            ),
            "SM3 incoming message from a: Yes; button \"Yes\" (payload \"yes_1\"); in reply to MM9"
        );
    }

    #[test]
    fn a_fallback_names_the_url_that_failed_and_why() {
        assert_eq!(
            line(
                "MessageSid=SM1&From=a&Body=hi&ErrorCode=11200&ErrorUrl=https%3A%2F%2Fapp.example%2Fsms",
                None,
                false
            ),
            "SM1 fallback after https://app.example/sms failed with error 11200: HTTP retrieval \
             failure: Twilio got an error status, or no answer, from the URL; incoming message \
             from a: hi"
        );
    }

    #[test]
    fn a_status_names_the_recipient_and_explains_a_failure() {
        let status = |form: &str| {
            let params = Params::parse(b"", Some(form.as_bytes()));
            let status = Status { params: &params };
            (status.to_string(), status.failed())
        };
        assert_eq!(
            status("MessageSid=SM1&MessageStatus=delivered&To=whatsapp%3A%2B1555"),
            ("SM1 status delivered to whatsapp:+1555".to_owned(), false)
        );
        assert_eq!(
            status("MessageSid=SM1&MessageStatus=failed&To=whatsapp%3A%2B1555&ErrorCode=63016"),
            (
                "SM1 status failed to whatsapp:+1555: error 63016: outside the 24-hour session \
                 window: only an approved template can be sent until the recipient writes again"
                    .to_owned(),
                true
            )
        );
    }
}
