//! The built binary: flags, exit statuses, and what it logs.

mod support;

use std::net::TcpListener;

use support::{Binary, DEFAULT_TWIML, TWILIO_WHATSAPP_FORM, post_form, run_binary};

#[test]
fn help_lists_the_options_and_exits_zero() {
    let (status, stdout, stderr) = run_binary(&["--help"], &[]);
    assert!(status.success());
    assert!(stdout.starts_with("whatsapp-webhook: answers Twilio's"));
    for flag in ["--host", "--port", "--reply", "--help", "--version"] {
        assert!(stdout.contains(flag), "{flag} missing from --help");
    }
    assert_eq!(stderr, "");
}

#[test]
fn version_prints_the_package_version() {
    let (status, stdout, _) = run_binary(&["--version"], &[]);
    assert!(status.success());
    assert_eq!(
        stdout,
        format!("whatsapp-webhook {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn bad_values_and_unknown_flags_exit_2_with_one_line() {
    for (args, env, message) in [
        (
            &["--port", "99999"][..],
            &[][..],
            "whatsapp-webhook: invalid value \"99999\" for --port: expected a port number from 0 to 65535\n",
        ),
        (
            &["--frobnicate"],
            &[],
            "whatsapp-webhook: invalid option '--frobnicate' (see --help)\n",
        ),
        (
            &[],
            &[("PORT", "http")],
            "whatsapp-webhook: invalid value \"http\" for PORT (environment variable): expected a port number from 0 to 65535\n",
        ),
        (
            &["--host", "my-laptop"],
            &[],
            "whatsapp-webhook: invalid value \"my-laptop\" for --host: expected an IP address such as 127.0.0.1 or 0.0.0.0, or localhost\n",
        ),
    ] {
        let (status, stdout, stderr) = run_binary(args, env);
        assert_eq!(status.code(), Some(2), "{args:?} {env:?}");
        assert_eq!(stdout, "");
        assert_eq!(stderr, message);
    }
}

#[test]
fn a_reply_over_1600_characters_is_refused_at_start_up() {
    let long = "x".repeat(1601);
    let (status, _, stderr) = run_binary(&["--reply", &long], &[]);
    assert_eq!(status.code(), Some(2));
    assert_eq!(
        stderr,
        "whatsapp-webhook: invalid reply from --reply: the text is 1601 characters long; Twilio sends at most 1600\n"
    );
}

#[test]
fn a_port_in_use_exits_1_and_says_so() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let (status, _, stderr) = run_binary(&["--host", "127.0.0.1", "--port", &port], &[]);
    assert_eq!(status.code(), Some(1));
    assert_eq!(
        stderr,
        format!(
            "whatsapp-webhook: cannot listen on 127.0.0.1:{port}: the port is already in use \
             (stop the program using it, or choose another port with --port)\n"
        )
    );
}

#[test]
fn start_up_logs_the_real_address_and_the_next_steps() {
    let mut server = Binary::start(&[], &[]);
    assert_ne!(server.addr.port(), 0);
    let next = server.wait_for("next: ");
    assert!(
        next.contains(&format!("ngrok http {}", server.addr.port())),
        "{next}"
    );
    assert!(next.contains("When a message comes in"), "{next}");
    let listening = server.wait_for("listening on");
    assert!(
        listening.contains(" INFO "),
        "logs at info by default: {listening}"
    );
}

#[test]
fn each_message_is_logged_at_info_with_sender_and_text() {
    let mut server = Binary::start(&[], &[]);
    server
        .request(&post_form(TWILIO_WHATSAPP_FORM))
        .assert_twiml(DEFAULT_TWIML);
    let line = server.wait_for("incoming message");
    assert!(line.contains(" INFO "), "{line}");
    assert!(
        line.ends_with(
            "] SM9d3b1b2f6a0c4e5f8a7b6c5d4e3f2a1b incoming message from whatsapp:+15551234567 \
             \"Ada Lovelace\": Hello doc! Café & co = 100% 👋"
        ),
        "{line}"
    );
}

#[test]
fn a_body_cannot_forge_a_second_log_line() {
    let mut server = Binary::start(&[], &[]);
    server.request(&post_form(
        "From=whatsapp%3A%2B1555&Body=hi%0A%5B2026-01-01T00%3A00%3A00Z+INFO++whatsapp_webhook%5D+incoming+message+from+admin%3A+forged",
    ));
    server.request(&post_form("From=sentinel&Body=done"));
    server.wait_for("from sentinel: done");
    let messages: Vec<_> = server
        .seen
        .iter()
        .filter(|line| line.contains("incoming message"))
        .collect();
    assert_eq!(messages.len(), 2, "{messages:#?}");
    assert!(messages[0].ends_with(
        r"incoming message from whatsapp:+1555: hi\n[2026-01-01T00:00:00Z INFO  whatsapp_webhook] incoming message from admin: forged"
    ));
}

#[test]
fn rust_log_debug_adds_a_line_per_request() {
    let mut server = Binary::start(&[], &[("RUST_LOG", "debug")]);
    server.request(&support::bare("GET", "/nowhere"));
    let line = server.wait_for("GET -> 404");
    assert!(line.contains(" DEBUG "), "{line}");
}

#[test]
fn a_rust_log_that_would_hide_every_line_is_said_and_the_server_logs_at_info() {
    let mut server = Binary::start(&[], &[("RUST_LOG", "verbose")]);
    let said = server.wait_for("RUST_LOG=verbose");
    assert!(said.contains(" WARN "), "{said}");
    assert!(
        said.ends_with("it would hide every line; logging at info"),
        "{said}"
    );
    server.wait_for("listening on http://");
    assert_eq!(
        server
            .seen
            .iter()
            .filter(|line| line.contains("RUST_LOG="))
            .count(),
        1,
        "said once: {:#?}",
        server.seen
    );
}

#[test]
fn a_public_url_pasted_with_whatsapp_is_accepted_without_it_and_said() {
    let mut server = Binary::start(
        &[],
        &[
            ("PUBLIC_URL", "https://abc123.ngrok-free.app/whatsapp"),
            ("TWILIO_AUTH_TOKEN", "12345678901234567890123456789012"),
        ],
    );
    let said = server.wait_for("PUBLIC_URL (environment variable) ends with /whatsapp");
    assert!(said.contains(" WARN "), "{said}");
    let signed = server.wait_for("signed URL: ");
    assert!(
        signed.ends_with("signed URL: https://abc123.ngrok-free.app/whatsapp"),
        "{signed}"
    );
}

#[test]
fn characters_xml_forbids_are_removed_from_the_reply_and_said_once() {
    let mut server = Binary::start(&["--reply", "Hi\u{1} there\u{FFFE}"], &[]);
    let said = server.wait_for("characters that XML forbids");
    assert!(said.contains(" WARN "), "{said}");
    assert!(
        said.ends_with(r#"removed 2 characters that XML forbids from the reply: "Hi there""#),
        "{said}"
    );
    server.request(&post_form(TWILIO_WHATSAPP_FORM)).assert_twiml(
        r#"<?xml version="1.0" encoding="UTF-8"?><Response><Message>Hi there</Message></Response>"#,
    );
    // A reply with none to remove is not mentioned.
    let mut plain = Binary::start(&[], &[]);
    plain.wait_for("listening on");
    assert!(
        !plain
            .log_so_far()
            .iter()
            .any(|line| line.contains("XML forbids")),
        "{:#?}",
        plain.log_so_far()
    );
}
