//! Running out of file descriptors: tiny_http's accept thread ends on the
//! first accept error; the server must keep or regain service once the burst
//! ends.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use support::{Binary, DEFAULT_TWIML, PATIENCE};

/// Starts the binary with a soft and hard limit of `limit` open files.
fn start_with_file_limit(limit: u32) -> Binary {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(format!("ulimit -n {limit} && exec \"$0\" \"$@\""))
        .arg(Binary::path())
        .args(["--host", "127.0.0.1", "--port", "0"]);
    Binary::start_command(command, &[])
}

/// Opens more connections than the server has descriptors for, holds them
/// a moment, then closes them all.
fn burst(server: &Binary, connections: usize) {
    let burst: Vec<TcpStream> = (0..connections)
        .filter_map(|_| TcpStream::connect_timeout(&server.addr, PATIENCE).ok())
        .collect();
    assert!(burst.len() > 128, "only {} connections opened", burst.len());
    thread::sleep(Duration::from_millis(300));
}

/// Sends a webhook request until one is answered, for at most `PATIENCE`.
fn answered_again(server: &Binary) -> bool {
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        let attempt = (|| {
            let mut stream =
                TcpStream::connect_timeout(&server.addr, Duration::from_secs(1)).ok()?;
            stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
            stream
                .write_all(b"GET /whatsapp HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .ok()?;
            let mut raw = Vec::new();
            stream.read_to_end(&mut raw).ok()?;
            Some(raw.starts_with(b"HTTP/1.1 200 OK\r\n") && raw.ends_with(DEFAULT_TWIML.as_bytes()))
        })();
        if attempt == Some(true) {
            return true;
        }
        thread::sleep(Duration::from_millis(100));
    }
    false
}

// Each connection costs tiny_http two descriptors (`accept`, then `dup`), so
// of two limits one apart, one makes `accept` fail, and tiny_http reports the
// error; the other makes the `dup` fail, and tiny_http's accept thread panics
// without reporting anything, which only the watchdog notices. Which limit
// does which depends on how many descriptors the process already holds.
fn service_comes_back_after_a_burst(limit: u32) {
    let mut server = start_with_file_limit(limit);
    burst(&server, 300);
    assert!(answered_again(&server), "{:#?}", server.seen);
    server.wait_for("the listener stopped accepting connections");
    // What tiny_http's accept thread did is told in log lines, never as raw
    // panic output.
    let status = Command::new("kill")
        .args(["-TERM", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(server.wait_for_exit().code(), Some(0), "{:#?}", server.seen);
    for line in &server.seen {
        assert!(!line.contains("panicked at"), "{:#?}", server.seen);
        if line.contains(" ERROR ") {
            assert!(
                line.contains("tiny_http's accept thread could not duplicate"),
                "{:#?}",
                server.seen
            );
        }
    }
}

#[test]
fn service_comes_back_after_a_burst_at_an_even_limit() {
    service_comes_back_after_a_burst(128);
}

#[test]
fn service_comes_back_after_a_burst_at_an_odd_limit() {
    service_comes_back_after_a_burst(129);
}
