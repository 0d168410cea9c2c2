//! The tiny_http edge, over raw TCP to the built binary: no request makes the
//! loop read from a client, a refusal is the last answer on its connection,
//! every answer's bytes are the server's own, and a server tiny_http has
//! leaked dry exits instead of living on answering nothing.

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

#[test]
fn a_refusal_is_the_last_answer_on_its_connection() {
    let mut server = Binary::start(
        &["--timeout", "1"],
        &[("RUST_LOG", "whatsapp_webhook=debug")],
    );
    let mut stream = connect(server.addr);
    let mut pipeline =
        b"POST /whatsapp HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nBody=x"
            .to_vec();
    pipeline.extend_from_slice(&post_form(TWILIO_WHATSAPP_FORM));
    pipeline.extend_from_slice(&bare("GET", "/healthz"));
    stream.write_all(&pipeline).unwrap();
    let received = until_closed(&mut stream);
    assert_eq!(statuses(&received), [400], "{received}");
    assert!(received.contains("\r\nConnection: close\r\n"), "{received}");
    assert!(received.ends_with("conflicting Content-Length headers\n"));
    // The requests behind it were read, and neither processed nor answered.
    server.wait_for("swallowed GET /healthz");
    assert!(
        !server
            .seen
            .iter()
            .any(|line| line.contains("incoming message")),
        "{:#?}",
        server.seen
    );
}

#[test]
fn a_refused_connection_stays_refused_however_many_others_are() {
    let server = Binary::start(&["--timeout", "5"], &[]);
    let bad = b"GET /whatsapp HTTP/1.1\r\nHost: x\r\nContent-Length: x\r\n\r\n";
    let mut first = connect(server.addr);
    first.write_all(bad).unwrap();
    let mut reader = BufReader::new(first.try_clone().unwrap());
    assert_eq!(read_response(&mut reader, false).status(), 400);
    // More refusals than the old table held, from other connections.
    let others: Vec<TcpStream> = (0..300)
        .map(|_| {
            let mut other = connect(server.addr);
            other.write_all(bad).unwrap();
            other
        })
        .collect();
    for other in others {
        assert_eq!(
            read_response(&mut BufReader::new(other), false).status(),
            400
        );
    }
    // The first connection still gets nothing for a request that would be
    // answered anywhere else.
    first.write_all(&post_form(TWILIO_WHATSAPP_FORM)).unwrap();
    first.shutdown(Shutdown::Write).unwrap();
    assert_eq!(until_closed(&mut first), "");
    server
        .request(&post_form(TWILIO_WHATSAPP_FORM))
        .assert_twiml(DEFAULT_TWIML);
}

/// A connection from 127.0.0.1 and exactly `port`.
fn connect_from(port: u16, server: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&SocketAddr::from(([127, 0, 0, 1], port)).into())?;
    socket.connect_timeout(&server.into(), Duration::from_secs(1))?;
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(support::PATIENCE))?;
    Ok(stream)
}

#[test]
fn a_new_connection_from_a_refused_connections_address_and_port_is_served() {
    let server = Binary::start(&["--timeout", "1"], &[]);
    // A client port below the range the system hands out, so that no other
    // connection (of the tests running alongside) takes it in between.
    let offset = u16::try_from(std::process::id() % 1000).unwrap_or(0);
    let (port, mut refused) = (20_000 + offset..32_000)
        .step_by(1000)
        .find_map(|port| Some((port, connect_from(port, server.addr).ok()?)))
        .expect("a free client port");
    refused
        .write_all(b"GET /whatsapp HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        .unwrap();
    assert_eq!(statuses(&until_closed(&mut refused)), [411]);
    drop(refused);

    // The same address and port can connect again once the old connection
    // is gone on both sides; then it is a new connection, served as any.
    let deadline = Instant::now() + support::PATIENCE;
    let mut again = loop {
        match connect_from(port, server.addr) {
            Ok(stream) => break stream,
            Err(error) if Instant::now() < deadline => {
                eprintln!("port {port} not free yet: {error}");
                thread::sleep(Duration::from_millis(200));
            }
            Err(error) => panic!("cannot connect from port {port} again: {error}"),
        }
    };
    again.write_all(&post_form(TWILIO_WHATSAPP_FORM)).unwrap();
    read_response(&mut BufReader::new(again), false).assert_twiml(DEFAULT_TWIML);
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
        !server.seen.iter().any(|line| line.contains("panicked at")),
        "{:#?}",
        server.seen
    );
}
