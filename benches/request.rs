//! The per-request work inside the process, without the network: reading the
//! parameters of a Twilio WhatsApp POST (a 610-byte form), writing its log
//! line, judging its framing, checking its signature, and the whole answer
//! path from a parsed request to the bytes written, for a new message each
//! time, with the server's logger writing to a file, with and without a
//! signature to check. Run with `cargo bench --bench request`: each line
//! gives the time and the heap allocations per call.

use divan::{Bencher, black_box};
use tiny_http::{Method, Request, TestRequest};
use whatsapp_webhook::Config;
use whatsapp_webhook::answer::Webhook;
use whatsapp_webhook::events;
use whatsapp_webhook::http::body::{self, MAX_BODY_BYTES};
use whatsapp_webhook::http::framing;
use whatsapp_webhook::http::incoming::Incoming;
use whatsapp_webhook::http::response::Out;
use whatsapp_webhook::logging;
use whatsapp_webhook::twilio::params::Params;
use whatsapp_webhook::twilio::signature::{self, Keys, Payload, Secret};

/// Counts the allocations (and bytes) of each benchmark, printed beside
/// its time.
#[global_allocator]
static ALLOCATIONS: divan::AllocProfiler = divan::AllocProfiler::system();

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

/// The form of a new message, `round` in its `MessageSid`: every request
/// of the benchmark a message not seen before, never a repeat.
fn fresh_form(round: u64) -> &'static str {
    let sid = format!("SM{round:032x}");
    Box::leak(
        FORM.replace("SM9d3b1b2f6a0c4e5f8a7b6c5d4e3f2a1b", &sid)
            .into_boxed_str(),
    )
}

/// A parsed request for `form`, as tiny_http hands it over, signed with
/// `token` for `https://abc123.ngrok-free.app/whatsapp` when one is given.
fn request(form: &'static str, token: Option<&str>) -> Request {
    let mut request = TestRequest::new()
        .with_method(Method::Post)
        .with_path("/whatsapp")
        .with_body(form);
    for (name, value) in &HEADERS[..3] {
        request = request.with_header(format!("{name}: {value}").parse().unwrap());
    }
    request = request.with_header("X-Forwarded-Proto: https".parse().unwrap());
    if let Some(token) = token {
        let signature = signature::sign(
            &Secret::new(token),
            "https://abc123.ngrok-free.app/whatsapp",
            form.as_bytes(),
        );
        request = request.with_header(format!("X-Twilio-Signature: {signature}").parse().unwrap());
    }
    Request::from(request)
}

/// The server's logger, at `info`, writing its batches to a file (in the
/// system's temporary directory) as it writes them to standard error.
fn log_to_a_file() {
    let path =
        std::env::temp_dir().join(format!("whatsapp-webhook-bench-{}.log", std::process::id()));
    let file = std::fs::File::create(&path).expect("create the log file");
    // Unlinked at once: the benchmark writes to it, nobody reads it.
    let _ = std::fs::remove_file(&path);
    logging::init_to(logging::Format::Text, Some("info"), Box::new(file), false);
}

/// From a request tiny_http has parsed to the bytes of its answer, as the
/// request loop does it: read the body, answer
/// (check the signature, remember the MessageSid, write the message's log
/// line to a file), render. Each request a new message.
fn answer_new_messages(bencher: Bencher, token: Option<&'static str>) {
    log_to_a_file();
    // No ngrok agent is asked (the request's Host is not this machine).
    let mut config = Config {
        ngrok_api: None,
        ..Config::default()
    };
    if let Some(token) = token {
        config.keys = Keys {
            auth_tokens: vec![Secret::new(token)],
            shared_keys: vec![],
        };
        config.public_url = Some("https://abc123.ngrok-free.app".to_owned());
    }
    let webhook = Webhook::new(&config);
    let mut out = Out::default();
    let mut scratch = Vec::with_capacity(MAX_BODY_BYTES + 1);
    let mut round = 0;
    bencher
        .with_inputs(|| {
            round += 1;
            request(fresh_form(round), token)
        })
        .bench_local_values(|mut request| {
            let length = request.body_length();
            body::read_body(
                request.as_reader(),
                length,
                MAX_BODY_BYTES,
                None,
                None::<fn() -> bool>,
                &mut scratch,
            )
            .expect("read the body");
            let answer = webhook.answer(&Incoming::new(&request, &scratch));
            assert_eq!(answer.status(), 200);
            // As the loop does: the answer written whole through the
            // request's writer (which discards it here), the request then
            // dropped.
            let mut writer = request.into_writer();
            out.write(
                &mut writer,
                &answer,
                false,
                false,
                std::time::Duration::from_secs(1),
            )
            .expect("write the answer");
        });
}

/// Without a signature secret.
#[divan::bench]
fn answer_a_new_message(bencher: Bencher) {
    answer_new_messages(bencher, None);
}

/// With `TWILIO_AUTH_TOKEN` and `PUBLIC_URL` set, each request signed.
#[divan::bench]
fn answer_a_new_signed_message(bencher: Bencher) {
    answer_new_messages(bencher, Some("12345"));
}
