//! Properties checked on generated input (the same ones the fuzz targets in
//! `fuzz/` check for much longer): the TwiML renderer always writes
//! well-formed XML whose text is the input minus the characters XML forbids,
//! and the parameter parser never fails, decodes and finds exactly what
//! form_urlencoded does, and reads back what a form encoder wrote.

use proptest::prelude::*;
use whatsapp_webhook::events;
use whatsapp_webhook::http::framing;
use whatsapp_webhook::logging;
use whatsapp_webhook::logging::Escaped;
use whatsapp_webhook::twilio::params::{self, Params};
use whatsapp_webhook::twilio::twiml::Reply;
use whatsapp_webhook::twilio::verdict::{self, Answer, Verdict};

/// Any text: a mix of every kind of character, XML's forbidden ones and
/// markup included.
fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            any::<char>(),
            prop::sample::select(vec![
                '<', '>', '&', '\'', '"', '\r', '\n', '\t', '\0', '\u{FFFE}', ';', '#'
            ]),
        ],
        0..200,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

/// The text of every text node directly under `node`, in order.
fn own_text(node: roxmltree::Node<'_, '_>) -> String {
    node.children()
        .filter(|child| child.is_text())
        .filter_map(|child| child.text())
        .collect()
}

/// Whether XML 1.0 allows `c` in a document (its `Char` production), as
/// the specification writes it, not as the renderer does.
fn xml_char(c: char) -> bool {
    matches!(c, '\u{9}' | '\u{A}' | '\u{D}' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}')
        || c >= '\u{10000}'
}

/// The text the server sends for `text`: without the characters XML
/// forbids, and nothing when only whitespace is left.
fn sent(text: &str) -> String {
    let kept: String = text.chars().filter(|&c| xml_char(c)).collect();
    if kept.trim().is_empty() {
        String::new()
    } else {
        kept
    }
}

/// Cases per property: 2000, or `PROPTEST_CASES` (scripts/mutants.sh runs
/// fewer, for each of hundreds of mutants).
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(2000)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn twiml_is_well_formed_and_keeps_the_text(text in text()) {
        let reply = Reply::new(&text).unwrap();
        let xml = String::from_utf8(reply.render()).unwrap();
        let document = roxmltree::Document::parse(&xml)
            .unwrap_or_else(|error| panic!("{error} in {xml:?}"));
        let response = document.root_element();
        prop_assert_eq!(response.tag_name().name(), "Response");
        let expected = sent(&text);
        let messages: Vec<_> = response.children().filter(|n| n.is_element()).collect();
        if expected.is_empty() {
            prop_assert!(messages.is_empty());
        } else {
            prop_assert_eq!(messages.len(), 1);
            prop_assert_eq!(messages[0].tag_name().name(), "Message");
            prop_assert_eq!(own_text(messages[0]), expected);
        }
    }

    #[test]
    fn every_reply_the_server_renders_is_one_twilio_accepts(text in text()) {
        let reply = Reply::new(&text).unwrap();
        let body = reply.render();
        let answer = Answer {
            status: 200,
            content_type: Some("text/xml; charset=utf-8"),
            body: &body,
            too_large: false,
        };
        let Verdict::Accepted(accepted) = verdict::judge(&answer) else {
            panic!("refused: {:?}", String::from_utf8_lossy(&body));
        };
        prop_assert!(accepted.warnings.is_empty(), "{:?}", accepted.warnings);
        let expected = sent(&text);
        if expected.is_empty() {
            prop_assert!(accepted.messages.is_empty());
        } else {
            prop_assert_eq!(accepted.messages.len(), 1);
            prop_assert_eq!(accepted.messages[0].text.as_str(), expected.trim());
        }
    }

    #[test]
    fn judging_any_answer_never_fails(
        status in 0u16..1000,
        content_type in prop::option::of("[ -~]{0,30}"),
        body in prop::collection::vec(any::<u8>(), 0..300),
        xml in "<Response>[<>/ a-zA-Z&;!\\[\\]-]{0,80}",
    ) {
        for body in [&body[..], xml.as_bytes()] {
            let _ = verdict::judge(&Answer {
                status,
                content_type: content_type.as_deref(),
                body,
                too_large: false,
            });
        }
    }

    #[test]
    fn media_urls_survive_the_round_trip(text in text(), path in "[ -~]{0,40}") {
        let url = format!("https://example.com/{}", path.replace(' ', "%20"));
        let reply = Reply::new(&text).unwrap().with_media(std::slice::from_ref(&url)).unwrap();
        let xml = String::from_utf8(reply.render()).unwrap();
        let document = roxmltree::Document::parse(&xml).unwrap();
        let message = document.root_element().first_element_child().unwrap();
        let media = message.first_element_child().unwrap();
        prop_assert_eq!(media.tag_name().name(), "Media");
        prop_assert_eq!(media.text(), Some(url.as_str()));
        let expected = sent(&text);
        prop_assert_eq!(own_text(message), expected);
    }

    #[test]
    fn parsing_any_bytes_never_fails(query in prop::collection::vec(any::<u8>(), 0..300),
                                     form in prop::collection::vec(any::<u8>(), 0..300)) {
        let params = Params::parse(&query, Some(&form));
        // Displaying them for a log line works too, and cannot break a line.
        let message = events::Message { params: &params, rule: None, repeat: false };
        let status = events::Status { params: &params };
        let line = format!("{message} {status}");
        let breaks = ['\n', '\r', '\u{2028}', '\u{2029}'];
        prop_assert!(!line.contains(breaks), "{:?}", line);
    }

    #[test]
    fn any_form_makes_one_json_log_line(
        names in prop::collection::vec(
            prop_oneof![
                prop::sample::select(vec![
                    "MessageSid", "From", "To", "Body", "ProfileName", "NumMedia", "MediaUrl0",
                    "MediaContentType0", "MediaUrl9", "Latitude", "Longitude", "Address", "Label",
                    "ButtonText", "ButtonPayload", "OriginalRepliedMessageSid", "MessageStatus",
                    "ErrorCode", "ErrorUrl",
                ]).prop_map(|name| name.as_bytes().to_vec()),
                prop::collection::vec(any::<u8>(), 0..12),
            ],
            0..24,
        ),
        values in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 24),
    ) {
        // Names and values of any bytes, joined as a form (a raw `&` or `=`
        // in them only makes other pairs).
        let mut form = Vec::new();
        for (name, value) in names.iter().zip(&values) {
            form.extend_from_slice(name);
            form.push(b'=');
            form.extend_from_slice(value);
            form.push(b'&');
        }
        let params = Params::parse(b"", Some(&form));
        let message = events::Message { params: &params, rule: Some("k\u{2028}"), repeat: true };
        let status = events::Status { params: &params };
        for event in [&message as &dyn logging::Event, &status] {
            let mut line = Vec::new();
            logging::json_line(&mut line, log::Level::Info, "target", event).unwrap();
            prop_assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1);
            prop_assert!(line.ends_with(b"\n"));
            let json: serde_json::Value = serde_json::from_slice(&line).unwrap();
            let text = event.to_string();
            prop_assert_eq!(json["message"].as_str(), Some(text.as_str()));
            // The first MessageSid, as form_urlencoded decodes it.
            let sid = form_urlencoded::parse(&form)
                .find(|(name, _)| name == "MessageSid")
                .map(|(_, sid)| sid.into_owned());
            prop_assert_eq!(json["sid"].as_str().map(str::to_owned), sid);
        }
    }

    #[test]
    fn decoding_is_exactly_form_urlencoded_decoding(
        raw in prop::collection::vec(
            prop_oneof![
                any::<u8>(),
                prop::sample::select(b"%+=0123456789abcdefABCDEFgG".to_vec()),
            ],
            0..120,
        ).prop_filter("a raw `&` ends a pair", |raw| !raw.contains(&b'&')),
    ) {
        // form_urlencoded decodes a value after the first `=`.
        let mut pair = b"x=".to_vec();
        pair.extend_from_slice(&raw);
        let (_, expected) = form_urlencoded::parse(&pair).next().unwrap();
        prop_assert_eq!(params::decode(&raw), expected);
    }

    #[test]
    fn parsing_finds_what_form_urlencoded_finds(
        form in prop::collection::vec(
            prop_oneof![
                any::<u8>(),
                prop::sample::select(b"%+=&FromBodyMessageSidMediaUrl046726F6D".to_vec()),
            ],
            0..200,
        ),
    ) {
        let first = |name: &str| {
            form_urlencoded::parse(&form).find(|(n, _)| n == name).map(|(_, v)| v.into_owned())
        };
        let params = Params::parse(b"", Some(&form));
        let text = |value: Option<params::Value<'_>>| value.map(|v| v.decode().into_owned());
        prop_assert_eq!(text(params.from), first("From"));
        prop_assert_eq!(text(params.body), first("Body"));
        prop_assert_eq!(text(params.message_sid), first("MessageSid"));
        prop_assert_eq!(text(params.media[0].url), first("MediaUrl0"));
    }

    #[test]
    fn parsing_reads_back_what_a_form_encoder_wrote(from in text(), body in text(), noise in text()) {
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("Noise", &noise)
            .append_pair("From", &from)
            .append_pair("Body", &body)
            .append_pair("Body", "later values lose")
            .finish();
        let params = Params::parse(b"", Some(form.as_bytes()));
        prop_assert_eq!(params.from.map(|v| v.decode().into_owned()), Some(from));
        prop_assert_eq!(params.body.map(|v| v.decode().into_owned()), Some(body));
    }

    #[test]
    fn escaped_text_has_no_control_characters(text in text()) {
        let escaped = Escaped(&text).to_string();
        prop_assert!(!escaped.chars().any(|c| c.is_control()));
    }

    #[test]
    fn framing_never_fails_on_any_headers(
        headers in prop::collection::vec(("[A-Za-z-]{1,20}", "[ -~]{0,30}"), 0..8),
        last in any::<bool>(),
    ) {
        let pairs = headers.iter().map(|(n, v)| (n.as_str(), v.as_str()));
        let _ = framing::judge(pairs, last, 65536);
    }

    #[test]
    fn framing_refuses_any_transfer_encoding(
        headers in prop::collection::vec(("[A-Za-z-]{1,20}", "[ -~]{0,30}"), 0..8),
        name in "[Tt][Rr][Aa][Nn][Ss][Ff][Ee][Rr]-[Ee][Nn][Cc][Oo][Dd][Ii][Nn][Gg]",
        value in prop_oneof![
            Just("chunked".to_owned()),
            Just("gzip, chunked".to_owned()),
            "[ -~]{0,30}",
        ],
        length in prop::option::of(0u32..100_000),
        at in any::<prop::sample::Index>(),
    ) {
        // The header, in any case, among any others, with or without a
        // Content-Length.
        let mut all: Vec<(String, String)> = headers;
        if let Some(length) = length {
            all.push(("Content-Length".to_owned(), length.to_string()));
        }
        let at = at.index(all.len() + 1);
        all.insert(at, (name, value));
        let pairs = all.iter().map(|(n, v)| (n.as_str(), v.as_str()));
        let framing = framing::judge(pairs, false, 65536);
        prop_assert!(framing.refusal.is_some_and(|r| matches!(r.status(), 400 | 411)));
        prop_assert!(!framing.body.may_wait(), "an unread chunked body never waits");
    }
}
