//! Replies that take longer than Twilio waits: the server answers in time
//! with no message, and sends the reply later through the Messages API,
//! which a local fake plays (tests/support). What it sends is compared,
//! byte for byte, with what twilio-python's `messages.create` sends
//! (tests/data/twilio-python-messages-create.json).

mod support;

use std::io::{BufReader, Write};
use std::time::Duration;

use serde_json::Value;
use support::{Binary, FakeApi, TempDir, connect, read_response, signed_post};

const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";
const TOKEN: &str = "token0123456789abcdef0123456789ab";
const KEY: &str = "SKaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const KEY_SECRET: &str = "secret0123456789abcdef0123456789";
const PUBLIC_URL: &str = "https://abc123.ngrok-free.app";
const EMPTY: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Response />"#;

/// What twilio-python sent, captured: request `at` (0 with the Auth Token,
/// 1 with the API key).
fn captured(at: usize) -> Value {
    let text = include_str!("data/twilio-python-messages-create.json");
    let json: Value = serde_json::from_str(text).unwrap();
    json["requests"][at].clone()
}

fn captured_header(at: usize, name: &str) -> String {
    captured(at)["headers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|pair| pair[0] == name)
        .map(|pair| pair[1].as_str().unwrap().to_owned())
        .unwrap()
}

/// The server with `command` as its reply program, answering within a
/// second, sending later replies to `api` with the Auth Token.
fn server(command: &str, api: &FakeApi, env: &[(&str, &str)]) -> Binary {
    let path = std::env::var("PATH").unwrap_or_default();
    let mut all = vec![
        ("REPLY_COMMAND", command),
        ("PATH", path.as_str()),
        ("ANSWER_WITHIN", "1"),
        ("REPLY_TIMEOUT", "60"),
        ("TWILIO_ACCOUNT_SID", ACCOUNT),
        ("TWILIO_AUTH_TOKEN", TOKEN),
        ("TWILIO_API_URL", api.url.as_str()),
        ("PUBLIC_URL", PUBLIC_URL),
    ];
    all.extend_from_slice(env);
    Binary::start(&[], &all)
}

/// A WhatsApp message as Twilio posts it, signed.
fn message(sid: &str, body: &str) -> Vec<u8> {
    let form = form_urlencoded::Serializer::new(String::new())
        .append_pair("MessageSid", sid)
        .append_pair("From", "whatsapp:+15551234567")
        .append_pair("To", "whatsapp:+14155238886")
        .append_pair("Body", body)
        .finish();
    signed_post(TOKEN, &format!("{PUBLIC_URL}/whatsapp"), &form)
}

/// Posts `raw`, and returns the answer's body and whether it says the reply
/// comes later.
fn post(server: &Binary, raw: &[u8]) -> (String, bool) {
    let mut stream = connect(server.addr);
    stream.write_all(raw).unwrap();
    let response = read_response(&mut BufReader::new(stream), false);
    assert_eq!(response.status(), 200, "{response:?}");
    let later =
        response.header("X-Whatsapp-Webhook-Reply") == Some("later, through the Messages API");
    (response.body_text().to_owned(), later)
}

/// A reply program that waits for `file` to exist, then prints `output`: the
/// test decides when it finishes, after the answer went out.
fn waiting_program(file: &std::path::Path, output: &str) -> String {
    format!(
        "while [ ! -e {} ]; do sleep 0.05; done; printf '%s' '{}'",
        file.display(),
        output.replace('\'', "'\\''")
    )
}

#[test]
fn a_late_reply_goes_out_as_twilio_python_sends_it() {
    let api = FakeApi::start(Vec::new());
    let dir = TempDir::new("later");
    let go = dir.join("go");
    let twiml = "<Response><Message>Hello &amp; welcome: 100% ✓\nsecond line<Media>https://example.com/a.jpg?x=1&amp;y=2</Media><Media>https://example.com/b.png</Media></Message></Response>";
    let mut server = server(&waiting_program(&go, twiml), &api, &[]);
    // Answered in time, with no message, and a header saying why.
    assert_eq!(
        post(&server, &message("SM1", "hi")),
        (EMPTY.to_owned(), true)
    );
    assert!(
        api.requests().is_empty(),
        "nothing sent before the reply exists"
    );
    std::fs::write(&go, "").unwrap();
    let sent = api.wait_for(1);
    let request = &sent[0];
    let expected = captured(0);
    assert_eq!(
        request.request_line,
        expected["request_line"].as_str().unwrap()
    );
    assert_eq!(request.body, expected["body"].as_str().unwrap());
    assert_eq!(
        request.header("Authorization"),
        Some(captured_header(0, "Authorization").as_str())
    );
    for name in ["Content-Type", "Accept"] {
        assert_eq!(
            request.header(name),
            Some(captured_header(0, name).as_str()),
            "{name}"
        );
    }
    server
        .wait_for("SM1 replied later through the Messages API: SM00000000000000000000000000000001");
}

#[test]
fn an_api_key_authenticates_as_twilio_python_does() {
    let api = FakeApi::start(Vec::new());
    let mut server = server(
        "sleep 2; echo Hi",
        &api,
        &[("TWILIO_API_KEY", KEY), ("TWILIO_API_SECRET", KEY_SECRET)],
    );
    assert!(post(&server, &message("SM1", "hi")).1);
    let sent = api.wait_for(1);
    assert_eq!(
        sent[0].header("Authorization"),
        Some(captured_header(1, "Authorization").as_str())
    );
    assert_eq!(
        sent[0].request_line,
        captured(1)["request_line"].as_str().unwrap()
    );
    server.wait_for("SM1 replied later");
}

#[test]
fn a_long_reply_goes_out_as_several_messages_in_order() {
    let api = FakeApi::start(Vec::new());
    let long = format!("{}end", "word ".repeat(400));
    let dir = TempDir::new("later");
    let file = dir.join("long.txt");
    std::fs::write(&file, &long).unwrap();
    let server = server(&format!("sleep 2; cat {}", file.display()), &api, &[]);
    assert!(post(&server, &message("SM1", "hi")).1);
    let sent = api.wait_for(2);
    let bodies: Vec<String> = sent
        .iter()
        .map(|request| {
            form_urlencoded::parse(request.body.as_bytes())
                .find(|(name, _)| name == "Body")
                .map(|(_, value)| value.into_owned())
                .unwrap()
        })
        .collect();
    assert_eq!(
        bodies,
        [
            "word ".repeat(320).trim_end().to_owned(),
            format!("{}end", "word ".repeat(80))
        ]
    );
}

#[test]
fn rate_limited_and_failing_requests_are_tried_again() {
    // 429 asking for a second, then created.
    let api = FakeApi::start(vec![(429, Some(("Retry-After", "1")), "{}")]);
    let mut server = server("sleep 2; echo Hi", &api, &[]);
    post(&server, &message("SM1", "hi"));
    let sent = api.wait_for(2);
    assert!(
        sent[1].at.duration_since(sent[0].at) >= Duration::from_secs(1),
        "Retry-After was not honoured: {:?}",
        sent[1].at.duration_since(sent[0].at)
    );
    assert_eq!(sent[0].body, sent[1].body);
    server
        .wait_for("SM1 replied later through the Messages API: SM00000000000000000000000000000002");

    // Three 503s, then created.
    let failing = FakeApi::start(vec![(503, None, ""), (503, None, ""), (503, None, "")]);
    let mut again = self::server("sleep 2; echo Hi", &failing, &[]);
    post(&again, &message("SM1", "hi"));
    assert_eq!(failing.wait_for(4).len(), 4);
    again
        .wait_for("SM1 replied later through the Messages API: SM00000000000000000000000000000004");
}

#[test]
fn a_refusal_is_not_tried_again_and_says_what_the_code_means() {
    let api = FakeApi::start(vec![(
        401,
        None,
        r#"{"code": 20003, "message": "Authenticate", "more_info": "https://www.twilio.com/docs/errors/20003", "status": 401}"#,
    )]);
    let mut server = server("sleep 2; echo Hi", &api, &[]);
    post(&server, &message("SM1", "hi"));
    let line = server.wait_for("SM1 later reply not sent");
    assert!(line.contains(" ERROR "), "{line}");
    assert!(
        line.ends_with(
            "the Messages API answered 401: error 20003 \"Authenticate\": authentication failed: \
             TWILIO_ACCOUNT_SID with TWILIO_AUTH_TOKEN (or TWILIO_API_KEY with TWILIO_API_SECRET) \
             are not a pair of this account"
        ),
        "{line}"
    );
    // A message later is the proof that no second request was made.
    post(&server, &message("SM2", "hi"));
    assert_eq!(api.wait_for(2).len(), 2);
    assert_eq!(api.requests().len(), 2);
}

#[test]
fn a_message_gets_one_run_and_one_send_whatever_twilio_posts_again() {
    let api = FakeApi::start(Vec::new());
    let dir = TempDir::new("later");
    let go = dir.join("go");
    let runs = dir.join("runs");
    let command = format!(
        "echo run >> {}; {}",
        runs.display(),
        waiting_program(&go, "the reply")
    );
    let server = server(&command, &api, &[]);
    // The message, then Twilio's retry while the program runs: both are
    // answered in time with no message.
    assert_eq!(
        post(&server, &message("SM1", "hi")),
        (EMPTY.to_owned(), true)
    );
    assert_eq!(
        post(&server, &message("SM1", "hi")),
        (EMPTY.to_owned(), true)
    );
    std::fs::write(&go, "").unwrap();
    let sent = api.wait_for(1);
    assert!(sent[0].body.contains("Body=the+reply"));
    // After the send, a repeat and a fallback request: no message, no run.
    assert_eq!(
        post(&server, &message("SM1", "hi")),
        (EMPTY.to_owned(), false)
    );
    let form = "MessageSid=SM1&From=whatsapp%3A%2B15551234567&To=whatsapp%3A%2B14155238886&Body=hi&ErrorCode=11200&ErrorUrl=https%3A%2F%2Fprimary.example%2Fwhatsapp";
    let fallback = signed_post(TOKEN, &format!("{PUBLIC_URL}/whatsapp"), form);
    assert_eq!(post(&server, &fallback), (EMPTY.to_owned(), false));
    assert_eq!(std::fs::read_to_string(&runs).unwrap(), "run\n");
    assert_eq!(api.requests().len(), 1);
}

#[test]
fn a_reply_ready_in_time_is_the_answer_and_nothing_is_sent() {
    let api = FakeApi::start(Vec::new());
    // One worker: the second message runs only once the first run (and any
    // send of its reply) is over.
    let server = server("echo Quick", &api, &[("REPLY_WORKERS", "1")]);
    let quick =
        r#"<?xml version="1.0" encoding="UTF-8"?><Response><Message>Quick</Message></Response>"#;
    assert_eq!(
        post(&server, &message("SM1", "hi")),
        (quick.to_owned(), false)
    );
    assert_eq!(
        post(&server, &message("SM2", "hi")),
        (quick.to_owned(), false)
    );
    assert!(api.requests().is_empty());
}

#[test]
fn sigterm_with_a_reply_pending_sends_it_then_exits_0() {
    let api = FakeApi::start(Vec::new());
    let mut server = server("sleep 3; echo Late", &api, &[]);
    assert!(post(&server, &message("SM1", "hi")).1);
    let status = std::process::Command::new("kill")
        .args(["-TERM", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(server.wait_for_exit().code(), Some(0), "{:#?}", server.seen);
    assert_eq!(api.requests().len(), 1);
    assert!(api.requests()[0].body.contains("Body=Late"));
    // All sent: an info line, and no warning of requests left waiting.
    assert!(
        server.seen.iter().any(|line| line.contains(" INFO ")
            && line.ends_with(
                "stopping: 1 later replies were sent through the Messages API, 0 could not be"
            )),
        "{:#?}",
        server.seen
    );
    assert!(
        !server
            .seen
            .iter()
            .any(|line| line.contains("still waiting")),
        "{:#?}",
        server.seen
    );
}

#[test]
fn a_long_time_limit_without_credentials_is_refused_at_start() {
    let (status, stdout, stderr) =
        support::run_binary(&["--reply-command", "./bot"], &[("REPLY_TIMEOUT", "60")]);
    assert_eq!(status.code(), Some(2));
    assert_eq!(stdout, "");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("set TWILIO_ACCOUNT_SID"), "{stderr}");
}

#[test]
fn check_reports_the_answer_in_time_and_the_reply_to_come() {
    let api = FakeApi::start(Vec::new());
    // No PUBLIC_URL: check signs the URL it calls, which the server rebuilds
    // from Host.
    let path = std::env::var("PATH").unwrap_or_default();
    let server = Binary::start(
        &[],
        &[
            ("REPLY_COMMAND", "sleep 3; echo Later"),
            ("PATH", &path),
            ("ANSWER_WITHIN", "1"),
            ("REPLY_TIMEOUT", "60"),
            ("TWILIO_ACCOUNT_SID", ACCOUNT),
            ("TWILIO_AUTH_TOKEN", TOKEN),
            ("TWILIO_API_URL", &api.url),
        ],
    );
    let url = format!("http://{}/whatsapp", server.addr);
    let (status, report, errors) =
        support::run_binary(&["check", &url], &[("TWILIO_AUTH_TOKEN", TOKEN)]);
    assert_eq!(status.code(), Some(0), "{report}{errors}");
    assert!(
        report.contains(
            "OK: Twilio would accept the answer and send no reply.\n  the server answered in \
             time with no message, and says its reply is still being made: it will come later, \
             through the Messages API"
        ),
        "{report}"
    );
}

#[test]
fn a_reply_past_the_24_hour_window_is_not_sent() {
    use whatsapp_webhook::later::Sender;
    use whatsapp_webhook::twilio::messages::{Auth, Credentials};
    use whatsapp_webhook::twilio::signature::Secret;
    use whatsapp_webhook::{Message, Reply};
    let api = FakeApi::start(Vec::new());
    let sender = Sender::new(
        Credentials {
            account_sid: ACCOUNT.to_owned(),
            auth: Auth::Token(Secret::new(TOKEN)),
            api_url: api.url.clone(),
        },
        None,
    );
    let mut message = Message {
        sid: Some("SM1".to_owned()),
        from: Some("whatsapp:+15551234567".to_owned()),
        to: Some("whatsapp:+14155238886".to_owned()),
        window_until: Some("2026-01-01T00:00:00Z".to_owned()),
        ..Message::default()
    };
    assert!(!sender.send(&message, &Reply::text("too late")));
    assert!(api.requests().is_empty());
    message.window_until = Some("2999-01-01T00:00:00Z".to_owned());
    assert!(sender.send(&message, &Reply::text("in time")));
    assert_eq!(api.requests().len(), 1);
    assert_eq!(sender.counts(), (1, 1));
}
