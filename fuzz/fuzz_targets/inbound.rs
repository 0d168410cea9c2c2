//! The parameter parser and everything else that reads a request's bytes
//! before it is answered: no input may panic, and what is logged never
//! holds a line break.

#![no_main]

use libfuzzer_sys::fuzz_target;
use whatsapp_webhook::events;
use whatsapp_webhook::twilio::params::Params;
use whatsapp_webhook::twilio::signature;

fuzz_target!(|data: &[u8]| {
    // Split the input into a query string and a form body.
    let split = data
        .first()
        .map_or(0, |&at| usize::from(at))
        .min(data.len());
    let (query, form) = data.split_at(split);
    let params = Params::parse(query, Some(form));
    let message = events::Message {
        params: &params,
        rule: None,
        repeat: false,
    };
    let status = events::Status { params: &params };
    let line = format!("{message} {status}");
    assert!(
        !line.contains(['\n', '\r', '\u{2028}', '\u{2029}']),
        "{line:?}"
    );
    let params = signature::signed_params(form);
    assert!(
        params.windows(2).all(|pair| pair[0] < pair[1]),
        "sorted, each once"
    );
    if let Ok(url) = std::str::from_utf8(query) {
        let _ = signature::url_forms(url);
    }
});
