//! Reply programs through the real server: real programs in sh and
//! python3, real requests over TCP. What a program reads, what its output
//! becomes, its failures, its time limit, its workers, once per message,
//! and that nothing it does makes the request loop wait.

mod support;

use std::fs;
use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Binary, TempDir, connect, post_form, read_response, signed_post};

const DECL: &str = r#"<?xml version="1.0" encoding="UTF-8"?>"#;

fn twiml(messages: &[&str]) -> String {
    if messages.is_empty() {
        return format!("{DECL}<Response />");
    }
    let inner: String = messages
        .iter()
        .map(|text| format!("<Message>{text}</Message>"))
        .collect();
    format!("{DECL}<Response>{inner}</Response>")
}

/// The server with `command` as its reply program, and `env` besides; and
/// `PATH`, which a program needs to find its interpreter, as a user's
/// shell would pass it.
fn server(command: &str, env: &[(&str, &str)]) -> Binary {
    let path = std::env::var("PATH").unwrap_or_default();
    let mut all = vec![("REPLY_COMMAND", command), ("PATH", path.as_str())];
    all.extend_from_slice(env);
    Binary::start(&[], &all)
}

/// A form posted as Twilio posts a WhatsApp message with this `MessageSid`
/// and these fields besides.
fn message(sid: &str, fields: &[(&str, &str)]) -> String {
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.append_pair("MessageSid", sid)
        .append_pair("From", "whatsapp:+15551234567")
        .append_pair("To", "whatsapp:+14155238886");
    for (name, value) in fields {
        form.append_pair(name, value);
    }
    form.finish()
}

/// Posts `form` on a new connection; returns the answer's body.
fn post(server: &Binary, form: &str) -> String {
    post_at(server.addr, form)
}

fn post_at(addr: std::net::SocketAddr, form: &str) -> String {
    let mut stream = connect(addr);
    stream.write_all(&post_form(form)).unwrap();
    let response = read_response(&mut BufReader::new(stream), false);
    assert_eq!(response.status(), 200, "{response:?}");
    assert_eq!(
        response.header("Content-Type"),
        Some("text/xml; charset=utf-8")
    );
    response.body_text().to_owned()
}

#[test]
fn an_echo_program_in_sh_replies_with_what_was_sent() {
    let server = server("examples/bots/echo.sh", &[]);
    assert_eq!(
        post(&server, &message("SM1", &[("Body", "Hello <doc> & co")])),
        twiml(&["You said: Hello &lt;doc&gt; &amp; co"])
    );
    assert_eq!(
        post(&server, &message("SM2", &[("Body", "")])),
        twiml(&[]),
        "no output, no reply"
    );
}

#[test]
fn a_media_message_gets_its_type_from_the_python_example() {
    let server = server("python3 examples/bots/media_type.py", &[]);
    let photo = message(
        "MM1",
        &[
            ("Body", ""),
            ("NumMedia", "1"),
            (
                "MediaUrl0",
                "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1",
            ),
            ("MediaContentType0", "image/jpeg"),
        ],
    );
    assert_eq!(
        post(&server, &photo),
        twiml(&["Thanks! You sent: image/jpeg"])
    );
    assert_eq!(
        post(&server, &message("SM2", &[("Body", "hi")])),
        twiml(&["Send me a photo and I will tell you its type."])
    );
}

/// The JSON log line of the message `sid`, without the fields every line
/// has, and without the end of its window (computed a moment apart).
fn logged_fields(server: &mut Binary, sid: &str) -> Value {
    let line = server.wait_for(&format!("\"sid\":{}", serde_json::to_string(sid).unwrap()));
    let mut value: Value = serde_json::from_str(&line).expect("a JSON line");
    for field in ["time", "level", "target", "message", "window_until"] {
        value.as_object_mut().unwrap().remove(field);
    }
    value
}

#[test]
fn a_program_gets_exactly_the_fields_of_the_json_log_line_whatever_they_hold() {
    let dir = TempDir::new("programs");
    let command = format!(
        "cat > {dir}/\"$MESSAGE_SID\".json; printf '%s' \"$MESSAGE_BODY\" > {dir}/\"$MESSAGE_SID\".body",
        dir = dir.0.display()
    );
    let mut server = server(&command, &[("LOG_FORMAT", "json")]);
    let big = "x".repeat(60_000);
    let cases: [(&str, String, &str); 5] = [
        (
            "SM1",
            message(
                "SM1",
                &[("Body", "\"quoted\" $(reboot) `id` \\ line\nbreak ${HOME}")],
            ),
            "\"quoted\" $(reboot) `id` \\ line\nbreak ${HOME}",
        ),
        (
            "SM2",
            format!("{}&Body=%FF%FEhi%C3%28", message("SM2", &[])),
            "\u{FFFD}\u{FFFD}hi\u{FFFD}(",
        ),
        (
            "SM3",
            message("SM3", &[("Body", &big), ("ProfileName", "Ada")]),
            &big,
        ),
        (
            "SM4",
            message(
                "SM4",
                &[
                    ("Body", "📍"),
                    ("Latitude", "52.52"),
                    ("Longitude", "13.4"),
                    ("Label", "Tor"),
                ],
            ),
            "📍",
        ),
        (
            "SM5",
            message(
                "SM5",
                &[
                    ("Body", "Yes"),
                    ("ButtonText", "Yes"),
                    ("ButtonPayload", "yes_1"),
                    ("OriginalRepliedMessageSid", "MM9"),
                ],
            ),
            "Yes",
        ),
    ];
    for (sid, form, body) in &cases {
        post(&server, form);
        let read: Value =
            serde_json::from_slice(&fs::read(dir.join(&format!("{sid}.json"))).unwrap())
                .expect("the program read one JSON object");
        let mut read = read;
        assert!(
            read.as_object_mut()
                .unwrap()
                .remove("window_until")
                .is_some()
        );
        assert_eq!(read, logged_fields(&mut server, sid), "{sid}");
        assert_eq!(read["body"], *body, "{sid}");
        assert_eq!(
            fs::read_to_string(dir.join(&format!("{sid}.body"))).unwrap(),
            *body,
            "{sid}: MESSAGE_BODY"
        );
    }
}

#[test]
fn long_output_is_several_messages_and_twiml_passes_unchanged() {
    let long = format!("{}end", "word ".repeat(400)); // 2003 characters
    let dir = TempDir::new("programs");
    fs::write(dir.join("long.txt"), &long).unwrap();
    let server = server(
        &format!(
            "case \"$MESSAGE_BODY\" in \
               long) cat {}/long.txt ;; \
               twiml) printf '<Response><Message>a</Message><Message>b<Media>https://e.com/x.png</Media></Message></Response>' ;; \
               xml-error) printf '<Response><Message>a & b</Message></Response>' ;; \
             esac",
            dir.0.display()
        ),
        &[("REPLY_FALLBACK", "Sorry")],
    );
    let answer = post(&server, &message("SM1", &[("Body", "long")]));
    let first = "word ".repeat(320);
    let rest = format!("{}end", "word ".repeat(80));
    assert_eq!(answer, twiml(&[first.trim_end(), &rest]));
    assert_eq!(
        post(&server, &message("SM2", &[("Body", "twiml")])),
        "<Response><Message>a</Message><Message>b<Media>https://e.com/x.png</Media></Message></Response>"
    );
    assert_eq!(
        post(&server, &message("SM3", &[("Body", "xml-error")])),
        twiml(&["Sorry"]),
        "TwiML Twilio would refuse (12100) gets the fallback"
    );
}

#[test]
fn a_failing_program_gets_the_fallback_and_one_warning_with_its_last_lines() {
    let mut server = server(
        "echo \"reading $MESSAGE_SID\" >&2; printf 'bad \\033[2J\\n' >&2; exit 3",
        &[("REPLY_FALLBACK", "Sorry, try again")],
    );
    assert_eq!(
        post(&server, &message("SM1", &[("Body", "hi")])),
        twiml(&["Sorry, try again"])
    );
    let warning = server.wait_for("SM1 got the fallback reply");
    assert!(warning.contains(" WARN "), "{warning}");
    assert!(
        warning.ends_with(
            r"the reply program exited with status 3; its last lines on standard error: reading SM1 | bad \u{1b}[2J"
        ),
        "{warning}"
    );
    let logged = server.wait_for("SM1 reply program: bad");
    assert!(
        logged.ends_with(r"SM1 reply program: bad \u{1b}[2J"),
        "{logged}"
    );
    // A command sh cannot find is a failure like any other, said plainly.
    let mut missing = server_without_fallback("no-such-bot-here");
    assert_eq!(post(&missing, &message("SM1", &[])), twiml(&[]));
    missing.wait_for("exited with status 127: sh found no such command");
}

#[test]
fn a_programs_standard_error_is_logged_line_by_line_up_to_100_lines() {
    // Line 2 is over 4096 bytes, line 3 exactly 4096 with its newline.
    let mut server = server(
        "i=1; while [ $i -le 103 ]; do case $i in \
           2) printf '%05000d tail\\n' 0 ;; \
           3) printf '%04095d\\n' 0 ;; \
           *) echo \"line $i\" ;; esac >&2; i=$((i + 1)); done; exit 1",
        &[],
    );
    post(&server, &message("SM1", &[]));
    let warning = server.wait_for("SM1 got the fallback reply");
    assert!(
        warning.ends_with(
            "exited with status 1; its last lines on standard error: line 101 | line 102 | line 103"
        ),
        "{warning}"
    );
    let prefix = "SM1 reply program: ";
    let logged: Vec<&str> = server
        .log_so_far()
        .iter()
        .filter_map(|line| Some(&line[line.find(prefix)? + prefix.len()..]))
        .collect();
    let mut expected = vec!["line 1".to_owned(), "0".repeat(4096), "0".repeat(4095)];
    expected.extend((4..=100).map(|i| format!("line {i}")));
    expected.push("(more lines on standard error, not logged)".to_owned());
    assert_eq!(logged, expected);
}

fn server_without_fallback(command: &str) -> Binary {
    server(command, &[])
}

#[test]
fn past_its_time_limit_a_program_is_stopped_and_the_message_answered_in_time() {
    let dir = TempDir::new("programs");
    let (pid_file, stopped) = (dir.join("pid"), dir.join("stopped"));
    // It takes its time over SIGTERM, and then goes on: only SIGKILL, a
    // second later, ends it.
    let mut server = server(
        &format!(
            "echo $$ > {}; trap 'sleep 0.1; echo TERM >> {}' TERM; while :; do sleep 0.05; done",
            pid_file.display(),
            stopped.display()
        ),
        &[("REPLY_TIMEOUT", "1"), ("REPLY_FALLBACK", "Still thinking")],
    );
    assert_eq!(
        post(&server, &message("SM1", &[])),
        twiml(&["Still thinking"])
    );
    server.wait_for("did not finish within its time limit (1.0s)");
    let pid = fs::read_to_string(&pid_file).unwrap();
    let process = format!("/proc/{}", pid.trim());
    let deadline = Instant::now() + support::PATIENCE;
    while std::path::Path::new(&process).exists() {
        assert!(Instant::now() < deadline, "the program still runs");
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(fs::read_to_string(&stopped).unwrap(), "TERM\n");
}

#[test]
fn a_message_runs_the_program_once_whatever_twilio_sends_again() {
    let dir = TempDir::new("programs");
    let runs = dir.join("runs");
    // Each run leaves a line, and takes a moment, so that a repeat comes
    // while it runs.
    let server = server(
        &format!(
            "echo run >> {}; sleep 0.5; printf 'reply to %s' \"$MESSAGE_BODY\"",
            runs.display()
        ),
        &[],
    );
    let first = message("SM1", &[("Body", "first")]);
    let addr = server.addr;
    let (a, b) = thread::scope(|scope| {
        let a = scope.spawn(|| post_at(addr, &first));
        let b = scope.spawn(|| post_at(addr, &first));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_eq!(a, twiml(&["reply to first"]));
    assert_eq!(b, a, "the repeat waited for the run in progress");
    // After the run, a repeat, and a fallback request for the same message.
    assert_eq!(post(&server, &message("SM1", &[("Body", "changed")])), a);
    let fallback = message(
        "SM1",
        &[
            ("Body", "first"),
            ("ErrorCode", "11200"),
            ("ErrorUrl", "https://primary.example/whatsapp"),
        ],
    );
    assert_eq!(post(&server, &fallback), a);
    assert_eq!(fs::read_to_string(&runs).unwrap(), "run\n");
    // Another message is another run.
    assert_eq!(
        post(&server, &message("SM2", &[("Body", "second")])),
        twiml(&["reply to second"])
    );
    assert_eq!(fs::read_to_string(&runs).unwrap(), "run\nrun\n");
}

#[test]
fn statuses_checks_and_refused_signatures_never_run_the_program() {
    const TOKEN: &str = "12345678901234567890123456789012";
    let dir = TempDir::new("programs");
    let runs = dir.join("runs");
    let server = server(
        &format!(
            "echo run >> {}; printf 'token %s' \"${{TWILIO_AUTH_TOKEN-unset}}\"",
            runs.display()
        ),
        &[
            ("TWILIO_AUTH_TOKEN", TOKEN),
            ("PUBLIC_URL", "https://hooks.example.com"),
        ],
    );
    let url = "https://hooks.example.com/whatsapp";
    // A status callback, a check without MessageSid, an unsigned message.
    let status = server.request(&signed_post(
        TOKEN,
        url,
        "MessageSid=SM9&MessageStatus=delivered&To=whatsapp%3A%2B1555",
    ));
    assert_eq!(status.body_text(), twiml(&[]));
    let check = server.request(&signed_post(TOKEN, url, "Body=hi"));
    check.assert_twiml(&twiml(&["What's app, doc?"]));
    let unsigned = server.request(&post_form(&message("SM1", &[])));
    assert_eq!(unsigned.status(), 403);
    assert!(!runs.exists(), "the program ran");
    // A signed message runs it, without the token.
    let signed = server.request(&signed_post(TOKEN, url, &message("SM1", &[])));
    signed.assert_twiml(&twiml(&["token unset"]));
    assert_eq!(fs::read_to_string(&runs).unwrap(), "run\n");
}

#[test]
fn the_request_loop_never_waits_for_a_program() {
    // Eight programs sleeping, on eight workers: health checks and status
    // callbacks are answered while every one of them still runs.
    let dir = TempDir::new("programs");
    let server = server(
        &format!(
            "touch {}/\"$MESSAGE_SID\"; sleep 5; echo done",
            dir.0.display()
        ),
        &[("REPLY_WORKERS", "8")],
    );
    let sleeping: Vec<TcpStream> = (0..8)
        .map(|n| {
            let mut stream = connect(server.addr);
            stream
                .write_all(&post_form(&message(&format!("SM{n}"), &[])))
                .unwrap();
            stream
        })
        .collect();
    let deadline = Instant::now() + support::PATIENCE;
    while fs::read_dir(&dir.0).unwrap().count() < 8 {
        assert!(Instant::now() < deadline, "the programs did not all start");
        thread::sleep(Duration::from_millis(10));
    }
    for _ in 0..20 {
        server
            .request(&support::bare("GET", "/healthz"))
            .assert_text("HTTP/1.1 200 OK", "ok\n");
        let status = post(
            &server,
            "MessageSid=SM9&MessageStatus=delivered&To=whatsapp%3A%2B1555",
        );
        assert_eq!(status, twiml(&[]));
    }
    assert!(
        sleeping.iter().all(support::still_waiting),
        "answered while every program still ran"
    );
    for stream in sleeping {
        assert_eq!(
            read_response(&mut BufReader::new(stream), false).body_text(),
            twiml(&["done"])
        );
    }
}

#[test]
fn a_message_whose_time_limit_passes_while_waiting_for_a_worker_gets_the_fallback() {
    let dir = TempDir::new("programs");
    let runs = dir.join("runs");
    // The first ignores SIGTERM, so it holds the only worker until SIGKILL,
    // a second past its limit, which is past the second message's limit.
    let server = server(
        &format!(
            "echo \"$MESSAGE_SID\" >> {}; trap '' TERM; sleep 3; echo done",
            runs.display()
        ),
        &[
            ("REPLY_WORKERS", "1"),
            ("REPLY_TIMEOUT", "2"),
            ("REPLY_FALLBACK", "busy"),
        ],
    );
    let addr = server.addr;
    let (first, second) = thread::scope(|scope| {
        let first = scope.spawn(|| post_at(addr, &message("SM1", &[])));
        let deadline = Instant::now() + support::PATIENCE;
        while !runs.exists() {
            assert!(Instant::now() < deadline, "the first program did not start");
            thread::sleep(Duration::from_millis(10));
        }
        let second = scope.spawn(|| post_at(addr, &message("SM2", &[])));
        (first.join().unwrap(), second.join().unwrap())
    });
    assert_eq!(first, twiml(&["busy"]), "the first ran past its limit");
    assert_eq!(
        second,
        twiml(&["busy"]),
        "the second never got a worker in time"
    );
    assert_eq!(
        fs::read_to_string(&runs).unwrap(),
        "SM1\n",
        "the second never ran"
    );
}

#[test]
fn a_reply_with_a_program_is_refused_at_start() {
    let (status, _, stderr) =
        support::run_binary(&["--reply-command", "./bot"], &[("REPLY", "Hello")]);
    assert_eq!(status.code(), Some(2));
    assert!(
        stderr.starts_with(
            "whatsapp-webhook: REPLY (environment variable) would never be sent: the reply \
             program (--reply-command) answers every message no keyword rule does"
        ),
        "{stderr}"
    );
}

#[test]
fn keyword_rules_answer_before_the_program() {
    let path = std::env::var("PATH").unwrap_or_default();
    let server = Binary::start(
        &["--reply-command", "examples/bots/echo.sh", "--on", "stop="],
        &[("PATH", &path)],
    );
    assert_eq!(
        post(&server, &message("SM1", &[("Body", "STOP")])),
        twiml(&[])
    );
    assert_eq!(
        post(&server, &message("SM2", &[("Body", "go")])),
        twiml(&["You said: go"])
    );
}

/// The example `name`, as `cargo test` built it beside this test.
fn example(name: &str) -> std::path::PathBuf {
    let deps = std::env::current_exe().expect("the test's path");
    let profile = deps
        .parent()
        .and_then(|dir| dir.parent())
        .expect("target/<profile>");
    let example = profile.join("examples").join(name);
    assert!(
        example.is_file(),
        "{} is missing: `cargo test` builds the examples (`cargo test --examples` does too)",
        example.display()
    );
    example
}

#[test]
fn the_rust_echo_example_replies_with_what_was_sent_and_takes_the_servers_flags() {
    let mut command = std::process::Command::new(example("echo"));
    command.args(["--host", "127.0.0.1", "--port", "0", "--on", "hi=Hello!"]);
    let server = Binary::start_command(command, &[]);
    assert_eq!(
        post(&server, &message("SM1", &[("Body", "a & b")])),
        twiml(&["You said: a &amp; b"])
    );
    assert_eq!(
        post(&server, &message("SM2", &[("Body", "HI")])),
        twiml(&["Hello!"])
    );
    let photo = message(
        "MM1",
        &[
            ("Body", "look"),
            ("MediaUrl0", "https://x/0"),
            ("MediaContentType0", "image/png"),
        ],
    );
    assert_eq!(
        post(&server, &photo),
        twiml(&["You said: look", "You sent: image/png"])
    );
}

#[test]
fn a_stop_waits_for_the_reply_still_coming_and_stops_the_programs() {
    let dir = TempDir::new("programs");
    let mut server = server(
        &format!(
            "touch {dir}/started; sleep 1; echo 'in time'; sleep 60 & echo $! > {dir}/left",
            dir = dir.0.display()
        ),
        &[],
    );
    let mut waiting = connect(server.addr);
    waiting.write_all(&post_form(&message("SM1", &[]))).unwrap();
    let deadline = Instant::now() + support::PATIENCE;
    while !dir.join("started").exists() {
        assert!(Instant::now() < deadline, "the program did not start");
        thread::sleep(Duration::from_millis(10));
    }
    let status = std::process::Command::new("kill")
        .args(["-TERM", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let response = read_response(&mut BufReader::new(waiting), false);
    assert_eq!(response.body_text(), twiml(&["in time"]));
    assert_eq!(server.wait_for_exit().code(), Some(0), "{:#?}", server.seen);
    // What the program left running in its group was stopped with it.
    let left = fs::read_to_string(dir.join("left")).unwrap();
    let process = format!("/proc/{}", left.trim());
    let deadline = Instant::now() + support::PATIENCE;
    while std::path::Path::new(&process).exists() {
        assert!(Instant::now() < deadline, "{process} outlived the server");
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_second_signal_exits_at_once_and_stops_the_programs() {
    let dir = TempDir::new("programs");
    let pid_file = dir.join("pid");
    let mut server = server(
        &format!(
            "echo $$ > {}.new; mv {0}.new {0}; sleep 60",
            pid_file.display()
        ),
        &[("REPLY_TIMEOUT", "14")],
    );
    let mut waiting = connect(server.addr);
    waiting.write_all(&post_form(&message("SM1", &[]))).unwrap();
    let deadline = Instant::now() + support::PATIENCE;
    while !pid_file.exists() {
        assert!(Instant::now() < deadline, "the program did not start");
        thread::sleep(Duration::from_millis(10));
    }
    let pid = fs::read_to_string(&pid_file).unwrap();
    let server_pid = server.pid().to_string();
    let kill = |signal: &str| {
        let status = std::process::Command::new("kill")
            .args([signal, &server_pid])
            .status()
            .unwrap();
        assert!(status.success());
    };
    kill("-TERM");
    server.wait_for("shutting down (SIGTERM)");
    kill("-INT");
    assert_eq!(server.wait_for_exit().code(), Some(1), "{:#?}", server.seen);
    let process = format!("/proc/{}", pid.trim());
    let deadline = Instant::now() + support::PATIENCE;
    while std::path::Path::new(&process).exists() {
        assert!(Instant::now() < deadline, "{process} outlived the server");
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn check_shows_the_programs_reply_end_to_end() {
    let server = server("examples/bots/echo.sh", &[]);
    let url = format!("http://{}/whatsapp", server.addr);
    for body in ["What is the weather?", "again"] {
        let (status, report, errors) = support::run_binary(&["check", "--body", body, &url], &[]);
        assert_eq!(status.code(), Some(0), "{report}{errors}");
        assert!(
            report.contains(&format!(
                "OK: Twilio would accept the answer; the sender would receive:\n  \"You said: {body}\""
            )),
            "{report}"
        );
    }
}
