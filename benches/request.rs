//! The per-request work inside the process, without the network: reading the
//! parameters of a Twilio WhatsApp POST (a 610-byte form), writing its log
//! line, judging its framing, and the whole answer path from a parsed
//! request to the bytes written. Run with `cargo bench --bench request`.

use divan::{Bencher, black_box};
use tiny_http::{Method, Request, TestRequest};
use whatsapp_webhook::Config;
use whatsapp_webhook::answer::Webhook;
use whatsapp_webhook::events;
use whatsapp_webhook::http::body::{self, MAX_BODY_BYTES};
use whatsapp_webhook::http::framing;
use whatsapp_webhook::http::incoming::Incoming;
use whatsapp_webhook::http::response::Out;
use whatsapp_webhook::twilio::params::Params;
use whatsapp_webhook::twilio::signature::{self, Keys, Payload, Secret};

fn main() {
    // A signature that did not match would measure the wrong path.
    assert_eq!(check_signature(), signature::Verdict::Valid);
    divan::main();
}

/// A WhatsApp message as Twilio posts it.
const FORM: &str = "SmsMessageSid=SM9d3b1b2f6a0c4e5f8a7b6c5d4e3f2a1b&NumMedia=0&ProfileName=Ada+Lovelace&MessageType=text&SmsSid=SM9d3b1b2f6a0c4e5f8a7b6c5d4e3f2a1b&WaId=15551234567&SmsStatus=received&Body=Hello+doc%21+Caf%C3%A9+%26+co+%3D+100%25+%F0%9F%91%8B&To=whatsapp%3A%2B14155238886&NumSegments=1&ReferralNumMedia=0&MessageSid=SM9d3b1b2f6a0c4e5f8a7b6c5d4e3f2a1b&AccountSid=AC0123456789abcdef0123456789abcdef&From=whatsapp%3A%2B15551234567&ApiVersion=2010-04-01&ChannelMetadata=%7B%22type%22%3A%22whatsapp%22%2C%22data%22%3A%7B%22context%22%3A%7B%22ProfileName%22%3A%22Ada+Lovelace%22%2C%22WaId%22%3A%2215551234567%22%7D%7D%7D";

const HEADERS: [(&str, &str); 8] = [
    ("Host", "abc123.ngrok-free.app"),
    ("User-Agent", "TwilioProxy/1.1"),
    (
        "Content-Type",
        "application/x-www-form-urlencoded; charset=UTF-8",
    ),
    ("Content-Length", "610"),
    ("Accept", "*/*"),
    ("X-Forwarded-Proto", "https"),
    ("X-Twilio-Signature", "NFmK53ftI6h/mrzyAyFZr49RbPE="),
    ("Accept-Encoding", "gzip"),
];

/// One pass over the form, keeping every parameter the server uses (values
/// stay encoded until used).
#[divan::bench]
fn parse_parameters() -> Params<'static> {
    Params::parse(b"", Some(black_box(FORM.as_bytes())))
}

/// The text of the message's log line, values decoded and escaped, into a
/// buffer (the log line's time, level and target aside).
#[divan::bench]
fn format_the_log_line(bencher: Bencher) {
    let params = Params::parse(b"", Some(FORM.as_bytes()));
    let mut line = String::with_capacity(512);
    bencher.bench_local(|| {
        use std::fmt::Write;
        line.clear();
        let message = events::Message {
            params: black_box(&params),
            rule: None,
            repeat: false,
        };
        write!(line, "{message}").unwrap();
        line.len()
    });
}

#[divan::bench]
fn judge_framing() -> framing::Framing {
    framing::judge(black_box(HEADERS), false, MAX_BODY_BYTES as u64)
}

#[divan::bench]
fn check_signature() -> signature::Verdict {
    let keys = Keys {
        auth_tokens: vec![Secret::new("12345")],
        shared_keys: vec![],
    };
    signature::check(
        &keys,
        black_box("https://abc123.ngrok-free.app/whatsapp"),
        Payload::Form(FORM.as_bytes()),
        Some("NFmK53ftI6h/mrzyAyFZr49RbPE="),
        None,
    )
}

/// From a request tiny_http has parsed to the bytes of its answer (written
/// to a buffer here), as the request loop does it: read the body, answer
/// (remembering the MessageSid), render; minus the log line.
#[divan::bench]
fn answer_a_message(bencher: Bencher) {
    let webhook = Webhook::new(&Config::default());
    let mut out = Out::default();
    let mut scratch = Vec::with_capacity(MAX_BODY_BYTES + 1);
    let mut sink = Vec::with_capacity(4096);
    bencher
        .with_inputs(|| {
            let mut request = TestRequest::new()
                .with_method(Method::Post)
                .with_path("/whatsapp")
                .with_body(FORM);
            for (name, value) in &HEADERS[..3] {
                request = request.with_header(format!("{name}: {value}").parse().unwrap());
            }
            Request::from(request)
        })
        .bench_local_values(|mut request| {
            body::read_body(
                request.as_reader(),
                Some(FORM.len()),
                MAX_BODY_BYTES,
                None,
                None::<fn() -> bool>,
                &mut scratch,
            )
            .unwrap();
            let answer = webhook.answer(&Incoming::new(&request, &scratch));
            sink.clear();
            out.write(
                &mut sink,
                &answer,
                false,
                false,
                std::time::Duration::from_secs(1),
            )
        });
}
