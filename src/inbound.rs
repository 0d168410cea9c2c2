//! The inbound message: `From` and `Body`, read from the query string and the
//! form-encoded request body that Twilio sends.
//!
//! Parsing is pure and never fails: percent-encoding and `+` are decoded,
//! invalid UTF-8 becomes U+FFFD, and missing parameters are `None`. Values
//! borrow from the request when they need no decoding.
//!
//! [`Escaped`] writes a value for a log line, so that what a sender types can
//! never look like a second log line.

use std::borrow::Cow;
use std::fmt;
use std::io::{self, Read};
use std::time::Instant;

/// The largest request body read, in bytes: 64 KiB. Twilio's own requests
/// are a few kilobytes at most.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Whether a `Content-Type` value announces a form-encoded body (parameters
/// such as `charset` are allowed).
pub fn is_form(content_type: &str) -> bool {
    let media_type = content_type.split(';').next().unwrap_or_default();
    media_type
        .trim()
        .eq_ignore_ascii_case("application/x-www-form-urlencoded")
}

/// Reads a whole body into `buf`, refusing to read more than `limit` bytes
/// (at most `limit + 1` are read, so a body over the limit is noticed
/// without being stored) or to go on reading after `deadline`.
///
/// `expected` is the announced length: a body that ends before it is an
/// error, not a shorter body.
///
/// # Errors
///
/// [`BodyError::TooLarge`] over the limit, [`BodyError::TimedOut`] past the
/// deadline or when the socket's read timeout expires,
/// [`BodyError::Short`] when the client closed early, and
/// [`BodyError::Io`] for any other read error.
pub fn read_body(
    reader: &mut dyn Read,
    expected: Option<usize>,
    limit: usize,
    deadline: Option<Instant>,
    buf: &mut Vec<u8>,
) -> Result<(), BodyError> {
    buf.clear();
    loop {
        // One read at a time, so that the deadline is looked at after each;
        // no more room than the rest of the announced body, so that a small
        // body costs no large buffer to zero.
        let room = (limit + 1 - buf.len()).min(16 * 1024);
        let want = expected.map_or(room, |expected| {
            expected.saturating_sub(buf.len()).clamp(1, room)
        });
        let start = buf.len();
        buf.resize(start + want, 0);
        let result = reader.read(&mut buf[start..]);
        buf.truncate(start + result.as_ref().map_or(0, |&read| read));
        match result {
            Ok(0) => break,
            Ok(_) => {}
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(BodyError::TimedOut);
            }
            Err(error) => return Err(BodyError::Io(error)),
        }
        if buf.len() > limit {
            return Err(BodyError::TooLarge { limit });
        }
        if expected.is_some_and(|expected| buf.len() >= expected) {
            break;
        }
        if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            return Err(BodyError::TimedOut);
        }
    }
    match expected {
        Some(expected) if buf.len() < expected => Err(BodyError::Short {
            expected,
            received: buf.len(),
        }),
        _ => Ok(()),
    }
}

/// Why a request body could not be read.
#[derive(Debug)]
pub enum BodyError {
    /// The body is longer than `limit` bytes.
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The client did not send the body in time.
    TimedOut,
    /// The client closed the connection before the announced length.
    Short {
        /// The announced length.
        expected: usize,
        /// How much arrived.
        received: usize,
    },
    /// Reading the body failed.
    Io(io::Error),
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BodyError::TooLarge { limit } => write!(f, "the body is larger than {limit} bytes"),
            BodyError::TimedOut => f.write_str("the body did not arrive in time"),
            BodyError::Short { expected, received } => write!(
                f,
                "the body ended after {received} of the {expected} bytes announced"
            ),
            BodyError::Io(error) => write!(f, "cannot read the body: {error}"),
        }
    }
}

impl std::error::Error for BodyError {}

/// The parameters of an inbound message that this server reads.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Inbound<'a> {
    /// Who sent the message, for example `whatsapp:+15551234567`.
    pub from: Option<Cow<'a, str>>,
    /// The text of the message.
    pub body: Option<Cow<'a, str>>,
}

impl<'a> Inbound<'a> {
    /// Reads `From` and `Body` from a query string (the part of the URL after
    /// `?`) and, when given, from an `application/x-www-form-urlencoded` body.
    ///
    /// A parameter in the body wins over the same parameter in the query
    /// string; within one of them, the first occurrence of a name wins.
    pub fn parse(query: &'a [u8], form: Option<&'a [u8]>) -> Inbound<'a> {
        let mut inbound = Inbound::default();
        if let Some(form) = form {
            inbound.fill_from(form);
        }
        inbound.fill_from(query);
        inbound
    }

    /// Fills the parameters still missing from `encoded`.
    fn fill_from(&mut self, encoded: &'a [u8]) {
        // Splitting on `&` and `=` is what form_urlencoded does too; only the
        // pairs whose name is, or may decode to, From or Body are decoded,
        // not the twenty-odd other fields Twilio sends.
        for pair in encoded.split(|&b| b == b'&') {
            let raw_name = pair.split(|&b| b == b'=').next().unwrap_or_default();
            let candidate = matches!(raw_name, b"From" | b"Body")
                || raw_name.iter().any(|&b| b == b'%' || b == b'+');
            let Some((name, value)) = candidate
                .then(|| form_urlencoded::parse(pair).next())
                .flatten()
            else {
                continue;
            };
            let slot = match name.as_ref() {
                "From" => &mut self.from,
                "Body" => &mut self.body,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(value);
            }
            if self.from.is_some() && self.body.is_some() {
                return;
            }
        }
    }
}

impl Inbound<'_> {
    /// `From` for a log line: [`Escaped`], or `(no From)`.
    pub fn sender(&self) -> Shown<'_> {
        Shown(self.from.as_deref(), "(no From)")
    }

    /// `Body` for a log line: [`Escaped`], or `(no Body)`.
    pub fn text(&self) -> Shown<'_> {
        Shown(self.body.as_deref(), "(no Body)")
    }
}

/// A parameter for a log line: its value [`Escaped`], or a placeholder when
/// the request did not carry it.
pub struct Shown<'a>(Option<&'a str>, &'static str);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(value) => Escaped(value).fmt(f),
            None => f.write_str(self.1),
        }
    }
}

/// Displays a value with the characters that could forge or disguise a log
/// line escaped the way Rust escapes them in `{:?}` (`\n`, `\u{1b}`, ...):
/// control characters, the Unicode line and paragraph separators, the
/// bidirectional formatting characters, and the backslash itself, so that an
/// escape in the log is never ambiguous. Everything else, including quotes and
/// non-ASCII text, is written as it is.
pub struct Escaped<'a>(pub &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut plain_from = 0;
        for (at, c) in self.0.char_indices().filter(|&(_, c)| needs_escape(c)) {
            f.write_str(&self.0[plain_from..at])?;
            write!(f, "{}", c.escape_debug())?;
            plain_from = at + c.len_utf8();
        }
        f.write_str(&self.0[plain_from..])
    }
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || c == '\\'
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' // line and paragraph separators
                | '\u{061C}' | '\u{200E}' | '\u{200F}' // bidirectional marks
                | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' // bidirectional embeddings and isolates
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(query: &str, form: Option<&str>) -> (Option<String>, Option<String>) {
        let inbound = Inbound::parse(query.as_bytes(), form.map(str::as_bytes));
        (
            inbound.from.map(Cow::into_owned),
            inbound.body.map(Cow::into_owned),
        )
    }

    fn some(from: &str, body: &str) -> (Option<String>, Option<String>) {
        (Some(from.to_owned()), Some(body.to_owned()))
    }

    #[test]
    fn body_of_exactly_the_limit_is_read_whole() {
        let mut buf = b"left over".to_vec();
        read_body(&mut &[7u8; 100][..], Some(100), 100, None, &mut buf).unwrap();
        assert_eq!(buf, [7u8; 100]);
    }

    #[test]
    fn body_one_byte_over_the_limit_is_refused_after_reading_limit_plus_one() {
        let mut source = &[7u8; 1000][..];
        let mut buf = Vec::new();
        assert!(matches!(
            read_body(&mut source, None, 100, None, &mut buf),
            Err(BodyError::TooLarge { limit: 100 })
        ));
        assert_eq!(buf.len(), 101);
        assert_eq!(source.len(), 899, "must not read past limit + 1");
    }

    #[test]
    fn short_and_empty_bodies_are_read() {
        let mut buf = Vec::new();
        read_body(&mut &b"From=x"[..], Some(6), 100, None, &mut buf).unwrap();
        assert_eq!(buf, b"From=x");
        read_body(&mut &b""[..], None, 100, None, &mut buf).unwrap();
        assert!(buf.is_empty());
    }

    #[test]
    fn read_errors_are_reported() {
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::ErrorKind::ConnectionReset.into())
            }
        }
        let error = read_body(&mut Broken, None, 100, None, &mut Vec::new()).unwrap_err();
        assert!(matches!(&error, BodyError::Io(e) if e.kind() == io::ErrorKind::ConnectionReset));
        assert!(error.to_string().starts_with("cannot read the body: "));
    }

    #[test]
    fn a_body_that_ends_before_its_announced_length_is_short() {
        let error = read_body(&mut &b"From=x"[..], Some(10), 100, None, &mut Vec::new());
        assert!(matches!(
            error,
            Err(BodyError::Short {
                expected: 10,
                received: 6
            })
        ));
    }

    #[test]
    fn a_socket_read_timeout_or_a_passed_deadline_is_a_timeout() {
        struct Stalled;
        impl Read for Stalled {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::ErrorKind::WouldBlock.into())
            }
        }
        let error = read_body(&mut Stalled, Some(10), 100, None, &mut Vec::new());
        assert!(matches!(error, Err(BodyError::TimedOut)));
        let past = Instant::now();
        let mut endless = io::repeat(b'x');
        let error = read_body(&mut endless, None, 100_000, Some(past), &mut Vec::new());
        assert!(matches!(error, Err(BodyError::TimedOut)));
        // A client that trickles its body a byte at a time is stopped at the
        // deadline, not at the end of the body.
        struct Trickle;
        impl Read for Trickle {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                buf[0] = b'x';
                Ok(1)
            }
        }
        let mut buf = Vec::new();
        let error = read_body(&mut Trickle, Some(1000), 2000, Some(past), &mut buf);
        assert!(matches!(error, Err(BodyError::TimedOut)));
        assert_eq!(buf, b"x");
        let whole = read_body(
            &mut &[1u8; 50][..],
            Some(50),
            100,
            Some(past),
            &mut Vec::new(),
        );
        assert!(whole.is_ok(), "a body that arrived whole is not late");
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
            parse(
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
        let inbound = Inbound::parse(b"From=alice&Body=hi", None);
        assert!(matches!(inbound.from, Some(Cow::Borrowed("alice"))));
        assert!(matches!(inbound.body, Some(Cow::Borrowed("hi"))));
    }

    #[test]
    fn query_string_is_read_when_there_is_no_body() {
        assert_eq!(
            parse("From=%2B1555&Body=from+the+query", None),
            some("+1555", "from the query")
        );
    }

    #[test]
    fn body_wins_over_query_string_parameter_by_parameter() {
        assert_eq!(
            parse("From=query&Body=query", Some("Body=form")),
            some("query", "form")
        );
        assert_eq!(
            parse("Body=query", Some("From=form")),
            some("form", "query")
        );
    }

    #[test]
    fn first_of_repeated_names_wins() {
        assert_eq!(
            parse("", Some("Body=first&From=a&Body=second&From=b")),
            some("a", "first")
        );
    }

    #[test]
    fn missing_parameters_are_none_and_empty_values_are_empty() {
        assert_eq!(parse("", None), (None, None));
        assert_eq!(
            parse("", Some("Body=&From")),
            (Some(String::new()), Some(String::new()))
        );
        assert_eq!(parse("&&=&From", Some("")), (Some(String::new()), None));
    }

    #[test]
    fn encoded_names_are_decoded_before_they_are_compared() {
        assert_eq!(parse("%46rom=a&B%6Fdy=b", None), some("a", "b"));
        assert_eq!(parse("From+=a&+Body=b", None), (None, None));
        assert_eq!(parse("Fro%6D", None), (Some(String::new()), None));
    }

    #[test]
    fn names_are_case_sensitive_like_twilios() {
        assert_eq!(parse("from=a&BODY=b", None), (None, None));
    }

    #[test]
    fn invalid_utf8_and_broken_percent_escapes_do_not_fail() {
        let inbound = Inbound::parse(b"Body=%FF%FE+ok&From=%E2%82", None);
        assert_eq!(inbound.body.as_deref(), Some("\u{FFFD}\u{FFFD} ok"));
        assert_eq!(inbound.from.as_deref(), Some("\u{FFFD}"));
        assert_eq!(parse("Body=100%&From=%zz%4", None), some("%zz%4", "100%"));
        let raw = Inbound::parse(b"Body=\xff\x00\xc3", None);
        assert_eq!(raw.body.as_deref(), Some("\u{FFFD}\u{0}\u{FFFD}"));
    }

    fn shown(inbound: &Inbound<'_>) -> String {
        format!("from {}: {}", inbound.sender(), inbound.text())
    }

    #[test]
    fn log_values_escape_what_could_forge_a_log_line() {
        let inbound = Inbound::parse(
            b"From=whatsapp%3A%2B1555&Body=hi%0A%5B2026-01-01T00%3A00%3A00Z+INFO%5D+forged%0D%1B%5B2J%E2%80%A8%E2%80%AE%5C",
            None,
        );
        assert_eq!(
            shown(&inbound),
            r"from whatsapp:+1555: hi\n[2026-01-01T00:00:00Z INFO] forged\r\u{1b}[2J\u{2028}\u{202e}\\"
        );
    }

    #[test]
    fn log_values_keep_quotes_and_non_ascii_text_as_they_are() {
        let inbound = Inbound::parse("Body=It's \"Café\" 👋&From=x".as_bytes(), None);
        assert_eq!(shown(&inbound), "from x: It's \"Café\" 👋");
    }

    #[test]
    fn log_values_name_missing_parameters() {
        assert_eq!(shown(&Inbound::default()), "from (no From): (no Body)");
    }
}
