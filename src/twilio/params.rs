//! The inbound message: `From` and `Body`, read from the query string and the
//! form-encoded request body that Twilio sends.
//!
//! Parsing is pure and never fails: percent-encoding and `+` are decoded,
//! invalid UTF-8 becomes U+FFFD, and missing parameters are `None`. Values
//! borrow from the request when they need no decoding.
//!
//! Pairs are split and decoded exactly as form_urlencoded does it (the
//! property tests compare the two on arbitrary input), but only for the
//! parameters wanted, and with one allocation per decoded value instead of
//! form_urlencoded's three to six: on the request loop, decoding two values
//! cost more than writing the whole answer.

use std::borrow::Cow;
use std::fmt;

use crate::logging::Escaped;

/// Whether a `Content-Type` value announces a form-encoded body (parameters
/// such as `charset` are allowed).
pub fn is_form(content_type: &str) -> bool {
    let media_type = content_type.split(';').next().unwrap_or_default();
    media_type
        .trim()
        .eq_ignore_ascii_case("application/x-www-form-urlencoded")
}

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
        for pair in pairs(encoded) {
            if !may_be_named(pair, [b"From", b"Body"]) {
                continue;
            }
            let (name, value) = split_pair(pair);
            let slot = match decode(name).as_ref() {
                "From" => &mut self.from,
                "Body" => &mut self.body,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(decode(value));
            }
            if self.from.is_some() && self.body.is_some() {
                return;
            }
        }
    }
}

/// The `name=value` pairs of a query string or form body, split on `&` as
/// form_urlencoded splits them (empty pairs skipped), with one vectorised
/// search over the whole of it.
fn pairs(encoded: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut start = 0;
    memchr::memchr_iter(b'&', encoded)
        .chain(std::iter::once(encoded.len()))
        .filter_map(move |end| {
            let pair = &encoded[start..end];
            start = end + 1;
            (!pair.is_empty()).then_some(pair)
        })
}

/// A pair's name and value, split at its first `=`; a pair without one is
/// a name with an empty value.
fn split_pair(pair: &[u8]) -> (&[u8], &[u8]) {
    match pair.iter().position(|&b| b == b'=') {
        Some(at) => (&pair[..at], &pair[at + 1..]),
        None => (pair, b""),
    }
}

/// Decodes one name or value of a form as form_urlencoded does: `+` is a
/// space, `%XY` the byte `XY` (a `%` not followed by two hex digits stays as
/// it is), and bytes that are not UTF-8 become U+FFFD. Borrows when there is
/// nothing to decode.
pub fn decode(raw: &[u8]) -> Cow<'_, str> {
    if memchr::memchr2(b'+', b'%', raw).is_none() {
        return String::from_utf8_lossy(raw);
    }
    let mut bytes = Vec::with_capacity(raw.len());
    let mut rest = raw;
    while let Some((&byte, after)) = rest.split_first() {
        rest = after;
        bytes.push(match byte {
            b'+' => b' ',
            b'%' => match after {
                [high, low, tail @ ..] if high.is_ascii_hexdigit() && low.is_ascii_hexdigit() => {
                    rest = tail;
                    hex(*high) << 4 | hex(*low)
                }
                _ => b'%',
            },
            byte => byte,
        });
    }
    match String::from_utf8(bytes) {
        Ok(text) => Cow::Owned(text),
        Err(error) => Cow::Owned(String::from_utf8_lossy(error.as_bytes()).into_owned()),
    }
}

/// The value of an ASCII hex digit.
fn hex(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        _ => digit - b'A' + 10,
    }
}

/// Whether the name of `pair` is, or may decode to, one of `names` (each
/// four ASCII letters), looking at no more than its first 13 bytes: a `+`
/// decodes to a space, so only `%XX` escapes can spell such a name, in at
/// most twelve bytes.
fn may_be_named(pair: &[u8], names: [&[u8; 4]; 2]) -> bool {
    let head = &pair[..pair.len().min(13)];
    let name = match head.iter().position(|&b| b == b'=') {
        Some(end) => &head[..end],
        None if pair.len() <= 12 => pair,
        None => return false,
    };
    names.iter().any(|wanted| name == &wanted[..]) || (name.len() > 4 && name.contains(&b'%'))
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
