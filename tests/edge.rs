//! The tiny_http edge, over raw TCP to the built binary: no request makes the
//! loop read from a client, a refusal says `close` and its connection is let
//! go, no request from a new connection is ever lost to what an old one from
//! the same address and port did, every answer's bytes are the server's own,
//! and a server that cannot answer exits saying what holds its connections.

mod support;

use std::io::{BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use socket2::{Domain, Socket, Type};
use support::{
    Binary, DEFAULT_TWIML, TWILIO_WHATSAPP_FORM, bare, connect, post_form, read_response,
    still_waiting,
};

/// Everything the server sends until it closes the connection.
fn until_closed(stream: &mut TcpStream) -> String {
    stream.set_read_timeout(Some(support::PATIENCE)).unwrap();
    let mut received = Vec::new();
    match stream.read_to_end(&mut received) {
        Ok(_) => {}
        Err(error) if error.kind() == ErrorKind::ConnectionReset => {}
        Err(error) => panic!("the connection was not closed: {error}"),
    }
    String::from_utf8_lossy(&received).into_owned()
}

/// The status codes of the responses in `text`.
fn statuses(text: &str) -> Vec<u16> {
    text.match_indices("HTTP/1.1 ")
        .filter_map(|(at, _)| text[at + 9..].get(..3)?.parse().ok())
        .collect()
}

const UPGRADE_FORM: &str = "POST /whatsapp HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nContent-Type: application/x-www-form-urlencoded\r\n";

#[test]
fn three_stalled_upgrade_connections_delay_no_one() {
    // A timeout long enough that no stalled connection can end first.
    let server = Binary::start(&["--timeout", "60"], &[]);
    // No Content-Length: nothing to read, so the raw socket tiny_http hands
    // over as the body is never read, and the answer comes at once.
    let mut bare_upgrade = connect(server.addr);
    bare_upgrade
        .write_all(format!("{UPGRADE_FORM}\r\n").as_bytes())
        .unwrap();
    // A body announced and never sent, and one that trickles: reading them
    // waits, on a body worker.
    let mut stalled = connect(server.addr);
    stalled
        .write_all(format!("{UPGRADE_FORM}Content-Length: 100\r\n\r\n").as_bytes())
        .unwrap();
    let mut trickling = connect(server.addr);
    trickling
        .write_all(format!("{UPGRADE_FORM}Content-Length: 100\r\n\r\nB").as_bytes())
        .unwrap();

    let started = Instant::now();
    let health = server.request(&bare("GET", "/healthz"));
    health.assert_text("HTTP/1.1 200 OK", "ok\n");
    server
        .request(&post_form(TWILIO_WHATSAPP_FORM))
        .assert_twiml(DEFAULT_TWIML);
    eprintln!(
        "answered past three upgrade connections in {:?}",
        started.elapsed()
    );
    trickling.write_all(b"o").unwrap();
    // Answered while the stalled ones still wait: it waited on neither.
    assert!(still_waiting(&stalled));
    assert!(still_waiting(&trickling));

    let response = read_response(&mut BufReader::new(bare_upgrade), false);
    response.assert_twiml(DEFAULT_TWIML);
    assert_eq!(
        response.header("Connection"),
        Some("close"),
        "tiny_http reads nothing more after an upgrade request"
    );
}

#[test]
fn an_upgrade_request_with_a_body_is_answered_once_the_body_arrives() {
    let server = Binary::start(&[], &[]);
    let form = "From=whatsapp%3A%2B1555&Body=hi";
    let mut stream = connect(server.addr);
    stream
        .write_all(format!("{UPGRADE_FORM}Content-Length: {}\r\n\r\n", form.len()).as_bytes())
        .unwrap();
    thread::sleep(Duration::from_millis(100));
    stream.write_all(form.as_bytes()).unwrap();
    let response = read_response(&mut BufReader::new(stream), false);
    response.assert_twiml(DEFAULT_TWIML);
    assert_eq!(response.header("Connection"), Some("close"));
}

/// How many connections to `port` the kernel shows open on the server's
/// side (Linux), whatever their state.
fn held_open(port: u16) -> usize {
    whatsapp_webhook::http::sockets::connections(port)
        .expect("Linux lists its connections")
        .held()
}

/// Waits until `check` holds, or `patience` has passed; returns whether it
/// held.
fn eventually(patience: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + patience;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        thread::sleep(Duration::from_millis(50));
    }
    check()
}

#[test]
fn a_refusal_says_close_and_its_connection_is_let_go_when_the_client_closes() {
    // A timeout far longer than the wait below: a connection held until its
    // timeout (as one held "closing" once was) fails the test.
    let server = Binary::start(&["--timeout", "60"], &[]);
    let port = server.addr.port();
    let refusals: Vec<TcpStream> = (0..200)
        .map(|_| {
            let mut stream = connect(server.addr);
            stream
                .write_all(
                    b"POST /whatsapp HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
                )
                .unwrap();
            stream
        })
        .collect();
    for mut stream in refusals {
        let received = until_closed_after_first(&mut stream);
        assert!(received.starts_with("HTTP/1.1 411 "), "{received}");
        assert!(received.contains("\r\nConnection: close\r\n"), "{received}");
    }
    assert!(
        eventually(support::PATIENCE, || held_open(port) == 0),
        "{} connections still held",
        held_open(port)
    );
    server
        .request(&post_form(TWILIO_WHATSAPP_FORM))
        .assert_twiml(DEFAULT_TWIML);
}

/// Reads one answer, then closes the connection as a client told `close`
/// does, and returns what was read.
fn until_closed_after_first(stream: &mut TcpStream) -> String {
    let response = read_response(&mut BufReader::new(stream.try_clone().unwrap()), false);
    let mut text = format!("{}\r\n", response.status_line);
    for (name, value) in &response.headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    stream.shutdown(Shutdown::Both).unwrap();
    text
}

#[test]
fn what_a_client_sends_after_its_refused_request_is_read_as_its_next_requests() {
    // tiny_http cannot close a connection: it reads on after a refusal. The
    // bytes that follow are the same client's, on its own connection (a
    // proxy re-frames requests and closes after a refusal: tests/deploy.rs).
    let server = Binary::start(&[], &[]);
    let mut stream = connect(server.addr);
    let mut pipeline =
        b"POST /whatsapp HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 6\r\n\r\n"
            .to_vec();
    pipeline.extend_from_slice(&bare("GET", "/healthz"));
    pipeline.extend_from_slice(b"not a request line\r\n\r\n");
    stream.write_all(&pipeline).unwrap();
    let received = until_closed(&mut stream);
    assert_eq!(statuses(&received), [400, 200, 400], "{received}");
    assert!(
        received.starts_with("HTTP/1.1 400 Bad Request\r\n"),
        "the refusal comes first: {received}"
    );
    let refusal_end = received
        .find("conflicting Content-Length headers\n")
        .unwrap();
    assert!(received[..refusal_end].contains("\r\nConnection: close\r\n"));
}

/// A client socket on 127.0.0.1 and `port` (0: the system picks).
fn client_socket(port: u16) -> std::io::Result<Socket> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&SocketAddr::from(([127, 0, 0, 1], port)).into())?;
    Ok(socket)
}

/// Connects from 127.0.0.1 and exactly `port`, retrying while the system
/// still holds the previous connection from it.
fn connect_from(port: u16, server: SocketAddr) -> TcpStream {
    let deadline = Instant::now() + support::PATIENCE;
    loop {
        let attempt =
            client_socket(port).and_then(|socket| socket.connect(&server.into()).map(|()| socket));
        match attempt {
            Ok(socket) => {
                let stream: TcpStream = socket.into();
                stream.set_read_timeout(Some(support::PATIENCE)).unwrap();
                return stream;
            }
            Err(error) if Instant::now() < deadline => {
                eprintln!("port {port} not free yet: {error}");
                thread::sleep(Duration::from_millis(50));
            }
            Err(error) => panic!("cannot connect from port {port} again: {error}"),
        }
    }
}

#[test]
fn a_new_connection_from_a_refused_connections_address_and_port_is_served() {
    // As behind a proxy on the same host: every connection from 127.0.0.1,
    // ports reused as soon as they are free. The refused client resets or
    // closes, and its address and port connect again at once.
    let server = Binary::start(&["--timeout", "60"], &[]);
    for close in ["reset", "close"] {
        for round in 0..5 {
            let socket = client_socket(0).unwrap();
            socket.connect(&server.addr.into()).unwrap();
            let port = socket.local_addr().unwrap().as_socket().unwrap().port();
            let mut refused: TcpStream = socket.into();
            refused
                .write_all(
                    b"GET /whatsapp HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
                )
                .unwrap();
            let response = read_response(&mut BufReader::new(refused.try_clone().unwrap()), false);
            assert_eq!(response.status(), 411);
            if close == "reset" {
                socket2::SockRef::from(&refused)
                    .set_linger(Some(Duration::ZERO))
                    .unwrap();
            }
            drop(refused);

            let mut again = connect_from(port, server.addr);
            again.write_all(&post_form(TWILIO_WHATSAPP_FORM)).unwrap();
            let response = read_response(&mut BufReader::new(again), false);
            assert_eq!(response.status(), 200, "after a {close}, round {round}");
            response.assert_twiml(DEFAULT_TWIML);
        }
    }
}

#[test]
fn every_answer_is_the_servers_own_bytes() {
    let server = Binary::start(&[], &[]);
    let mut stream = connect(server.addr);
    stream.write_all(&bare("GET", "/whatsapp")).unwrap();
    stream.write_all(&bare("HEAD", "/whatsapp")).unwrap();
    stream
        .write_all(b"DELETE /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let received = until_closed(&mut stream);
    let date = |text: &str| {
        let value = text
            .split("\r\nDate: ")
            .nth(1)
            .and_then(|rest| rest.get(..29))
            .expect("a Date header");
        assert!(httpdate_ok(value), "{value}");
        value.to_owned()
    };
    let first_date = date(&received);
    let expected = format!(
        "HTTP/1.1 200 OK\r\nDate: {first_date}\r\nContent-Type: text/xml; charset=utf-8\r\nContent-Length: 94\r\n\r\n{DEFAULT_TWIML}"
    );
    assert!(received.starts_with(&expected), "{received}");
    let rest = &received[expected.len()..];
    let head_date = date(rest);
    let head = format!(
        "HTTP/1.1 200 OK\r\nDate: {head_date}\r\nContent-Type: text/xml; charset=utf-8\r\nContent-Length: 94\r\n\r\n"
    );
    assert!(rest.starts_with(&head), "HEAD has no body: {rest}");
    let rest = &rest[head.len()..];
    let last_date = date(rest);
    assert_eq!(
        rest,
        format!(
            "HTTP/1.1 405 Method Not Allowed\r\nDate: {last_date}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 19\r\nAllow: GET, HEAD\r\nConnection: close\r\n\r\nmethod not allowed\n"
        )
    );
}

/// Whether `value` is an IMF-fixdate such as `Thu, 26 Nov 2026 10:28:51 GMT`.
fn httpdate_ok(value: &str) -> bool {
    let bytes = value.as_bytes();
    value.len() == 29
        && value.ends_with(" GMT")
        && bytes[3] == b','
        && bytes[19] == b':'
        && bytes[22] == b':'
        && value[12..16].parse::<u16>().is_ok()
}

#[test]
fn a_server_tiny_http_has_leaked_dry_exits_1_with_one_clear_line() {
    // tiny_http 0.12 deadlocks the thread reading an HTTP/2.0 request line,
    // which keeps that connection's descriptors for good. With 64
    // descriptors, a few dozen such requests leave none to accept with.
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg("ulimit -n 64 && exec \"$0\" \"$@\"")
        .arg(Binary::path())
        .args(["--host", "127.0.0.1", "--port", "0", "--timeout", "1"]);
    let mut server = Binary::start_command(command, &[]);
    let started = Instant::now();
    for _ in 0..40 {
        let Ok(mut stream) = TcpStream::connect_timeout(&server.addr, Duration::from_secs(1))
        else {
            break;
        };
        let _ = stream.write_all(b"GET /whatsapp HTTP/2.0\r\n\r\n");
    }
    let status = server.wait_for_exit();
    eprintln!("exited after {:?}", started.elapsed());
    assert_eq!(status.code(), Some(1), "{:#?}", server.seen);
    let reasons: Vec<&String> = server
        .seen
        .iter()
        .filter(|line| line.starts_with("whatsapp-webhook: "))
        .collect();
    assert_eq!(reasons.len(), 1, "{:#?}", server.seen);
    assert!(
        reasons[0].starts_with("whatsapp-webhook: no connection could be answered for "),
        "{reasons:?}"
    );
    assert!(reasons[0].contains("exiting so that a supervisor can start the server again"));
    assert!(
        reasons[0].contains("most descriptors are held by connections tiny_http has lost"),
        "{reasons:?}"
    );
    assert!(
        !server.seen.iter().any(|line| line.contains("panicked at")),
        "{:#?}",
        server.seen
    );
}

#[test]
fn a_server_held_dry_by_live_slow_clients_says_so_when_it_exits() {
    // Slowloris: more connections than half the descriptors, each sending
    // a header line well within the timeout, for as long as the server runs.
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg("ulimit -n 64 && exec \"$0\" \"$@\"")
        .arg(Binary::path())
        .args(["--host", "127.0.0.1", "--port", "0", "--timeout", "1"]);
    let mut server = Binary::start_command(command, &[]);
    let mut attackers: Vec<TcpStream> = (0..40)
        .filter_map(|_| TcpStream::connect_timeout(&server.addr, Duration::from_secs(1)).ok())
        .collect();
    for stream in &mut attackers {
        let _ = stream.write_all(b"GET /whatsapp HTTP/1.1\r\nHost: x\r\n");
    }
    let keep_sending = thread::spawn(move || {
        let deadline = Instant::now() + support::PATIENCE;
        while Instant::now() < deadline {
            let mut sent = 0;
            for stream in &mut attackers {
                if stream.write_all(b"X-A: b\r\n").is_ok() {
                    sent += 1;
                }
            }
            if sent == 0 {
                return;
            }
            thread::sleep(Duration::from_millis(200));
        }
    });
    let status = server.wait_for_exit();
    assert_eq!(status.code(), Some(1), "{:#?}", server.seen);
    let reason = server
        .seen
        .iter()
        .find(|line| line.starts_with("whatsapp-webhook: "))
        .unwrap_or_else(|| panic!("no reason: {:#?}", server.seen));
    assert!(
        reason.contains("most descriptors are held by live connections"),
        "{reason}"
    );
    assert!(
        !reason.contains("tiny_http has lost"),
        "live connections are not leaked ones: {reason}"
    );
    keep_sending.join().unwrap();
}
