//! The inbound message: `From` and `Body`, read from the query string and the
//! form-encoded request body that Twilio sends.
//!
//! Parsing is pure and never fails: percent-encoding and `+` are decoded,
//! invalid UTF-8 becomes U+FFFD, and missing parameters are `None`. Values
//! borrow from the request when they need no decoding.

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
