//! The TwiML renderer: for any text, the document is well-formed XML whose
//! `Message` text is the input minus the characters XML forbids.

#![no_main]

use libfuzzer_sys::fuzz_target;
use whatsapp_webhook::twilio::twiml::Reply;

/// Whether XML 1.0 allows `c` in a document (its `Char` production), as
/// the specification writes it, not as the renderer does.
fn xml_char(c: char) -> bool {
    matches!(c, '\u{9}' | '\u{A}' | '\u{D}' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}')
        || c >= '\u{10000}'
}

fuzz_target!(|text: &str| {
    // The text sent: without what XML forbids, nothing if only whitespace.
    let kept: String = text.chars().filter(|&c| xml_char(c)).collect();
    let Ok(reply) = Reply::new(text) else {
        // Only a text over Twilio's limit of 1600 characters is refused.
        assert!(kept.chars().count() > 1600);
        return;
    };
    let expected = if kept.trim().is_empty() { String::new() } else { kept };
    let xml = String::from_utf8(reply.render()).expect("UTF-8");
    let document = roxmltree::Document::parse(&xml).expect("well-formed XML");
    let response = document.root_element();
    assert_eq!(response.tag_name().name(), "Response");
    match response.first_element_child() {
        None => assert!(expected.is_empty()),
        Some(message) => {
            assert_eq!(message.tag_name().name(), "Message");
            let got: String = message
                .children()
                .filter(|n| n.is_text())
                .filter_map(|n| n.text())
                .collect();
            assert_eq!(got, expected);
        }
    }
});
