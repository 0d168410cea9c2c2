//! Graceful stop: SIGTERM and SIGINT finish the request in hand, log
//! `shutting down`, and exit 0.

mod support;

use std::io::{BufReader, Write};
use std::process::Command;

use support::{Binary, DEFAULT_TWIML, TWILIO_WHATSAPP_FORM, connect, post_form, read_response};

fn signal(server: &Binary, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &server.pid().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
}

#[test]
fn sigterm_finishes_the_request_in_hand_then_exits_0() {
    let mut server = Binary::start(&[], &[]);
    // A request whose body is still arriving: a body worker holds it.
    let body = format!("From=whatsapp%3A%2B1555&Body={}", "x".repeat(2000));
    let request = post_form(&body);
    let (head_and_some, rest) = request.split_at(request.len() - 1000);
    let mut in_hand = connect(server.addr);
    in_hand.write_all(head_and_some).unwrap();
    // A whole exchange on another connection, so the first request has
    // surely reached the server.
    server
        .request(&post_form(TWILIO_WHATSAPP_FORM))
        .assert_twiml(DEFAULT_TWIML);

    signal(&server, "TERM");
    server.wait_for("shutting down (SIGTERM)");
    in_hand.write_all(rest).unwrap();
    read_response(&mut BufReader::new(in_hand), false).assert_twiml(DEFAULT_TWIML);

    let status = server.wait_for_exit();
    assert_eq!(status.code(), Some(0), "{:#?}", server.seen);
    let logged = server.wait_for("incoming message from whatsapp:+1555");
    assert!(logged.contains(" INFO "));
}

#[test]
fn sigint_on_an_idle_server_exits_0() {
    let mut server = Binary::start(&[], &[]);
    signal(&server, "INT");
    let status = server.wait_for_exit();
    assert_eq!(status.code(), Some(0), "{:#?}", server.seen);
    assert!(
        server
            .seen
            .iter()
            .any(|line| line.ends_with("shutting down (SIGINT)"))
    );
}
