//! Soak: 200 000 new messages (each `MessageSid` its own) over 8 keep-alive
//! connections to a server in this process, its logger writing every
//! message's line: no error, and no leak. The heap the process holds is
//! counted by a global allocator in the bytes asked of it, so the bound
//! does not depend on what the allocator does with them: after the soak it
//! is what it was after the first 1 000 requests, within 64 KiB, with the
//! same connections open. A leak of one byte per request would be 194 KiB.

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::thread;

use support::{DEFAULT_TWIML, TWILIO_WHATSAPP_FORM, TestServer, post_form};
use whatsapp_webhook::{Config, logging};

const CONNECTIONS: usize = 8;
const TOTAL: usize = 200_000;
const WARM_UP: usize = 1_000;
const BOUND: isize = 64 * 1024;

/// Bytes allocated and not yet freed, in this whole process.
static HELD: AtomicIsize = AtomicIsize::new(0);

struct Counting;

fn size(layout: Layout) -> isize {
    isize::try_from(layout.size()).unwrap_or(isize::MAX)
}

// SAFETY: every call is passed on to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        HELD.fetch_add(size(layout), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        HELD.fetch_add(size(layout), Ordering::Relaxed);
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let grown = isize::try_from(new_size).unwrap_or(isize::MAX) - size(layout);
        HELD.fetch_add(grown, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        HELD.fetch_sub(size(layout), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Counts the bytes of log lines written.
/// One keep-alive connection and the buffers its client reuses.
struct Client {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
    request: Vec<u8>,
    /// Where the request's message ids start.
    ids: Vec<usize>,
    line: String,
    body: Vec<u8>,
}

impl Client {
    fn new(server: &TestServer) -> Client {
        let stream = server.connect();
        let reader = BufReader::new(stream.try_clone().expect("clone the stream"));
        let request = post_form(TWILIO_WHATSAPP_FORM);
        // SmsMessageSid, SmsSid and MessageSid: 32 hex digits after "SM".
        let ids: Vec<usize> = String::from_utf8_lossy(&request)
            .match_indices("SM9d3b1b2f6a0c4e5f8a7b6c5d4e3f2a1b")
            .map(|(at, _)| at + 2)
            .collect();
        assert_eq!(ids.len(), 3);
        Client {
            stream,
            reader,
            request,
            ids,
            line: String::with_capacity(256),
            body: Vec::with_capacity(DEFAULT_TWIML.len()),
        }
    }

    /// Sends the messages numbered `from` to `to` (exclusive), each with a
    /// `MessageSid` of its own, checking each answer; returns how many
    /// failed.
    fn send(&mut self, from: usize, to: usize) -> usize {
        let mut failures = 0;
        for number in from..to {
            for &start in &self.ids {
                let digits = &mut self.request[start..start + 32];
                let mut left = number;
                for digit in digits.iter_mut().rev() {
                    *digit = b"0123456789abcdef"[left % 16];
                    left /= 16;
                }
            }
            self.stream.write_all(&self.request).expect("send");
            self.line.clear();
            self.reader.read_line(&mut self.line).expect("status line");
            let ok = self.line == "HTTP/1.1 200 OK\r\n";
            let mut length = None;
            loop {
                self.line.clear();
                self.reader.read_line(&mut self.line).expect("header");
                if self.line == "\r\n" {
                    break;
                }
                if let Some(value) = self.line.strip_prefix("Content-Length: ") {
                    length = value.trim().parse::<usize>().ok();
                }
            }
            self.body.resize(length.expect("a Content-Length"), 0);
            self.reader.read_exact(&mut self.body).expect("body");
            if !ok || self.body != DEFAULT_TWIML.as_bytes() {
                failures += 1;
            }
        }
        failures
    }
}

/// Messages `from` to `to`, shared out among the clients, all at once.
fn in_parallel(clients: &mut [Client], from: usize, to: usize) -> usize {
    let each = (to - from) / clients.len();
    thread::scope(|scope| {
        let workers: Vec<_> = clients
            .iter_mut()
            .enumerate()
            .map(|(i, client)| {
                let start = from + i * each;
                scope.spawn(move || client.send(start, start + each))
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| worker.join().expect("a client"))
            .sum()
    })
}

#[test]
fn two_hundred_thousand_new_messages_without_an_error_or_a_leak() {
    let written = support::counting_logger(false);
    let server = TestServer::with(Config::default());
    let mut clients: Vec<Client> = (0..CONNECTIONS).map(|_| Client::new(&server)).collect();

    assert_eq!(in_parallel(&mut clients, 0, WARM_UP), 0);
    logging::flush();
    let after_warm_up = HELD.load(Ordering::Relaxed);
    let lines_then = written.load(Ordering::Relaxed);
    assert_eq!(in_parallel(&mut clients, WARM_UP, TOTAL), 0);
    logging::flush();
    let after_soak = HELD.load(Ordering::Relaxed);
    eprintln!(
        "heap held after {WARM_UP} requests: {after_warm_up} bytes; after {TOTAL}: {after_soak} bytes"
    );
    // Every message was logged: a line of over 100 bytes each.
    assert!(written.load(Ordering::Relaxed) - lines_then > 100 * (TOTAL - WARM_UP));
    assert!(
        after_soak - after_warm_up <= BOUND,
        "the heap grew from {after_warm_up} to {after_soak} bytes"
    );
    drop(clients);
    server.stop().expect("the server stops");
}
