//! Soak: 200 000 requests over keep-alive connections, with no error, and no
//! memory growth: the server's RSS after the soak is within 2 MiB of its RSS
//! after the first 1 000 requests.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::thread;

use support::{Binary, DEFAULT_TWIML, TWILIO_WHATSAPP_FORM, connect, post_form};

const CONNECTIONS: usize = 8;
const TOTAL: usize = 200_000;
const WARM_UP: usize = 1_000;

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("Linux /proc");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a VmRSS line")
}

/// Sends `count` Twilio POSTs on one keep-alive connection, checking each
/// answer; returns how many failed.
fn send(addr: SocketAddr, count: usize) -> usize {
    let request = post_form(TWILIO_WHATSAPP_FORM);
    let mut stream = connect(addr);
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut failures = 0;
    let mut line = String::new();
    let mut body = vec![0u8; DEFAULT_TWIML.len()];
    for _ in 0..count {
        stream.write_all(&request).unwrap();
        line.clear();
        reader.read_line(&mut line).unwrap();
        let ok = line == "HTTP/1.1 200 OK\r\n";
        let mut length = None;
        loop {
            line.clear();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some(value) = line.strip_prefix("Content-Length: ") {
                length = value.trim().parse::<usize>().ok();
            }
        }
        let length = length.expect("a Content-Length");
        body.resize(length, 0);
        reader.read_exact(&mut body).unwrap();
        if !ok || body != DEFAULT_TWIML.as_bytes() {
            failures += 1;
        }
    }
    failures
}

fn in_parallel(addr: SocketAddr, total: usize) -> usize {
    thread::scope(|scope| {
        let workers: Vec<_> = (0..CONNECTIONS)
            .map(|_| scope.spawn(move || send(addr, total / CONNECTIONS)))
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    })
}

#[test]
fn two_hundred_thousand_requests_without_an_error_or_a_leak() {
    // No line per message (they come from `answer`): it would only slow the
    // soak down. The start-up lines (from `server`) give the address.
    let server = Binary::start(
        &[],
        &[("RUST_LOG", "warn,whatsapp_webhook::http::server=info")],
    );
    let pid = server.pid();
    assert_eq!(in_parallel(server.addr, WARM_UP), 0);
    let after_warm_up = rss_kib(pid);
    assert_eq!(in_parallel(server.addr, TOTAL - WARM_UP), 0);
    let after_soak = rss_kib(pid);
    eprintln!("RSS after {WARM_UP} requests: {after_warm_up} KiB; after {TOTAL}: {after_soak} KiB");
    assert!(
        after_soak <= after_warm_up + 2048,
        "RSS grew from {after_warm_up} KiB to {after_soak} KiB"
    );
}
