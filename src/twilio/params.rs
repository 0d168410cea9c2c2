//! What Twilio posts: the parameters of an inbound message, a status
//! callback or a fallback request, read from the query string and the
//! form-encoded body in one pass.
//!
//! Only the parameters this server uses are kept (those Twilio documents for
//! WhatsApp and SMS messages, delivery statuses and fallbacks); any other
//! name, and Twilio adds new ones without notice, is skipped without being
//! decoded. Values stay as they were sent, still encoded, and are decoded
//! only when used: [`Value::decode`] for a string, [`Value::shown`] for a
//! log line, [`Value::with_decoded`] without an allocation.
//!
//! Parsing is pure and never fails: percent-encoding and `+` are decoded,
//! invalid UTF-8 becomes U+FFFD, and missing parameters are `None`. Pairs are
//! split and decoded exactly as form_urlencoded does it (the property tests
//! compare the two on arbitrary input), without its intermediate copies: on
//! the request loop, decoding two values with it cost more than writing the
//! whole answer.

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;

use crate::logging::Escaped;
use crate::twilio::twiml::MAX_MEDIA;

/// Declares each name once: as text in [`names`], and as bytes to match
/// the names of a request against without checking their UTF-8 first (which
/// cost 6% of a request).
macro_rules! names {
    ($($(#[$doc:meta])* $name:ident = $text:literal;)*) => {
        /// The names of the parameters, as Twilio spells them: read by the
        /// server, sent by `check`.
        pub mod names {
            $($(#[$doc])* pub const $name: &str = $text;)*
        }

        /// [`names`] as bytes.
        #[allow(dead_code, reason = "names only `check` sends are never read")]
        mod raw {
            $(pub const $name: &[u8] = $text.as_bytes();)*
        }
    };
}

names! {
    /// The message's unique id: `SM...`, or `MM...` with media.
    MESSAGE_SID = "MessageSid";
    /// The same id, under its former names.
    SMS_MESSAGE_SID = "SmsMessageSid";
    /// The same id, under its former names.
    SMS_SID = "SmsSid";
    /// The account the message belongs to: `AC...`.
    ACCOUNT_SID = "AccountSid";
    /// The sender, such as `whatsapp:+15551234567`.
    FROM = "From";
    /// The recipient, such as `whatsapp:+14155238886`.
    TO = "To";
    /// The text.
    BODY = "Body";
    /// The sender's WhatsApp profile name.
    PROFILE_NAME = "ProfileName";
    /// The sender's WhatsApp id: their number without `+`.
    WA_ID = "WaId";
    /// How many media the message has.
    NUM_MEDIA = "NumMedia";
    /// How many segments the message took.
    NUM_SEGMENTS = "NumSegments";
    /// How many media the ad a message answers had.
    REFERRAL_NUM_MEDIA = "ReferralNumMedia";
    /// `received` for an inbound message.
    SMS_STATUS = "SmsStatus";
    /// `text`, `image`, `location`, `button`, `interactive`...
    MESSAGE_TYPE = "MessageType";
    /// Always `2010-04-01`.
    API_VERSION = "ApiVersion";
    /// `MediaUrlN`: the URL of the `N`th media.
    MEDIA_URL = "MediaUrl";
    /// `MediaContentTypeN`: the type of the `N`th media.
    MEDIA_CONTENT_TYPE = "MediaContentType";
    /// A shared location's latitude.
    LATITUDE = "Latitude";
    /// A shared location's longitude.
    LONGITUDE = "Longitude";
    /// A shared location's address.
    ADDRESS = "Address";
    /// A shared location's label.
    LABEL = "Label";
    /// The text of a tapped button.
    BUTTON_TEXT = "ButtonText";
    /// The payload of a tapped button.
    BUTTON_PAYLOAD = "ButtonPayload";
    /// The message this one replies to.
    ORIGINAL_REPLIED_MESSAGE_SID = "OriginalRepliedMessageSid";
    /// The delivery status, in a status callback.
    MESSAGE_STATUS = "MessageStatus";
    /// A Twilio error code.
    ERROR_CODE = "ErrorCode";
    /// The URL that failed, in a fallback request.
    ERROR_URL = "ErrorUrl";
}

/// Whether a `Content-Type` value announces a form-encoded body (parameters
/// such as `charset` are allowed).
pub fn is_form(content_type: &str) -> bool {
    let media_type = content_type.split(';').next().unwrap_or_default();
    media_type
        .trim()
        .eq_ignore_ascii_case("application/x-www-form-urlencoded")
}

/// A parameter's value as sent: still percent-encoded.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Value<'a>(&'a [u8]);

impl<'a> Value<'a> {
    /// A value as it appears in a form or query string.
    pub fn new(raw: &'a [u8]) -> Value<'a> {
        Value(raw)
    }

    /// The bytes as sent.
    pub fn raw(self) -> &'a [u8] {
        self.0
    }

    /// Whether the value is empty.
    pub fn is_empty(self) -> bool {
        self.0.is_empty()
    }

    /// The decoded text, borrowed when nothing needed decoding.
    pub fn decode(self) -> Cow<'a, str> {
        decode(self.0)
    }

    /// Calls `use_it` with the decoded text, decoded into a buffer this
    /// thread keeps, so that nothing is allocated.
    pub fn with_decoded<T>(self, use_it: impl FnOnce(&str) -> T) -> T {
        thread_local! {
            static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
        }
        if memchr::memchr2(b'+', b'%', self.0).is_none() {
            return use_it(&utf8_lossy(self.0));
        }
        let mut use_it = Some(use_it);
        let shared = SCRATCH.try_with(|scratch| {
            // A reentrant call (a value shown while another is) decodes
            // on its own instead of sharing the buffer.
            let mut scratch = scratch.try_borrow_mut().ok()?;
            scratch.clear();
            decode_into(self.0, &mut scratch);
            use_it.take().map(|use_it| use_it(&utf8_lossy(&scratch)))
        });
        match (shared, use_it) {
            (Ok(Some(used)), _) => used,
            (_, Some(use_it)) => use_it(&self.decode()),
            (_, None) => unreachable!("BUG: use_it is taken only when it is used"),
        }
    }

    /// The decoded text for a log line: [`Escaped`], so that it can never
    /// look like a second line.
    pub fn shown(self) -> Shown<'a> {
        Shown(self)
    }
}

impl fmt::Debug for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Value({:?})", self.decode())
    }
}

/// A value decoded and [`Escaped`] for a log line.
#[derive(Clone, Copy, Debug)]
pub struct Shown<'a>(Value<'a>);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0
            .with_decoded(|text| fmt::Display::fmt(&Escaped(text), f))
    }
}

/// One media item of a message: `MediaUrlN` and `MediaContentTypeN`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Media<'a> {
    /// Where Twilio keeps the file.
    pub url: Option<Value<'a>>,
    /// Its MIME type, such as `image/jpeg`.
    pub content_type: Option<Value<'a>>,
}

/// The parameters this server reads from Twilio's requests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Params<'a> {
    /// `MessageSid`: the message's unique id, such as `SM...` or `MM...`.
    pub message_sid: Option<Value<'a>>,
    /// `From`: the sender, such as `whatsapp:+15551234567`.
    pub from: Option<Value<'a>>,
    /// `To`: the recipient; in a status callback, whom the message was sent
    /// to.
    pub to: Option<Value<'a>>,
    /// `Body`: the text of the message.
    pub body: Option<Value<'a>>,
    /// `ProfileName`: the sender's WhatsApp profile name.
    pub profile_name: Option<Value<'a>>,
    /// `NumMedia`: how many media the message has.
    pub num_media: Option<Value<'a>>,
    /// `MediaUrlN` and `MediaContentTypeN`, by `N`.
    pub media: [Media<'a>; MAX_MEDIA],
    /// `Latitude` of a shared location.
    pub latitude: Option<Value<'a>>,
    /// `Longitude` of a shared location.
    pub longitude: Option<Value<'a>>,
    /// `Address` of a shared location.
    pub address: Option<Value<'a>>,
    /// `Label` of a shared location.
    pub label: Option<Value<'a>>,
    /// `ButtonText`: the text of the button a sender tapped.
    pub button_text: Option<Value<'a>>,
    /// `ButtonPayload`: the payload of that button.
    pub button_payload: Option<Value<'a>>,
    /// `OriginalRepliedMessageSid`: the message this one replies to.
    pub replied_sid: Option<Value<'a>>,
    /// `MessageStatus`: set in status callbacks only.
    pub message_status: Option<Value<'a>>,
    /// `ErrorCode`: why a message failed, or why the primary URL failed in
    /// a fallback request.
    pub error_code: Option<Value<'a>>,
    /// `ErrorUrl`: the URL that failed, in a fallback request.
    pub error_url: Option<Value<'a>>,
}

/// What kind of request Twilio, or someone else, made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A delivery status of a message sent earlier: it has `MessageStatus`.
    Status,
    /// An inbound message whose primary URL failed: it has `ErrorCode` and
    /// `ErrorUrl`.
    Fallback,
    /// An inbound message: it has a `MessageSid` or a `From`.
    Message,
    /// None of those: someone checking the URL with curl or a browser.
    Check,
}

impl<'a> Params<'a> {
    /// Reads the parameters from a query string (the part of the URL after
    /// `?`) and, when given, from an `application/x-www-form-urlencoded`
    /// body.
    ///
    /// A parameter in the body wins over the same parameter in the query
    /// string; within one of them, the first occurrence of a name wins.
    pub fn parse(query: &'a [u8], form: Option<&'a [u8]>) -> Params<'a> {
        let mut params = Params::default();
        for (name, value) in form.into_iter().chain([query]).flat_map(pairs) {
            if let Some(slot) = params.slot(name) {
                slot.get_or_insert(value);
            }
        }
        params
    }

    /// Where the parameter called `raw_name` (as sent) goes, if it is one
    /// this server reads.
    fn slot(&mut self, raw_name: &[u8]) -> Option<&mut Option<Value<'a>>> {
        // A name can only be spelled with `%XX` escapes to become one
        // of those read (a `+` decodes to a space, which none has):
        // decode such names, and compare the others as they are.
        let decoded;
        let name = if raw_name.contains(&b'%') {
            decoded = decode(raw_name);
            decoded.as_bytes()
        } else {
            raw_name
        };
        Some(match name {
            raw::MESSAGE_SID => &mut self.message_sid,
            raw::FROM => &mut self.from,
            raw::TO => &mut self.to,
            raw::BODY => &mut self.body,
            raw::PROFILE_NAME => &mut self.profile_name,
            raw::NUM_MEDIA => &mut self.num_media,
            raw::LATITUDE => &mut self.latitude,
            raw::LONGITUDE => &mut self.longitude,
            raw::ADDRESS => &mut self.address,
            raw::LABEL => &mut self.label,
            raw::BUTTON_TEXT => &mut self.button_text,
            raw::BUTTON_PAYLOAD => &mut self.button_payload,
            raw::ORIGINAL_REPLIED_MESSAGE_SID => &mut self.replied_sid,
            raw::MESSAGE_STATUS => &mut self.message_status,
            raw::ERROR_CODE => &mut self.error_code,
            raw::ERROR_URL => &mut self.error_url,
            _ => {
                if let Some(index) = media_index(name, raw::MEDIA_URL) {
                    &mut self.media[index].url
                } else if let Some(index) = media_index(name, raw::MEDIA_CONTENT_TYPE) {
                    &mut self.media[index].content_type
                } else {
                    return None;
                }
            }
        })
    }

    /// What kind of request these parameters make.
    pub fn kind(&self) -> Kind {
        if self.message_status.is_some() {
            Kind::Status
        } else if self.error_code.is_some() && self.error_url.is_some() {
            Kind::Fallback
        } else if self.message_sid.is_some() || self.from.is_some() {
            Kind::Message
        } else {
            Kind::Check
        }
    }

    /// The media of the message, in order of `N`, each with a URL or a
    /// type.
    pub fn media(&self) -> impl Iterator<Item = &Media<'a>> {
        self.media
            .iter()
            .filter(|media| media.url.is_some() || media.content_type.is_some())
    }

    /// Whether the message shares a location.
    pub fn has_location(&self) -> bool {
        self.latitude.is_some() || self.longitude.is_some()
    }
}

/// `N` of a name `prefix` + `N`, for `N` below [`MAX_MEDIA`] written
/// without leading zeros, as Twilio writes it.
fn media_index(name: &[u8], prefix: &[u8]) -> Option<usize> {
    match name.strip_prefix(prefix)? {
        [digit @ b'0'..=b'9'] => Some(usize::from(digit - b'0')),
        _ => None,
    }
}

/// Every `name=value` pair of a query string or form body, split on `&` and
/// the first `=` as form_urlencoded splits them (empty pairs skipped), with
/// one vectorised search for `&` over the whole of it.
pub fn pairs(encoded: &[u8]) -> impl Iterator<Item = (&[u8], Value<'_>)> {
    let mut start = 0;
    memchr::memchr_iter(b'&', encoded)
        .chain(std::iter::once(encoded.len()))
        .filter_map(move |end| {
            let pair = &encoded[start..end];
            start = end + 1;
            if pair.is_empty() {
                return None;
            }
            Some(match pair.iter().position(|&b| b == b'=') {
                Some(at) => (&pair[..at], Value(&pair[at + 1..])),
                None => (pair, Value(b"")),
            })
        })
}

/// Decodes one name or value of a form as form_urlencoded does: `+` is a
/// space, `%XY` the byte `XY` (a `%` not followed by two hex digits stays as
/// it is), and bytes that are not UTF-8 become U+FFFD. Borrows when there is
/// nothing to decode.
pub fn decode(raw: &[u8]) -> Cow<'_, str> {
    if memchr::memchr2(b'+', b'%', raw).is_none() {
        return utf8_lossy(raw);
    }
    let mut bytes = Vec::with_capacity(raw.len());
    decode_into(raw, &mut bytes);
    match String::from_utf8(bytes) {
        Ok(text) => Cow::Owned(text),
        Err(error) => Cow::Owned(String::from_utf8_lossy(error.as_bytes()).into_owned()),
    }
}

/// `bytes` as text, invalid UTF-8 replaced by U+FFFD: the fast validation
/// first, the replacing pass only when it fails.
fn utf8_lossy(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// Appends the bytes `raw` decodes to, before any UTF-8 check, to `out`.
fn decode_into(raw: &[u8], out: &mut Vec<u8>) {
    // Decoding never lengthens: write into room for all of `raw`, then cut.
    let start = out.len();
    out.resize(start + raw.len(), 0);
    let room = &mut out[start..];
    let (mut read, mut written) = (0, 0);
    while read < raw.len() {
        let byte = match raw[read] {
            b'+' => b' ',
            b'%' => match raw.get(read + 1..read + 3) {
                Some(&[high, low]) if high.is_ascii_hexdigit() && low.is_ascii_hexdigit() => {
                    read += 2;
                    hex(high) << 4 | hex(low)
                }
                _ => b'%',
            },
            byte => byte,
        };
        room[written] = byte;
        written += 1;
        read += 1;
    }
    out.truncate(start + written);
}

/// The value of an ASCII hex digit.
fn hex(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        _ => digit - b'A' + 10,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(value: Option<Value<'_>>) -> Option<String> {
        value.map(|value| value.decode().into_owned())
    }

    fn from_and_body(query: &str, form: Option<&str>) -> (Option<String>, Option<String>) {
        let params = Params::parse(query.as_bytes(), form.map(str::as_bytes));
        (text(params.from), text(params.body))
    }

    fn some(from: &str, body: &str) -> (Option<String>, Option<String>) {
        (Some(from.to_owned()), Some(body.to_owned()))
    }

    #[test]
    fn form_content_type_is_recognised_with_parameters_and_any_case() {
        assert!(is_form("application/x-www-form-urlencoded"));
        assert!(is_form("application/x-www-form-urlencoded; charset=UTF-8"));
        assert!(is_form(" Application/X-WWW-Form-URLEncoded ;charset=utf-8"));
        assert!(!is_form("application/json"));
        assert!(!is_form("multipart/form-data; boundary=x"));
        assert!(!is_form(""));
    }

    #[test]
    fn percent_encoding_and_plus_are_decoded() {
        assert_eq!(
            from_and_body(
                "",
                Some(
                    "From=whatsapp%3A%2B15551234567&Body=Hello+doc%21+Caf%C3%A9+%26+co+%3D+100%25+%F0%9F%91%8B"
                )
            ),
            some("whatsapp:+15551234567", "Hello doc! Café & co = 100% 👋")
        );
    }

    #[test]
    fn values_without_encoding_borrow_from_the_request() {
        let params = Params::parse(b"From=alice&Body=hi", None);
        assert!(matches!(
            params.from.unwrap().decode(),
            Cow::Borrowed("alice")
        ));
        assert!(matches!(params.body.unwrap().decode(), Cow::Borrowed("hi")));
    }

    #[test]
    fn query_string_is_read_when_there_is_no_body() {
        assert_eq!(
            from_and_body("From=%2B1555&Body=from+the+query", None),
            some("+1555", "from the query")
        );
    }

    #[test]
    fn body_wins_over_query_string_parameter_by_parameter() {
        assert_eq!(
            from_and_body("From=query&Body=query", Some("Body=form")),
            some("query", "form")
        );
        assert_eq!(
            from_and_body("Body=query", Some("From=form")),
            some("form", "query")
        );
    }

    #[test]
    fn first_of_repeated_names_wins() {
        assert_eq!(
            from_and_body("", Some("Body=first&From=a&Body=second&From=b")),
            some("a", "first")
        );
    }

    #[test]
    fn missing_parameters_are_none_and_empty_values_are_empty() {
        assert_eq!(from_and_body("", None), (None, None));
        assert_eq!(
            from_and_body("", Some("Body=&From")),
            (Some(String::new()), Some(String::new()))
        );
        assert_eq!(
            from_and_body("&&=&From", Some("")),
            (Some(String::new()), None)
        );
    }

    #[test]
    fn encoded_names_are_decoded_before_they_are_compared() {
        assert_eq!(from_and_body("%46rom=a&B%6Fdy=b", None), some("a", "b"));
        assert_eq!(from_and_body("From+=a&+Body=b", None), (None, None));
        assert_eq!(from_and_body("Fro%6D", None), (Some(String::new()), None));
        let params = Params::parse(b"Original%52epliedMessageSid=SM1&MediaUrl%30=u", None);
        assert_eq!(text(params.replied_sid).as_deref(), Some("SM1"));
        assert_eq!(text(params.media[0].url).as_deref(), Some("u"));
    }

    #[test]
    fn names_are_case_sensitive_like_twilios() {
        assert_eq!(from_and_body("from=a&BODY=b", None), (None, None));
    }

    #[test]
    fn invalid_utf8_and_broken_percent_escapes_do_not_fail() {
        let params = Params::parse(b"Body=%FF%FE+ok&From=%E2%82", None);
        assert_eq!(text(params.body).as_deref(), Some("\u{FFFD}\u{FFFD} ok"));
        assert_eq!(text(params.from).as_deref(), Some("\u{FFFD}"));
        assert_eq!(
            from_and_body("Body=100%&From=%zz%4", None),
            some("%zz%4", "100%")
        );
        let raw = Params::parse(b"Body=\xff\x00\xc3", None);
        assert_eq!(text(raw.body).as_deref(), Some("\u{FFFD}\u{0}\u{FFFD}"));
    }

    #[test]
    fn media_are_read_by_index_and_unknown_indexes_ignored() {
        let params = Params::parse(
            b"NumMedia=2&MediaContentType1=video%2Fmp4&MediaUrl0=https%3A%2F%2Fa&MediaUrl1=https%3A%2F%2Fb&MediaContentType0=image%2Fjpeg&MediaUrl10=x&MediaUrl01=y&MediaUrl=z",
            None,
        );
        let media: Vec<(Option<String>, Option<String>)> = params
            .media()
            .map(|media| (text(media.url), text(media.content_type)))
            .collect();
        assert_eq!(
            media,
            [
                (Some("https://a".into()), Some("image/jpeg".into())),
                (Some("https://b".into()), Some("video/mp4".into()))
            ]
        );
        assert_eq!(text(params.num_media).as_deref(), Some("2"));
    }

    #[test]
    fn a_media_needs_a_url_or_a_type_and_a_location_either_coordinate() {
        let params = Params::parse(b"", Some(b"MediaUrl0=u&MediaContentType2=image%2Fpng"));
        let media: Vec<_> = params
            .media()
            .map(|media| (text(media.url), text(media.content_type)))
            .collect();
        assert_eq!(
            media,
            [(Some("u".into()), None), (None, Some("image/png".into()))]
        );
        assert!(!Params::parse(b"", Some(b"Body=x")).has_location());
        assert!(Params::parse(b"", Some(b"Latitude=52.5")).has_location());
        assert!(Params::parse(b"", Some(b"Longitude=13.4")).has_location());
    }

    #[test]
    fn a_value_debugs_as_its_decoded_text() {
        let params = Params::parse(b"", Some(b"Body=caf%C3%A9+%22ok%22"));
        assert_eq!(
            format!("{:?}", params.body.expect("a body")),
            r#"Value("café \"ok\"")"#
        );
    }

    #[test]
    fn the_kind_of_request_follows_from_its_parameters() {
        let kind = |form: &str| Params::parse(b"", Some(form.as_bytes())).kind();
        assert_eq!(kind("MessageSid=SM1&MessageStatus=delivered"), Kind::Status);
        assert_eq!(
            kind("MessageSid=SM1&From=a&ErrorCode=11200&ErrorUrl=https%3A%2F%2Fx"),
            Kind::Fallback
        );
        assert_eq!(kind("MessageSid=SM1&ErrorCode=11200"), Kind::Message);
        assert_eq!(kind("From=a"), Kind::Message);
        assert_eq!(kind("MessageSid=SM1"), Kind::Message);
        assert_eq!(kind("Body=hello"), Kind::Check);
        assert_eq!(kind(""), Kind::Check);
    }

    #[test]
    fn location_button_and_reply_parameters_are_read() {
        let params = Params::parse(
            b"Latitude=52.5200&Longitude=13.4050&Address=Pariser+Platz%2C+Berlin&Label=Brandenburger+Tor&ButtonText=Yes&ButtonPayload=yes_1&OriginalRepliedMessageSid=MM5cc4",
            None,
        );
        assert!(params.has_location());
        assert_eq!(text(params.latitude).as_deref(), Some("52.5200"));
        assert_eq!(
            text(params.address).as_deref(),
            Some("Pariser Platz, Berlin")
        );
        assert_eq!(text(params.label).as_deref(), Some("Brandenburger Tor"));
        assert_eq!(text(params.button_text).as_deref(), Some("Yes"));
        assert_eq!(text(params.button_payload).as_deref(), Some("yes_1"));
        assert_eq!(text(params.replied_sid).as_deref(), Some("MM5cc4"));
    }

    #[test]
    fn shown_values_are_decoded_and_escaped_for_a_log_line() {
        let params = Params::parse(
            b"From=whatsapp%3A%2B1555&Body=hi%0A%5B2026-01-01T00%3A00%3A00Z+INFO%5D+forged%0D%1B%5B2J%E2%80%A8%E2%80%AE%5C",
            None,
        );
        assert_eq!(
            format!(
                "{}: {}",
                params.from.unwrap().shown(),
                params.body.unwrap().shown()
            ),
            r"whatsapp:+1555: hi\n[2026-01-01T00:00:00Z INFO] forged\r\u{1b}[2J\u{2028}\u{202e}\\"
        );
        let quoted = Params::parse("Body=It's \"Café\" 👋".as_bytes(), None);
        assert_eq!(quoted.body.unwrap().shown().to_string(), "It's \"Café\" 👋");
    }

    #[test]
    fn decoding_into_this_threads_buffer_gives_the_same_text() {
        let value = Value::new(b"Caf%C3%A9+%F0%9F%91%8B%FF");
        assert_eq!(value.with_decoded(str::to_owned), value.decode());
        // Nested use does not share the buffer.
        let nested = value.with_decoded(|outer| {
            Value::new(b"x%41").with_decoded(|inner| format!("{outer}/{inner}"))
        });
        assert_eq!(nested, "Café 👋\u{FFFD}/xA");
    }
}
