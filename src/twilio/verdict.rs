//! What Twilio makes of the answer to an inbound-message webhook: the
//! messages it sends back, or the error it logs instead.
//!
//! The rules are Twilio's documented ones: a `2xx` status; `text/xml`,
//! `application/xml` or `text/html` for TwiML (and `text/plain`, whose body
//! Twilio texts back as it is); at most 64 kB; well-formed XML (error 12100)
//! whose root is `<Response>` holding only Messaging TwiML's verbs (12200);
//! and messages of at most 1600 characters (21617). [`judge`] is a pure
//! function of the answer: `check` fetches it, and says what the verdict
//! means for the webhook it checked.

use std::borrow::Cow;

use crate::twilio::twiml::{MAX_MEDIA, MAX_MESSAGE_CHARS};

/// The most bytes of an answer Twilio reads (error 11750 beyond).
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// The most `<Message>` verbs Twilio sends for one inbound message (warning
/// 14109 beyond).
pub const MAX_MESSAGES: usize = 10;

/// An answer to Twilio's request.
#[derive(Debug, Clone, Copy)]
pub struct Answer<'a> {
    /// The status code.
    pub status: u16,
    /// The `Content-Type` header, if any.
    pub content_type: Option<&'a str>,
    /// The body, or its first [`MAX_ANSWER_BYTES`] when it is longer.
    pub body: &'a [u8],
    /// Whether the body is longer than [`MAX_ANSWER_BYTES`].
    pub too_large: bool,
}

/// What Twilio does with an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Twilio accepts the answer and sends these messages (none for an empty
    /// `<Response>`).
    Accepted(Accepted),
    /// Twilio cannot use the answer, or it is almost certainly not what was
    /// meant.
    Refused(Refusal),
}

/// An answer Twilio accepts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accepted {
    /// The replies Twilio sends, in order.
    pub messages: Vec<Outgoing>,
    /// The URL a `<Redirect>` sends Twilio to for more TwiML, if any.
    pub redirect: Option<String>,
    /// What is odd about the answer without making Twilio refuse it.
    pub warnings: Vec<String>,
}

/// One reply Twilio sends: a `<Message>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outgoing {
    /// The text, unescaped, without surrounding whitespace.
    pub text: String,
    /// The URLs of the media, in order.
    pub media: Vec<String>,
    /// The `to` attribute: a recipient other than the sender, if any.
    pub to: Option<String>,
}

/// Why Twilio cannot use an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The error Twilio logs, if it logs one.
    pub code: Option<u32>,
    /// What is wrong, in one sentence.
    pub problem: String,
    /// What to do about it.
    pub fix: String,
}

impl Refusal {
    fn new(code: Option<u32>, problem: impl Into<String>, fix: impl Into<String>) -> Refusal {
        Refusal {
            code,
            problem: problem.into(),
            fix: fix.into(),
        }
    }
}

/// Judges `answer` as Twilio does.
pub fn judge(answer: &Answer<'_>) -> Verdict {
    match reading(answer) {
        Ok(accepted) => Verdict::Accepted(accepted),
        Err(refusal) => Verdict::Refused(refusal),
    }
}

fn reading(answer: &Answer<'_>) -> Result<Accepted, Refusal> {
    if !(200..300).contains(&answer.status) {
        return Err(Refusal::new(
            Some(11200),
            format!("the answer's status is {}, not 2xx", answer.status),
            "make the URL answer 200 with TwiML",
        ));
    }
    if answer.too_large {
        return Err(Refusal::new(
            Some(11750),
            format!("the answer is longer than {MAX_ANSWER_BYTES} bytes"),
            "answer a short TwiML document",
        ));
    }
    if answer.status == 204 || answer.body.is_empty() {
        let mut accepted = Accepted::default();
        if answer.status != 204 {
            accepted.warnings.push(
                "the body is empty: no reply is sent, but Twilio may log a warning; answer \
                 <Response/> to say so in TwiML"
                    .to_owned(),
            );
        }
        return Ok(accepted);
    }
    let Some(content_type) = answer.content_type else {
        return Err(Refusal::new(
            Some(11200),
            "the answer has no Content-Type",
            "answer with Content-Type: text/xml",
        ));
    };
    let media_type = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match media_type.as_str() {
        "text/xml" | "application/xml" | "text/html" => read_twiml(answer.body),
        "text/plain" => Err(Refusal::new(
            None,
            format!(
                "the answer is text/plain, which Twilio texts back as it is: the sender \
                 would receive {:?}",
                String::from_utf8_lossy(answer.body)
            ),
            "answer TwiML with Content-Type: text/xml, such as \
             <Response><Message>...</Message></Response>",
        )),
        _ => Err(Refusal::new(
            Some(12300),
            format!("the answer's Content-Type is {content_type:?}, not XML"),
            "answer TwiML with Content-Type: text/xml",
        )),
    }
}

/// Reads a TwiML document as Twilio's Messaging interpreter does.
fn read_twiml(body: &[u8]) -> Result<Accepted, Refusal> {
    let not_xml = |why: String| {
        Refusal::new(
            Some(12100),
            format!("the answer is not well-formed XML: {why}"),
            "write TwiML with an XML library (or Twilio's helper library), which escapes \
             &, < and > in texts",
        )
    };
    let text =
        std::str::from_utf8(body).map_err(|error| not_xml(format!("not UTF-8 ({error})")))?;
    let document = roxmltree::Document::parse(text).map_err(|error| not_xml(error.to_string()))?;
    let root = document.root_element();
    if root.tag_name().name() != "Response" {
        return Err(not_twiml(format!(
            "the root element is <{}>, not <Response>",
            root.tag_name().name()
        )));
    }
    let mut accepted = Accepted::default();
    for node in root.children() {
        if accepted.redirect.is_some() && node.is_element() {
            accepted.warnings.push(format!(
                "<{}> after <Redirect> is never reached",
                node.tag_name().name()
            ));
            continue;
        }
        match node.tag_name().name() {
            _ if node.is_text() => stray_text(&node, "<Response>")?,
            _ if !node.is_element() => {}
            "Message" => accepted.messages.push(read_message(node)?),
            "Redirect" => accepted.redirect = Some(text_of(node).trim().to_owned()),
            other => {
                return Err(not_twiml(format!(
                    "<Response> holds <{other}>; Messaging TwiML knows <Message> and <Redirect>"
                )));
            }
        }
    }
    if accepted.messages.len() > MAX_MESSAGES {
        accepted.warnings.push(format!(
            "14109: {} messages; Twilio sends at most {MAX_MESSAGES} replies to one message",
            accepted.messages.len()
        ));
    }
    for (index, message) in accepted.messages.iter().enumerate() {
        let number = index + 1;
        if message.text.is_empty() && message.media.is_empty() {
            accepted.warnings.push(format!(
                "message {number} is empty: Twilio sends nothing for it"
            ));
        }
        if message.media.len() > MAX_MEDIA {
            accepted.warnings.push(format!(
                "message {number} has {} media; Twilio sends at most {MAX_MEDIA}",
                message.media.len()
            ));
        }
    }
    Ok(accepted)
}

fn read_message(message: roxmltree::Node<'_, '_>) -> Result<Outgoing, Refusal> {
    let mut text = String::new();
    let mut media = Vec::new();
    for node in message.children() {
        match node.tag_name().name() {
            _ if node.is_text() => text.push_str(node.text().unwrap_or_default()),
            _ if !node.is_element() => {}
            "Body" => text.push_str(&text_of(node)),
            "Media" => media.push(text_of(node).trim().to_owned()),
            other => {
                return Err(not_twiml(format!(
                    "<Message> holds <{other}>; it takes text, <Body> and <Media>"
                )));
            }
        }
    }
    let text = text.trim().to_owned();
    let chars = text.chars().count();
    if chars > MAX_MESSAGE_CHARS {
        return Err(Refusal::new(
            Some(21617),
            format!(
                "a message is {chars} characters long; Twilio sends at most {MAX_MESSAGE_CHARS}"
            ),
            "shorten the reply, or split it into several <Message> verbs",
        ));
    }
    Ok(Outgoing {
        text,
        media,
        to: message.attribute("to").map(str::to_owned),
    })
}

fn not_twiml(problem: String) -> Refusal {
    Refusal::new(
        Some(12200),
        format!("the answer is XML but not Messaging TwiML: {problem}"),
        "answer <Response> holding <Message> verbs, as Twilio's helper libraries write it",
    )
}

/// Refuses text (other than whitespace) directly inside `parent`.
fn stray_text(node: &roxmltree::Node<'_, '_>, parent: &str) -> Result<(), Refusal> {
    match node.text().map(str::trim) {
        Some(text) if !text.is_empty() => Err(not_twiml(format!(
            "{parent} holds the text {text:?} outside any verb"
        ))),
        _ => Ok(()),
    }
}

/// All the text inside `node`.
fn text_of<'a>(node: roxmltree::Node<'a, '_>) -> Cow<'a, str> {
    let mut texts = node
        .descendants()
        .filter(roxmltree::Node::is_text)
        .filter_map(|node| node.text());
    match (texts.next(), texts.next()) {
        (None, _) => Cow::Borrowed(""),
        (Some(only), None) => Cow::Borrowed(only),
        (Some(first), Some(second)) => {
            let mut all = format!("{first}{second}");
            all.extend(texts);
            Cow::Owned(all)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, content_type: Option<&str>, body: &str) -> Verdict {
        judge(&Answer {
            status,
            content_type,
            body: body.as_bytes(),
            too_large: false,
        })
    }

    fn twiml(body: &str) -> Verdict {
        answer(200, Some("text/xml; charset=utf-8"), body)
    }

    fn code(verdict: Verdict) -> Option<u32> {
        match verdict {
            Verdict::Refused(refusal) => refusal.code,
            Verdict::Accepted(accepted) => panic!("accepted: {accepted:?}"),
        }
    }

    fn accepted(verdict: Verdict) -> Accepted {
        match verdict {
            Verdict::Accepted(accepted) => accepted,
            Verdict::Refused(refusal) => panic!("refused: {refusal:?}"),
        }
    }

    #[test]
    fn the_default_reply_sends_one_message() {
        let accepted = accepted(twiml(
            r#"<?xml version="1.0" encoding="UTF-8"?><Response><Message>What's app, doc?</Message></Response>"#,
        ));
        assert_eq!(
            accepted,
            Accepted {
                messages: vec![Outgoing {
                    text: "What's app, doc?".to_owned(),
                    ..Outgoing::default()
                }],
                ..Accepted::default()
            }
        );
    }

    #[test]
    fn texts_are_unescaped_and_media_bodies_and_recipients_read() {
        let accepted = accepted(answer(
            200,
            Some("application/xml"),
            "<Response>\n  <Message to=\"+15550001111\">\n    <Body>Tom &amp; Jerry</Body>\n    \
             <Media>https://e.com/a.jpg?x=1&amp;y=2</Media>\n  </Message>\n  \
             <Message><![CDATA[<3]]></Message>\n</Response>",
        ));
        assert_eq!(
            accepted.messages,
            [
                Outgoing {
                    text: "Tom & Jerry".to_owned(),
                    media: vec!["https://e.com/a.jpg?x=1&y=2".to_owned()],
                    to: Some("+15550001111".to_owned()),
                },
                Outgoing {
                    text: "<3".to_owned(),
                    ..Outgoing::default()
                },
            ]
        );
        assert!(accepted.warnings.is_empty());
    }

    #[test]
    fn comments_and_processing_instructions_are_skipped() {
        let accepted = accepted(answer(
            200,
            Some("text/xml"),
            "<Response><!-- greeting --><?app hint?><Message>hi</Message></Response>",
        ));
        assert_eq!(accepted.messages.len(), 1);
        assert_eq!(accepted.messages[0].text, "hi");
    }

    #[test]
    fn an_empty_response_sends_nothing() {
        for empty in [
            "<Response/>",
            "<?xml version=\"1.0\"?>\n<Response>\n</Response>\n",
        ] {
            assert_eq!(accepted(twiml(empty)), Accepted::default());
        }
        assert_eq!(accepted(answer(204, None, "")), Accepted::default());
        assert_eq!(
            accepted(answer(200, Some("text/xml"), "")).warnings.len(),
            1
        );
    }

    #[test]
    fn a_status_other_than_2xx_is_11200() {
        for status in [301, 400, 403, 404, 500, 502] {
            assert_eq!(
                code(answer(status, Some("text/xml"), "<Response/>")),
                Some(11200)
            );
        }
    }

    #[test]
    fn html_is_read_as_twiml_and_other_types_are_12300() {
        assert!(matches!(
            answer(200, Some("text/html"), "<Response/>"),
            Verdict::Accepted(_)
        ));
        assert_eq!(
            code(answer(
                200,
                Some("text/html"),
                "<html><body>Hi</body></html>"
            )),
            Some(12200)
        );
        assert_eq!(
            code(answer(200, Some("application/json"), r#"{"reply":"hi"}"#)),
            Some(12300)
        );
        assert_eq!(code(answer(200, None, "<Response/>")), Some(11200));
    }

    #[test]
    fn plain_text_is_refused_without_a_code_and_says_what_would_be_sent() {
        let Verdict::Refused(refusal) = answer(200, Some("text/plain; charset=utf-8"), "ok") else {
            panic!("text/plain accepted");
        };
        assert_eq!(refusal.code, None);
        assert!(
            refusal.problem.contains(r#"would receive "ok""#),
            "{refusal:?}"
        );
    }

    #[test]
    fn documents_that_are_not_well_formed_are_12100() {
        for bad in [
            "<Response><Message>Tom & Jerry</Message></Response>",
            "<Response><Message>hi</Message>",
            "<Response></Message>",
            "<Response/><Response/>",
            "hi<Response/>",
            "<Response>\u{1}</Response>",
            "<Response><Message>&nbsp;</Message></Response>",
        ] {
            assert_eq!(code(twiml(bad)), Some(12100), "{bad}");
        }
        let latin1 = judge(&Answer {
            status: 200,
            content_type: Some("text/xml"),
            body: b"<Response><Message>caf\xe9</Message></Response>",
            too_large: false,
        });
        assert_eq!(code(latin1), Some(12100));
    }

    #[test]
    fn xml_that_is_not_messaging_twiml_is_12200() {
        for bad in [
            "<response/>",
            "<Reply><Message>hi</Message></Reply>",
            "<Response><Say>hi</Say></Response>",
            "<Response><Message><Say>hi</Say></Message></Response>",
            "<Response>hi</Response>",
        ] {
            assert_eq!(code(twiml(bad)), Some(12200), "{bad}");
        }
    }

    #[test]
    fn a_message_of_1600_characters_is_sent_and_1601_is_21617() {
        let at_limit = format!(
            "<Response><Message>{}</Message></Response>",
            "é".repeat(1600)
        );
        assert_eq!(
            accepted(twiml(&at_limit)).messages[0].text.chars().count(),
            1600
        );
        let over = format!(
            "<Response><Message>{}</Message></Response>",
            "é".repeat(1601)
        );
        assert_eq!(code(twiml(&over)), Some(21617));
    }

    #[test]
    fn an_answer_over_64_kb_is_11750() {
        let verdict = judge(&Answer {
            status: 200,
            content_type: Some("text/xml"),
            body: b"<Response>",
            too_large: true,
        });
        assert_eq!(code(verdict), Some(11750));
    }

    #[test]
    fn a_redirect_ends_the_document_and_eleven_messages_warn_14109() {
        let accepted = accepted(twiml(
            "<Response><Message>a</Message><Redirect>https://e.com/next</Redirect>\
             <Message>b</Message></Response>",
        ));
        assert_eq!(accepted.messages.len(), 1);
        assert_eq!(accepted.redirect.as_deref(), Some("https://e.com/next"));
        assert_eq!(
            accepted.warnings,
            ["<Message> after <Redirect> is never reached"]
        );
        let eleven = format!("<Response>{}</Response>", "<Message>x</Message>".repeat(11));
        let accepted = self::accepted(twiml(&eleven));
        assert_eq!(accepted.messages.len(), 11);
        assert!(
            accepted.warnings[0].starts_with("14109: "),
            "{:?}",
            accepted.warnings
        );
    }

    #[test]
    fn ten_messages_of_ten_media_are_the_most_sent_and_empty_ones_are_named() {
        let media = |count: usize| "<Media>https://e.com/a.png</Media>".repeat(count);
        let ten = format!(
            "<Response>{}</Response>",
            format!("<Message>x{}</Message>", media(10)).repeat(10)
        );
        assert_eq!(accepted(twiml(&ten)).warnings, Vec::<String>::new());
        let accepted = accepted(twiml(&format!(
            "<Response><Message>x</Message><Message> </Message>\
             <Message><!-- none -->{}</Message></Response>",
            media(11)
        )));
        assert_eq!(
            accepted.warnings,
            [
                "message 2 is empty: Twilio sends nothing for it",
                "message 3 has 11 media; Twilio sends at most 10",
            ]
        );
    }
}
