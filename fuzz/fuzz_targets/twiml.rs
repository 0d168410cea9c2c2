//! The TwiML renderer: for any text, the document is well-formed XML whose
//! `Message` text is the input minus the characters XML forbids.

#![no_main]

use libfuzzer_sys::fuzz_target;
use whatsapp_webhook::twilio::twiml::{self, Reply};

fuzz_target!(|text: &str| {
    let Ok(reply) = Reply::new(text) else {
        // Only a text over Twilio's limit is refused.
        assert!(twiml::strip_forbidden(text).chars().count() > twiml::MAX_MESSAGE_CHARS);
        return;
    };
    let xml = String::from_utf8(reply.render()).expect("UTF-8");
    let document = roxmltree::Document::parse(&xml).expect("well-formed XML");
    let response = document.root_element();
    assert_eq!(response.tag_name().name(), "Response");
    let expected = twiml::strip_forbidden(text);
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
