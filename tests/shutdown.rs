//! Graceful stop: SIGTERM and SIGINT answer every request that reached the
//! server before them, log `shutting down`, and exit 0 with no error.

mod support;

use std::io::{BufReader, Write};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Instant;

use support::{
    Binary, DEFAULT_TWIML, TWILIO_WHATSAPP_FORM, connect, post_form, read_response,
    read_response_or_end,
};

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
    let answers = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..connections)
        .map(|_| {
            let addr = server.addr;
            let started = Arc::clone(&started);
            let answers = Arc::clone(&answers);
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
                        // The connection ended: the request was not answered.
                        let Some(response) = read_response_or_end(&mut reader, false) else {
                            return sent;
                        };
                        response.assert_twiml(DEFAULT_TWIML);
                        sent.last_mut().unwrap().1 = true;
                        answers.fetch_add(1, Ordering::Relaxed);
                        if response.header("Connection") == Some("close") {
                            return sent;
                        }
                    }
                }
            })
        })
        .collect();
    started.wait();
    // Under load: every connection has requests in flight.
    let deadline = Instant::now() + support::PATIENCE;
    while answers.load(Ordering::Relaxed) < 4 * connections {
        assert!(
            Instant::now() < deadline,
            "no load after {:?}",
            support::PATIENCE
        );
        thread::sleep(std::time::Duration::from_millis(1));
    }
    let signalled_at = Instant::now();
    signal(&server, "TERM");
    let mut before = 0;
    for client in clients {
        for (at, answered) in client.join().unwrap() {
            if at < signalled_at {
                before += 1;
                assert!(answered, "a request sent before the signal got no answer");
            }
        }
    }
    assert!(
        before >= 4 * connections,
        "{before} requests sent before the signal"
    );
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

#[test]
fn sigterm_while_a_small_body_is_arriving_answers_it_once_whole() {
    // tiny_http reads a body of up to 1 KiB itself, before the request
    // reaches the server: the stop must wait for it to arrive.
    let mut server = Binary::start(&[], &[]);
    let request = post_form("From=whatsapp%3A%2B1555&Body=almost+there");
    let (most, rest) = request.split_at(request.len() - 5);
    let mut arriving = connect(server.addr);
    arriving.write_all(most).unwrap();
    // Accepted by the server (a connection still in the listen queue at the
    // stop is reset by the system, the client told so).
    let deadline = Instant::now() + support::PATIENCE;
    while whatsapp_webhook::http::sockets::connections(server.addr.port())
        .is_none_or(|connections| connections.held() == 0)
    {
        assert!(Instant::now() < deadline, "the connection was not accepted");
        thread::sleep(std::time::Duration::from_millis(10));
    }
    signal(&server, "TERM");
    server.wait_for("shutting down (SIGTERM)");
    // The line comes just before the stop: it has begun once the listening
    // socket is shut and new connections are refused.
    while std::net::TcpStream::connect(server.addr).is_ok() {
        assert!(Instant::now() < deadline, "still accepting connections");
        thread::sleep(std::time::Duration::from_millis(10));
    }
    arriving.write_all(rest).unwrap();
    let response = read_response(&mut BufReader::new(arriving), false);
    response.assert_twiml(DEFAULT_TWIML);
    assert_eq!(response.header("Connection"), Some("close"));
    assert_eq!(server.wait_for_exit().code(), Some(0), "{:#?}", server.seen);
    assert_no_errors(&server.seen);
}

/// What became of one request on a new connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Answered,
    /// The connection was refused or reset: the client knows.
    Refused,
    /// The whole request was sent, and the connection just ended.
    Lost,
}

#[test]
fn sigterm_under_a_sustained_load_of_new_connections_loses_no_request() {
    // A timeout of 1 s: a stop that waited out its limit while new
    // connections kept coming would end with requests in hand.
    let mut server = Binary::start(&["--timeout", "1"], &[]);
    let addr = server.addr;
    let stop_at = Instant::now() + std::time::Duration::from_secs(4);
    let clients: Vec<_> = (0..8)
        .map(|_| {
            thread::spawn(move || {
                let mut fates = Vec::new();
                while Instant::now() < stop_at {
                    let Ok(mut stream) = std::net::TcpStream::connect(addr) else {
                        fates.push(Fate::Refused);
                        continue;
                    };
                    stream.set_read_timeout(Some(support::PATIENCE)).unwrap();
                    if stream.write_all(&post_form(TWILIO_WHATSAPP_FORM)).is_err() {
                        fates.push(Fate::Refused);
                        continue;
                    }
                    let mut first = [0u8; 12];
                    fates.push(match std::io::Read::read(&mut stream, &mut first) {
                        Ok(0) => Fate::Lost,
                        Ok(_) if first.starts_with(b"HTTP/1.1 200") => Fate::Answered,
                        Ok(_) => panic!("unexpected answer {:?}", first.escape_ascii()),
                        Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => {
                            Fate::Refused
                        }
                        Err(error) => panic!("no answer: {error}"),
                    });
                }
                fates
            })
        })
        .collect();
    thread::sleep(std::time::Duration::from_millis(500));
    signal(&server, "TERM");
    let status = server.wait_for_exit();
    let fates: Vec<Fate> = clients
        .into_iter()
        .flat_map(|client| client.join().unwrap())
        .collect();
    let count = |fate| fates.iter().filter(|&&f| f == fate).count();
    eprintln!(
        "{} answered, {} refused or reset, {} lost",
        count(Fate::Answered),
        count(Fate::Refused),
        count(Fate::Lost)
    );
    assert_eq!(status.code(), Some(0), "{:#?}", server.seen);
    assert_eq!(count(Fate::Lost), 0, "requests sent whole got no answer");
    assert!(count(Fate::Answered) > 0);
    assert!(count(Fate::Refused) > 0, "the load went on past the stop");
    assert_no_errors(&server.seen);
}
