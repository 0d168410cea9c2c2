//! Slow clients: connections idle mid-headers, bodies that stall, clients
//! that do not read their answers. None of them may delay a normal request,
//! and their connections must end without threads piling up.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use socket2::{Domain, Socket, Type};
use support::{
    Binary, DEFAULT_TWIML, TWILIO_WHATSAPP_FORM, connect, post_form, read_response, still_waiting,
};

/// The server's timeout in these tests, in seconds.
const TIMEOUT: u64 = 3;

fn threads_of(pid: u32) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("Linux /proc");
    status
        .lines()
        .find_map(|line| line.strip_prefix("Threads:"))
        .and_then(|count| count.trim().parse().ok())
        .expect("a Threads line")
}

/// Waits up to `patience` for `check` to hold.
fn eventually(patience: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + patience;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        thread::sleep(Duration::from_millis(100));
    }
    check()
}

/// Reads what the server sends until it closes; `None` if it keeps the
/// connection open past the timeout and a margin.
fn until_closed(mut stream: TcpStream) -> Option<String> {
    stream
        .set_read_timeout(Some(Duration::from_secs(4 * TIMEOUT + 10)))
        .unwrap();
    let mut received = Vec::new();
    match stream.read_to_end(&mut received) {
        Ok(_) => Some(String::from_utf8_lossy(&received).into_owned()),
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {
            Some(String::from_utf8_lossy(&received).into_owned())
        }
        Err(_) => None,
    }
}

/// Opens 200 connections that stop mid-headers and 20 whose body stalls
/// after 300 of its 5000 bytes.
fn stall(server: &Binary) -> (Vec<TcpStream>, Vec<TcpStream>) {
    let idle_headers: Vec<TcpStream> = (0..200)
        .map(|_| {
            let mut stream = connect(server.addr);
            stream
                .write_all(b"POST /whatsapp HTTP/1.1\r\nHost: x\r\nContent-Type: applica")
                .unwrap();
            stream
        })
        .collect();
    let stalled_bodies: Vec<TcpStream> = (0..20)
        .map(|_| {
            let mut stream = connect(server.addr);
            stream
                .write_all(&post_form(&format!("Body={}", "x".repeat(4995)))[..300])
                .unwrap();
            stream
        })
        .collect();
    (idle_headers, stalled_bodies)
}

#[test]
fn stalled_connections_do_not_delay_a_twilio_post() {
    // A timeout long enough that no stalled connection can end first.
    let server = Binary::start(
        &["--timeout", "60"],
        &[("RUST_LOG", "info,whatsapp_webhook::http=debug")],
    );
    let (idle_headers, stalled_bodies) = stall(&server);

    let started = Instant::now();
    let mut stream = connect(server.addr);
    stream.write_all(&post_form(TWILIO_WHATSAPP_FORM)).unwrap();
    let mut reader = std::io::BufReader::new(stream);
    if let Err(error) = std::io::BufRead::fill_buf(&mut reader) {
        let mut server = server;
        panic!("no answer: {error}; server log: {:#?}", server.log_so_far());
    }
    let response = read_response(&mut reader, false);
    let took = started.elapsed();
    response.assert_twiml(DEFAULT_TWIML);
    eprintln!("a Twilio POST past 220 stalled connections was answered in {took:?}");
    // Answered while every stalled connection still waits: it waited on none.
    assert!(stalled_bodies.iter().all(still_waiting));
    assert!(idle_headers.iter().all(still_waiting));
}

#[test]
fn stalled_connections_end_without_leaving_threads() {
    let server = Binary::start(&["--timeout", &TIMEOUT.to_string()], &[]);
    let pid = server.pid();
    // Every thread is up once the address is logged: the level to come back to.
    let baseline = threads_of(pid);
    let (idle_headers, stalled_bodies) = stall(&server);

    let ended: Vec<Option<String>> = thread::scope(|scope| {
        let handles: Vec<_> = idle_headers
            .into_iter()
            .chain(stalled_bodies)
            .map(|stream| scope.spawn(move || until_closed(stream)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let (headers, bodies) = ended.split_at(200);
    for received in headers {
        assert_eq!(
            received.as_deref(),
            Some(""),
            "an idle connection is closed"
        );
    }
    for received in bodies {
        let received = received
            .as_deref()
            .expect("a stalled body's connection is closed");
        assert!(
            received.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
            "{received:?}"
        );
    }

    // tiny_http's idle connection threads end a few seconds later. The slack
    // covers a listener restart (a new accept thread and its pool of four),
    // which the watchdog makes when the burst delays its probe.
    assert!(
        eventually(Duration::from_secs(30), || threads_of(pid) <= baseline + 10),
        "threads: {} at start, {} now",
        baseline,
        threads_of(pid)
    );
    server
        .request(&post_form(TWILIO_WHATSAPP_FORM))
        .assert_twiml(DEFAULT_TWIML);
}

/// A connection from 127.0.0.1 and `port` (0: the system picks) with a
/// small receive buffer, which also stops the kernel from growing it.
fn small_window_socket(port: u16) -> Socket {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket.set_reuse_address(true).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket
        .bind(&std::net::SocketAddr::from(([127, 0, 0, 1], port)).into())
        .unwrap();
    socket
}

#[test]
fn a_client_that_does_not_read_its_answers_delays_no_one_and_its_port_is_served_again() {
    let mut server = Binary::start(
        &["--timeout", &TIMEOUT.to_string()],
        &[("RUST_LOG", "whatsapp_webhook=debug")],
    );
    let socket = small_window_socket(0);
    socket.connect(&server.addr.into()).unwrap();
    let port = socket.local_addr().unwrap().as_socket().unwrap().port();
    let mut greedy: TcpStream = socket.into();
    greedy
        .set_write_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let writer = thread::spawn(move || {
        let request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".repeat(1000);
        // Stops when the server stops reading, or the connection ends.
        for _ in 0..300 {
            if greedy.write_all(&request).is_err() {
                break;
            }
        }
        greedy // kept open, unread, until the checks are done
    });
    server.wait_for("does not read its answers: they are written on a thread of their own");
    server
        .request(&post_form(TWILIO_WHATSAPP_FORM))
        .assert_twiml(DEFAULT_TWIML);
    let mut prober = connect(server.addr);
    prober.write_all(&support::bare("GET", "/healthz")).unwrap();
    read_response(&mut std::io::BufReader::new(prober), false)
        .assert_text("HTTP/1.1 200 OK", "ok\n");

    // The greedy client goes (unread answers make its close a reset), and
    // a new connection from its address and port is answered at once.
    drop(writer.join().unwrap());
    let deadline = Instant::now() + support::PATIENCE;
    let mut again = loop {
        let socket = small_window_socket(port);
        match socket.connect(&server.addr.into()) {
            Ok(()) => break TcpStream::from(socket),
            Err(error) => {
                assert!(
                    Instant::now() < deadline,
                    "cannot reuse port {port}: {error}"
                );
                thread::sleep(Duration::from_millis(50));
            }
        }
    };
    again.set_read_timeout(Some(support::PATIENCE)).unwrap();
    again.write_all(&post_form(TWILIO_WHATSAPP_FORM)).unwrap();
    read_response(&mut std::io::BufReader::new(again), false).assert_twiml(DEFAULT_TWIML);
}

/// A POST with a form body of `length` bytes.
fn post_of(length: usize) -> Vec<u8> {
    post_form(&format!(
        "From=whatsapp%3A%2B1555&Body={}",
        "x".repeat(length - 29)
    ))
}

#[test]
fn thirty_two_stalled_bodies_delay_no_post_of_any_size() {
    // A timeout long enough that no stalled body can end first: a POST
    // answered while they all still wait waited on none of them.
    let server = Binary::start(&["--timeout", "60"], &[]);
    let stalled: Vec<TcpStream> = (0..32)
        .map(|_| {
            let mut stream = connect(server.addr);
            let request = post_of(5000);
            stream.write_all(&request[..request.len() - 4990]).unwrap();
            stream
        })
        .collect();
    for length in [100, 1025, 2000, 20_000, 65_536] {
        let mut stream = connect(server.addr);
        stream.write_all(&post_of(length)).unwrap();
        read_response(&mut std::io::BufReader::new(stream), false).assert_twiml(DEFAULT_TWIML);
        assert!(
            stalled.iter().all(still_waiting),
            "a stalled body ended before the POST of {length} bytes was answered"
        );
    }
}

#[test]
fn at_the_bound_the_oldest_body_still_arriving_is_dropped_and_the_newest_served() {
    // 256 descriptors make the bound 32 bodies arriving at once.
    let mut command = std::process::Command::new("sh");
    command
        .arg("-c")
        .arg("ulimit -n 256 && exec \"$0\" \"$@\"")
        .arg(Binary::path())
        .args(["--host", "127.0.0.1", "--port", "0", "--timeout", "60"]);
    let mut server = Binary::start_command(command, &[("RUST_LOG", "whatsapp_webhook=debug")]);
    let request = post_of(2000);
    let (head, body) = request.split_at(request.len() - 2000);
    let mut arriving: Vec<TcpStream> = (0..33)
        .map(|_| {
            let mut stream = connect(server.addr);
            stream.write_all(head).unwrap();
            stream.write_all(&body[..10]).unwrap();
            stream
        })
        .collect();
    server.wait_for("32 request bodies are still arriving: the oldest is dropped");
    // Which body was read first is the server's to know (requests reach it
    // in the order tiny_http reads them): every body goes on a byte, which
    // the one told to stop notices at; then every body arrives whole, and
    // that one answers 503 once tiny_http has discarded the rest of it.
    for stream in &mut arriving {
        stream.write_all(&body[10..11]).unwrap();
    }
    server.wait_for("this one had waited longest");
    for stream in &mut arriving {
        stream.write_all(&body[11..]).unwrap();
    }
    let statuses: Vec<(u16, String)> = arriving
        .into_iter()
        .map(|stream| {
            let response = read_response(&mut std::io::BufReader::new(stream), false);
            (response.status(), response.body_text().to_owned())
        })
        .collect();
    let dropped: Vec<&(u16, String)> = statuses
        .iter()
        .filter(|(status, _)| *status != 200)
        .collect();
    assert_eq!(
        dropped,
        [&(
            503,
            "too many request bodies are arriving at once\n".to_owned()
        )],
        "{statuses:?}"
    );
    for (status, text) in &statuses {
        if *status == 200 {
            assert_eq!(text, DEFAULT_TWIML);
        }
    }
}

#[test]
fn a_burst_of_keep_alive_connections_is_served_while_they_all_stay_open() {
    // tiny_http's pool queues some of a burst's connections behind threads
    // that are busy with other keep-alive connections for as long as those
    // stay open; the watchdog's rescue releases them (src/http/rescue.rs).
    // Without it they wait, one more freed per watchdog probe (a second
    // each): most of 32 would not be answered within the patience of
    // `connect`'s read timeout. How fast a burst is served is measured by
    // benches/load.sh ("cold start"), not here.
    let mut server = Binary::start(
        &["--timeout", "60"],
        &[("RUST_LOG", "info,whatsapp_webhook::http::rescue=debug")],
    );
    let mut streams: Vec<TcpStream> = (0..32).map(|_| connect(server.addr)).collect();
    for stream in &mut streams {
        stream.write_all(&post_form(TWILIO_WHATSAPP_FORM)).unwrap();
    }
    let mut readers: Vec<_> = streams.into_iter().map(std::io::BufReader::new).collect();
    for reader in &mut readers {
        read_response(reader, false).assert_twiml(DEFAULT_TWIML);
    }
    // The rescue acted: it opened short connections.
    let opened = server.wait_for("short connections to free connections");
    let count: usize = opened
        .split("opened ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|count| count.parse().ok())
        .unwrap_or_else(|| panic!("{opened}"));
    assert!(count > 0, "{opened}");
    // Every connection is still open and is served again.
    for reader in &mut readers {
        reader
            .get_mut()
            .write_all(&post_form(TWILIO_WHATSAPP_FORM))
            .unwrap();
        read_response(reader, false).assert_twiml(DEFAULT_TWIML);
    }
}
