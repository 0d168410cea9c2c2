//! The handler interface: what answers each message. A [`Message`] goes
//! in, a [`Reply`] comes out; the server does everything Twilio-specific
//! around it (signatures, TwiML, limits, repeats, the time limit).
//!
//! Four kinds of [`Handler`] exist: a fixed reply and keyword rules
//! ([`replies`](crate::replies)), which choose at once from the message's
//! text and cost the request loop no allocation; a reply program in any
//! language ([`program`](crate::program)); and any Rust function
//! `Fn(&Message) -> Reply`. Handlers that run code run on reply workers,
//! never on the request loop ([`replying`](crate::replying)).
//!
//! ```
//! use whatsapp_webhook::{Message, Reply};
//!
//! fn echo(message: &Message) -> Reply {
//!     match message.body.as_deref() {
//!         Some(text) if !text.trim().is_empty() => Reply::text(format!("You said: {text}")),
//!         _ => Reply::none(),
//!     }
//! }
//!
//! let message = Message {
//!     body: Some("hello".to_owned()),
//!     ..Message::default()
//! };
//! assert_eq!(echo(&message), Reply::text("You said: hello"));
//! ```

use std::fmt;
use std::time::Instant;

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

use crate::events::SESSION_WINDOW_SECS;
use crate::logging;
use crate::twilio::params::{Params, Value};
use crate::twilio::twiml::{self, MAX_MESSAGE_CHARS, TwimlError};
use crate::twilio::verdict::{self, Outgoing, Refusal, Verdict};

/// An inbound message, as a handler sees it: the fields of its JSON log
/// line, with the same names. A field Twilio did not send is `None` (and
/// absent from the JSON); text Twilio sent as invalid UTF-8 holds U+FFFD.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    /// `MessageSid`: the message's unique id, such as `SM...`.
    pub sid: Option<String>,
    /// `From`: the sender, such as `whatsapp:+15551234567`.
    pub from: Option<String>,
    /// `To`: your number, such as `whatsapp:+14155238886`.
    pub to: Option<String>,
    /// `Body`: the text of the message.
    pub body: Option<String>,
    /// `ProfileName`: the sender's WhatsApp profile name.
    pub profile_name: Option<String>,
    /// The media of the message, in order: `MediaUrlN` and
    /// `MediaContentTypeN`.
    pub media: Vec<Media>,
    /// A shared location.
    pub location: Option<Location>,
    /// `ButtonText`: the text of the button the sender tapped.
    pub button_text: Option<String>,
    /// `ButtonPayload`: the payload of that button.
    pub button_payload: Option<String>,
    /// `OriginalRepliedMessageSid`: the message this one replies to.
    pub in_reply_to: Option<String>,
    /// `ErrorCode`, in a fallback request: why the primary URL failed.
    pub error_code: Option<String>,
    /// `ErrorUrl`, in a fallback request: the URL that failed.
    pub error_url: Option<String>,
    /// Whether this `MessageSid` was seen before (Twilio sent the message
    /// again).
    pub repeat: bool,
    /// For a WhatsApp message: the end of the 24-hour session window it
    /// opened (RFC 3339, UTC), the last moment a free-form reply can be
    /// sent.
    pub window_until: Option<String>,
}

/// One media item of a message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Media {
    /// Where Twilio keeps the file.
    pub url: Option<String>,
    /// Its MIME type, such as `image/jpeg`.
    pub content_type: Option<String>,
}

/// A shared location, as Twilio sent it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Location {
    /// `Latitude`, as sent (a number in JSON when it reads as one).
    pub latitude: Option<String>,
    /// `Longitude`, as sent (a number in JSON when it reads as one).
    pub longitude: Option<String>,
    /// `Address`.
    pub address: Option<String>,
    /// `Label`.
    pub label: Option<String>,
}

impl Message {
    /// The message `params` carry, `repeat` if its `MessageSid` was seen
    /// before.
    pub fn from_params(params: &Params<'_>, repeat: bool) -> Message {
        let text = |value: Option<Value<'_>>| value.map(|value| value.decode().into_owned());
        let fallback = params.error_code.is_some() && params.error_url.is_some();
        let whatsapp = params
            .from
            .is_some_and(|from| from.raw().starts_with(b"whatsapp"));
        Message {
            sid: text(params.message_sid),
            from: text(params.from),
            to: text(params.to),
            body: text(params.body),
            profile_name: text(params.profile_name),
            media: params
                .media()
                .map(|media| Media {
                    url: text(media.url),
                    content_type: text(media.content_type),
                })
                .collect(),
            location: params.has_location().then(|| Location {
                latitude: text(params.latitude),
                longitude: text(params.longitude),
                address: text(params.address),
                label: text(params.label),
            }),
            button_text: text(params.button_text),
            button_payload: text(params.button_payload),
            in_reply_to: text(params.replied_sid),
            error_code: text(params.error_code.filter(|_| fallback)),
            error_url: text(params.error_url.filter(|_| fallback)),
            repeat,
            window_until: whatsapp
                .then(|| logging::rfc3339(logging::unix_now() + SESSION_WINDOW_SECS).to_string()),
        }
    }

    /// The message as one JSON object: what a reply program reads on its
    /// standard input.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("BUG: a message of strings always serializes")
    }

    /// The main fields as environment variables, for shell scripts:
    /// `MESSAGE_SID`, `MESSAGE_FROM`, `MESSAGE_TO`, `MESSAGE_BODY`,
    /// `MESSAGE_PROFILE_NAME`, `MESSAGE_MEDIA_COUNT`, `MESSAGE_MEDIA_URL` and
    /// `MESSAGE_MEDIA_CONTENT_TYPE` (of the first media), `MESSAGE_REPEAT`
    /// (`true` or `false`). A field that was not sent is an empty variable.
    /// NUL characters, which no variable can hold, are removed.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let of = |value: &Option<String>| value.as_deref().unwrap_or_default().replace('\0', "");
        let first = self.media.first().cloned().unwrap_or_default();
        vec![
            ("MESSAGE_SID", of(&self.sid)),
            ("MESSAGE_FROM", of(&self.from)),
            ("MESSAGE_TO", of(&self.to)),
            ("MESSAGE_BODY", of(&self.body)),
            ("MESSAGE_PROFILE_NAME", of(&self.profile_name)),
            ("MESSAGE_MEDIA_COUNT", self.media.len().to_string()),
            ("MESSAGE_MEDIA_URL", of(&first.url)),
            ("MESSAGE_MEDIA_CONTENT_TYPE", of(&first.content_type)),
            ("MESSAGE_REPEAT", self.repeat.to_string()),
        ]
    }
}

impl Serialize for Message {
    /// The fields of the message's JSON log line, in the same order, with
    /// the same names; fields not sent are absent.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        let text = |map: &mut S::SerializeMap, name: &str, value: &Option<String>| match value {
            Some(value) => map.serialize_entry(name, value),
            None => Ok(()),
        };
        text(&mut map, "sid", &self.sid)?;
        text(&mut map, "from", &self.from)?;
        text(&mut map, "to", &self.to)?;
        text(&mut map, "body", &self.body)?;
        text(&mut map, "profile_name", &self.profile_name)?;
        if !self.media.is_empty() {
            map.serialize_entry("media", &MediaList(&self.media))?;
        }
        if let Some(location) = &self.location {
            map.serialize_entry("location", location)?;
        }
        text(&mut map, "button_text", &self.button_text)?;
        text(&mut map, "button_payload", &self.button_payload)?;
        text(&mut map, "in_reply_to", &self.in_reply_to)?;
        if let Some(code) = &self.error_code {
            match code.trim().parse::<u32>() {
                Ok(number) => map.serialize_entry("error_code", &number)?,
                Err(_) => map.serialize_entry("error_code", code)?,
            }
        }
        text(&mut map, "error_url", &self.error_url)?;
        map.serialize_entry("repeat", &self.repeat)?;
        text(&mut map, "window_until", &self.window_until)?;
        map.end()
    }
}

struct MediaList<'a>(&'a [Media]);

impl Serialize for MediaList<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut list = serializer.serialize_seq(Some(self.0.len()))?;
        for media in self.0 {
            list.serialize_element(&MediaItem(media))?;
        }
        list.end()
    }
}

struct MediaItem<'a>(&'a Media);

impl Serialize for MediaItem<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("url", &self.0.url)?;
        map.serialize_entry("content_type", &self.0.content_type)?;
        map.end()
    }
}

impl Serialize for Location {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(4))?;
        map.serialize_entry("latitude", &self.latitude.as_deref().map(Coordinate))?;
        map.serialize_entry("longitude", &self.longitude.as_deref().map(Coordinate))?;
        map.serialize_entry("address", &self.address)?;
        map.serialize_entry("label", &self.label)?;
        map.end()
    }
}

/// A coordinate: a number when it reads as one, else the text sent.
struct Coordinate<'a>(&'a str);

impl Serialize for Coordinate<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0.trim().parse::<f64>() {
            Ok(number) if number.is_finite() => serializer.serialize_f64(number),
            _ => serializer.serialize_str(self.0),
        }
    }
}

/// What a message gets back: nothing, one message or several (each a text
/// and up to ten media), or a TwiML document of your own.
///
/// Twilio sends at most 1600 characters in one message: [`Reply::text`]
/// splits a longer text into several messages, at whitespace where it can.
/// Characters XML forbids are removed, as for the configured reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply(Form);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Form {
    Messages(Vec<twiml::Reply>),
    /// A document of the handler's own, judged as Twilio would, and what it
    /// sends.
    Document {
        twiml: Vec<u8>,
        sends: Vec<Outgoing>,
    },
}

impl Default for Reply {
    fn default() -> Reply {
        Reply::none()
    }
}

impl Reply {
    /// No message: Twilio receives the message and sends nothing back.
    pub fn none() -> Reply {
        Reply(Form::Messages(Vec::new()))
    }

    /// `text` as one message, or several of at most 1600 characters each,
    /// split at whitespace where possible, in order. A text of only
    /// whitespace is no message.
    pub fn text(text: impl AsRef<str>) -> Reply {
        let messages = split(&twiml::strip_forbidden(text.as_ref()))
            .into_iter()
            .filter_map(|part| twiml::Reply::new(&part).ok())
            .filter(|message| !message.is_silent())
            .collect();
        Reply(Form::Messages(messages))
    }

    /// Adds media to the last message (to a message of its own when there
    /// is none): each URL becomes a `<Media>` element.
    ///
    /// # Errors
    ///
    /// Fails when a URL is not an absolute `http` or `https` URL, when the
    /// message would hold more than ten media, or when the reply is a TwiML
    /// document of its own ([`Reply::twiml`]).
    pub fn with_media<I, S>(self, urls: I) -> Result<Reply, TwimlError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let Form::Messages(mut messages) = self.0 else {
            return Err(TwimlError::OwnDocument);
        };
        let urls: Vec<String> = urls.into_iter().map(Into::into).collect();
        let last = messages.pop().unwrap_or_default();
        messages.push(last.with_media(&urls)?);
        Ok(Reply(Form::Messages(messages)))
    }

    /// This reply's messages, then `next`'s.
    pub fn and(self, next: Reply) -> Reply {
        let mut messages = self.into_messages();
        messages.extend(next.into_messages());
        Reply(Form::Messages(messages))
    }

    /// A TwiML document of your own, passed on unchanged, when Twilio would
    /// accept it as the answer to a message: well-formed, Messaging TwiML
    /// only, each message within 1600 characters.
    ///
    /// # Errors
    ///
    /// Fails with what Twilio would make of it otherwise (as `check` says).
    pub fn twiml(document: impl Into<Vec<u8>>) -> Result<Reply, Refusal> {
        let twiml = document.into();
        let answer = verdict::Answer {
            status: 200,
            content_type: Some("text/xml"),
            body: &twiml,
            too_large: twiml.len() > verdict::MAX_ANSWER_BYTES,
        };
        match verdict::judge(&answer) {
            Verdict::Accepted(accepted) => Ok(Reply(Form::Document {
                sends: accepted.messages,
                twiml,
            })),
            Verdict::Refused(refusal) => Err(refusal),
        }
    }

    /// Whether the reply sends no message.
    pub fn is_none(&self) -> bool {
        match &self.0 {
            Form::Messages(messages) => messages.is_empty(),
            Form::Document { sends, .. } => sends.is_empty(),
        }
    }

    /// The messages Twilio sends for this reply, in order.
    pub fn messages(&self) -> Vec<Outgoing> {
        match &self.0 {
            Form::Messages(messages) => messages
                .iter()
                .map(|message| Outgoing {
                    text: message.text().to_owned(),
                    media: message.media().to_vec(),
                    to: None,
                })
                .collect(),
            Form::Document { sends, .. } => sends.clone(),
        }
    }

    /// The TwiML document that answers with this reply.
    pub fn render(&self) -> Vec<u8> {
        match &self.0 {
            Form::Messages(messages) => twiml::render_all(messages),
            Form::Document { twiml, .. } => twiml.clone(),
        }
    }

    fn into_messages(self) -> Vec<twiml::Reply> {
        match self.0 {
            Form::Messages(messages) => messages,
            Form::Document { sends, .. } => sends
                .iter()
                .flat_map(|sent| {
                    // Media the document holds that a reply cannot (more
                    // than ten, or not http(s)) are left out.
                    let text = Reply::text(&sent.text);
                    text.clone()
                        .with_media(&sent.media)
                        .unwrap_or(text)
                        .into_messages()
                })
                .filter(|message| !message.is_silent())
                .collect(),
        }
    }
}

impl From<twiml::Reply> for Reply {
    fn from(message: twiml::Reply) -> Reply {
        Reply(Form::Messages(
            Some(message)
                .filter(|message| !message.is_silent())
                .into_iter()
                .collect(),
        ))
    }
}

/// Splits `text` (trailing whitespace dropped) into parts of at most
/// [`MAX_MESSAGE_CHARS`] characters, each ending where whitespace was when
/// there is any in reach.
fn split(text: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut rest = text.trim_end();
    while let Some((limit, _)) = rest.char_indices().nth(MAX_MESSAGE_CHARS) {
        let head = &rest[..limit];
        let cut = head
            .char_indices()
            .rev()
            .find(|&(at, c)| c.is_whitespace() && !head[..at].trim().is_empty());
        let (end, next) = match cut {
            Some((at, c)) => (at, at + c.len_utf8()),
            None => (limit, limit),
        };
        parts.push(rest[..end].trim_end().to_owned());
        rest = rest[next..].trim_start();
    }
    if !rest.is_empty() {
        parts.push(rest.to_owned());
    }
    parts
}

/// Why a handler gave no reply; the message then gets the fallback reply,
/// and the failure is logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure(String);

impl Failure {
    /// A failure that says `what` happened.
    pub fn new(what: impl fmt::Display) -> Failure {
        Failure(what.to_string())
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Failure {}

/// A reply chosen at once, rendered when the handler was built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chosen<'a> {
    /// The TwiML document that sends it.
    pub twiml: &'a [u8],
    /// The keyword of the rule that chose it; `None` for a fixed reply.
    pub rule: Option<&'a str>,
}

/// What answers each message.
///
/// [`reply`](Handler::reply) runs on a reply worker, never on the request
/// loop: it may take its time. Until `deadline`, Twilio waits for the
/// answer; past it, the message gets the fallback reply, and the reply is
/// no longer wanted. A handler that can choose its reply from the message's
/// text alone, without running anything, also says so with
/// [`choose_at_once`](Handler::choose_at_once): the request loop then
/// answers at once, without a worker or an allocation.
///
/// Any `Fn(&Message) -> Reply + Send + Sync + 'static` is a handler.
pub trait Handler: Send + Sync + 'static {
    /// The reply to `message`.
    ///
    /// # Errors
    ///
    /// A [`Failure`]: the message gets the fallback reply, and one `warn`
    /// line says what the failure says.
    fn reply(&self, message: &Message, deadline: Instant) -> Result<Reply, Failure>;

    /// The reply to a message with this `Body` (still encoded as sent),
    /// chosen at once, when this handler chooses without running anything.
    /// The default is `None`: [`reply`](Handler::reply) runs on a worker.
    fn choose_at_once(&self, body: Option<Value<'_>>) -> Option<Chosen<'_>> {
        let _ = body;
        None
    }
}

impl<F> Handler for F
where
    F: Fn(&Message) -> Reply + Send + Sync + 'static,
{
    fn reply(&self, message: &Message, _deadline: Instant) -> Result<Reply, Failure> {
        Ok(self(message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events;
    use log::Level;

    const DECL: &str = r#"<?xml version="1.0" encoding="UTF-8"?>"#;

    /// The fields of the JSON log line of the message in `form`.
    fn logged_fields(form: &str, repeat: bool) -> serde_json::Value {
        let params = Params::parse(b"", Some(form.as_bytes()));
        let event = events::Message {
            params: &params,
            rule: None,
            repeat,
        };
        let mut line = Vec::new();
        logging::json_line(&mut line, Level::Info, "t", &event).unwrap();
        let mut value: serde_json::Value = serde_json::from_slice(&line).unwrap();
        for envelope in ["time", "level", "target", "message"] {
            value.as_object_mut().unwrap().remove(envelope);
        }
        value
    }

    fn given(form: &str, repeat: bool) -> serde_json::Value {
        let params = Params::parse(b"", Some(form.as_bytes()));
        serde_json::from_str(&Message::from_params(&params, repeat).to_json()).unwrap()
    }

    #[test]
    fn a_program_reads_exactly_the_fields_of_the_json_log_line() {
        for (form, repeat) in [
            (
                "MessageSid=SM1&From=whatsapp%3A%2B1555&To=whatsapp%3A%2B1415&Body=Hi+%22you%22&ProfileName=Ada",
                false,
            ),
            (
                "MessageSid=MM1&From=a&Body=&NumMedia=2&MediaUrl0=https%3A%2F%2Fx%2F0&MediaContentType0=image%2Fjpeg&MediaContentType1=video%2Fmp4",
                true,
            ),
            (
                "MessageSid=SM2&From=whatsapp%3A%2B1&Latitude=52.52&Longitude=east&Label=Tor&Address=Pariser+Platz",
                false,
            ),
            (
                "MessageSid=SM3&From=a&Body=Yes&ButtonText=Yes&ButtonPayload=yes_1&OriginalRepliedMessageSid=MM9",
                false,
            ),
            (
                "MessageSid=SM4&From=a&Body=hi&ErrorCode=11200&ErrorUrl=https%3A%2F%2Fapp.example%2Fsms",
                false,
            ),
            ("MessageSid=SM5&From=a&ErrorCode=11200", false),
            ("Body=%FF%FE%24%28reboot%29%60x%60%0A", false),
            // Not finite: JSON has no number for it, so it stays text.
            ("MessageSid=SM6&From=a&Latitude=NaN&Longitude=-inf", false),
        ] {
            let before = std::time::SystemTime::now();
            let mut program = given(form, repeat);
            let mut logged = logged_fields(form, repeat);
            // The window's end is computed when each is made, 24 hours
            // after, so it is compared with the clock, not between the two.
            let windows = [&mut program, &mut logged].map(|value| {
                let until = value.as_object_mut().unwrap().remove("window_until")?;
                let until: jiff::Timestamp = until.as_str().unwrap().parse().unwrap();
                let after = jiff::Timestamp::try_from(before).unwrap();
                Some(until.as_second() - after.as_second())
            });
            let whatsapp = form.contains("From=whatsapp");
            for window in windows {
                assert_eq!(window.is_some(), whatsapp, "{form}");
                if let Some(seconds) = window {
                    assert!((86_400..=86_402).contains(&seconds), "{seconds} s");
                }
            }
            assert_eq!(program, logged, "{form}");
        }
    }

    #[test]
    fn text_is_decoded_exactly_with_invalid_utf8_as_replacement_characters() {
        let params = Params::parse(b"", Some(b"Body=%22q%22+%24%28x%29+%60y%60%0Aline+%FF"));
        let message = Message::from_params(&params, false);
        assert_eq!(
            message.body.as_deref(),
            Some("\"q\" $(x) `y`\nline \u{FFFD}")
        );
        assert_eq!(
            given("Body=%22q%22+%24%28x%29+%60y%60%0Aline+%FF", false)["body"],
            "\"q\" $(x) `y`\nline \u{FFFD}"
        );
    }

    #[test]
    fn the_main_fields_are_environment_variables_without_nul() {
        let params = Params::parse(
            b"",
            Some(b"MessageSid=SM1&From=a&Body=x%00y&MediaUrl0=u&MediaContentType0=image%2Fpng"),
        );
        let env = Message::from_params(&params, true).env();
        let get = |name: &str| env.iter().find(|(var, _)| *var == name).unwrap().1.clone();
        assert_eq!(get("MESSAGE_SID"), "SM1");
        assert_eq!(get("MESSAGE_BODY"), "xy");
        assert_eq!(get("MESSAGE_TO"), "");
        assert_eq!(get("MESSAGE_MEDIA_COUNT"), "1");
        assert_eq!(get("MESSAGE_MEDIA_CONTENT_TYPE"), "image/png");
        assert_eq!(get("MESSAGE_REPEAT"), "true");
    }

    #[test]
    fn a_text_over_1600_characters_is_several_messages_split_at_whitespace() {
        let words = "word ".repeat(700); // 3500 characters
        let messages = Reply::text(&words).messages();
        assert_eq!(messages.len(), 3);
        for message in &messages {
            assert!(message.text.chars().count() <= MAX_MESSAGE_CHARS);
            assert!(message.text.ends_with("word"), "split at whitespace");
        }
        let rejoined: Vec<&str> = messages.iter().map(|m| m.text.as_str()).collect();
        assert_eq!(rejoined.join(" "), words.trim_end());
        // Without whitespace, at exactly 1600 characters.
        let solid = "é".repeat(1601);
        let parts: Vec<usize> = Reply::text(&solid)
            .messages()
            .iter()
            .map(|m| m.text.chars().count())
            .collect();
        assert_eq!(parts, [1600, 1]);
        assert_eq!(Reply::text("x".repeat(1600)).messages().len(), 1);
        let texts = |text: String| -> Vec<String> {
            let messages = Reply::text(text).messages();
            messages.into_iter().map(|sent| sent.text).collect()
        };
        // At whitespace of more than one byte; never at leading whitespace.
        let (a, b) = ("a".repeat(1500), "b".repeat(200));
        assert_eq!(texts(format!("{a}\u{3000}{b}")), [a, b]);
        let c = "c".repeat(1700);
        assert_eq!(
            texts(format!(" {c}")),
            [format!(" {}", &c[..1599]), c[1599..].to_owned()]
        );
    }

    #[test]
    fn replies_render_as_twiml() {
        assert_eq!(
            Reply::none().render(),
            format!("{DECL}<Response />").as_bytes()
        );
        assert_eq!(Reply::text(" \n").render(), Reply::none().render());
        assert_eq!(
            String::from_utf8(
                Reply::text("a & b\u{1}")
                    .and(Reply::text("c"))
                    .with_media(["https://e.com/x.png"])
                    .unwrap()
                    .render()
            )
            .unwrap(),
            format!(
                "{DECL}<Response><Message>a &amp; b</Message><Message>c<Media>https://e.com/x.png</Media></Message></Response>"
            )
        );
        assert_eq!(
            Reply::none()
                .with_media(["e.com/x"])
                .unwrap_err()
                .to_string(),
            r#""e.com/x" is not an http or https URL; Twilio fetches media from absolute http(s) URLs"#
        );
    }

    #[test]
    fn a_twiml_document_passes_unchanged_only_when_twilio_would_accept_it() {
        let document = "<Response><Message to=\"+1555\">hi</Message></Response>";
        let reply = Reply::twiml(document).unwrap();
        assert_eq!(reply.render(), document.as_bytes());
        assert_eq!(reply.messages()[0].to.as_deref(), Some("+1555"));
        assert!(Reply::twiml("<Response/>").unwrap().is_none());
        assert_eq!(
            Reply::twiml("<Response><Say>x</Say></Response>")
                .unwrap_err()
                .code,
            Some(12200)
        );
        assert_eq!(Reply::twiml("<Response>").unwrap_err().code, Some(12100));
        let long = format!(
            "<Response><Message>{}</Message></Response>",
            "x".repeat(1601)
        );
        assert_eq!(Reply::twiml(long).unwrap_err().code, Some(21617));
        assert_eq!(
            Reply::twiml(document)
                .unwrap()
                .with_media(["https://e.com/x"]),
            Err(TwimlError::OwnDocument)
        );
    }

    #[test]
    fn coordinates_are_numbers_when_they_read_as_finite_ones() {
        let location = &given("Latitude=+52.5&Longitude=inf&Address=x", false)["location"];
        assert_eq!(location["latitude"], serde_json::json!(52.5));
        assert_eq!(location["longitude"], "inf");
    }

    #[test]
    fn a_document_of_64_kb_is_the_largest_accepted() {
        let document = |size: usize| {
            let padding = " ".repeat(size - "<Response></Response>".len());
            format!("<Response>{padding}</Response>")
        };
        assert!(Reply::twiml(document(64 * 1024)).unwrap().is_none());
        assert_eq!(
            Reply::twiml(document(64 * 1024 + 1)).unwrap_err().code,
            Some(11750)
        );
    }

    #[test]
    fn a_document_joined_with_more_keeps_each_message_whole() {
        let document = Reply::twiml(
            "<Response><Message>hi<Media>https://e.com/a.png</Media></Message>\
             <Message> </Message></Response>",
        )
        .unwrap();
        assert!(!document.is_none());
        assert!(!Reply::text("c").is_none());
        assert_eq!(
            String::from_utf8(document.and(Reply::text("c")).render()).unwrap(),
            format!(
                "{DECL}<Response><Message>hi<Media>https://e.com/a.png</Media></Message>\
                 <Message>c</Message></Response>"
            )
        );
    }

    #[test]
    fn a_function_is_a_handler() {
        let handler = |message: &Message| Reply::text(message.body.clone().unwrap_or_default());
        let message = Message {
            body: Some("hi".to_owned()),
            ..Message::default()
        };
        assert_eq!(
            Handler::reply(&handler, &message, Instant::now()),
            Ok(Reply::text("hi"))
        );
        assert_eq!(handler.choose_at_once(None), None);
    }
}
