//! Graceful stop: SIGTERM and SIGINT answer every request that reached the
//! server before them, log `shutting down`, and exit 0 with no error.

mod support;

use std::io::{BufReader, Write};
use std::process::Command;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Instant;

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
    assert_no_errors(&server.seen);
}

fn assert_no_errors(stderr: &[String]) {
    assert!(
        !stderr.iter().any(|line| line.contains(" ERROR ")),
        "an ordinary stop logs no error: {stderr:#?}"
    );
}

#[test]
fn sigterm_under_load_answers_every_request_sent_before_it() {
    let mut server = Binary::start(&[], &[]);
    let connections = 8;
    let started = Arc::new(Barrier::new(connections + 1));
    let clients: Vec<_> = (0..connections)
        .map(|_| {
            let addr = server.addr;
            let started = Arc::clone(&started);
            thread::spawn(move || {
                let mut stream = connect(addr);
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                // When each request was written, and whether it was answered.
                let mut sent: Vec<(Instant, bool)> = Vec::new();
                started.wait();
                loop {
                    // A few requests at a time, so that several are in flight.
                    let batch = post_form(TWILIO_WHATSAPP_FORM).repeat(4);
                    if stream.write_all(&batch).is_err() {
                        return sent;
                    }
                    let at = Instant::now();
                    for _ in 0..4 {
                        sent.push((at, false));
                        let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            read_response(&mut reader, false)
                        }));
                        // The connection ended: the request was not answered.
                        let Ok(response) = read else { return sent };
                        response.assert_twiml(DEFAULT_TWIML);
                        sent.last_mut().unwrap().1 = true;
                        if response.header("Connection") == Some("close") {
                            return sent;
                        }
                    }
                }
            })
        })
        .collect();
    started.wait();
    thread::sleep(std::time::Duration::from_millis(300));
    let signalled_at = Instant::now();
    signal(&server, "TERM");
    for client in clients {
        let sent = client.join().unwrap();
        assert!(sent.iter().filter(|(_, answered)| *answered).count() > 1);
        for (at, answered) in sent {
            assert!(
                answered || at > signalled_at,
                "a request sent before the signal got no answer"
            );
        }
    }
    let status = server.wait_for_exit();
    assert_eq!(status.code(), Some(0), "{:#?}", server.seen);
    assert_no_errors(&server.seen);
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
    assert_no_errors(&server.seen);
}
