//! Heap allocations per request in the project's own code, counted by a
//! global allocator that counts only on the thread that asked it to.
//!
//! A new Twilio WhatsApp message (a `MessageSid` not seen before) costs no
//! allocation here once the server has warmed up, its log line written by
//! the project's logger (text format, at `info`) included; no signature
//! secret is set (checking a signature allocates: `cargo bench --bench
//! request` counts it). Its parameters are read in one pass and kept as
//! they were sent, encoded; the values its log line shows (`From`,
//! `ProfileName`, `Body`) are decoded into a buffer each thread keeps, as
//! they are written.
//! form_urlencoded, decoding just `From` and `Body`, makes 7 allocations: a
//! copy to turn `+` into spaces, then a vector that grows as `%XX` is
//! decoded.
//!
//! Routing, framing, reading the body (into a reused buffer), remembering
//! the `MessageSid`, choosing the reply and writing the answer allocate
//! nothing either: every answer is rendered at start-up, and written through
//! a buffer each thread keeps.

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use support::TWILIO_WHATSAPP_FORM;
use tiny_http::{Method, Request, TestRequest};
use whatsapp_webhook::Config;
use whatsapp_webhook::answer::Webhook;
use whatsapp_webhook::events;
use whatsapp_webhook::http::body::{self, MAX_BODY_BYTES};
use whatsapp_webhook::http::framing;
use whatsapp_webhook::http::incoming::Incoming;
use whatsapp_webhook::http::response::Out;
use whatsapp_webhook::twilio::params::Params;

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<usize> = const { Cell::new(0) };
}

/// Set once a thread counts, so that other threads skip the thread-locals.
static ANY_COUNTING: AtomicBool = AtomicBool::new(false);

fn note_allocation() {
    if ANY_COUNTING.load(Ordering::Relaxed) && COUNTING.with(Cell::get) {
        COUNT.with(|count| count.set(count.get() + 1));
    }
}

// SAFETY: every call is passed on to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation();
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `work` and returns its result and the allocations it made on this
/// thread.
fn allocations<T>(work: impl FnOnce() -> T) -> (T, usize) {
    ANY_COUNTING.store(true, Ordering::Relaxed);
    COUNT.with(|count| count.set(0));
    COUNTING.with(|counting| counting.set(true));
    let result = work();
    COUNTING.with(|counting| counting.set(false));
    (result, COUNT.with(Cell::get))
}

fn post(form: &'static str) -> Request {
    TestRequest::new()
        .with_method(Method::Post)
        .with_path("/whatsapp")
        .with_header(
            "Content-Type: application/x-www-form-urlencoded; charset=UTF-8"
                .parse()
                .unwrap(),
        )
        .with_body(form)
        .into()
}

#[test]
fn the_counter_counts() {
    let (_, counted) = allocations(|| Box::new(1u64));
    assert_eq!(counted, 1);
    let (_, counted) = allocations(|| 1u64);
    assert_eq!(counted, 0);
}

/// What form_urlencoded allocates to decode the same two pairs.
fn form_urlencoded_allocations() -> usize {
    let (decoded, counted) = allocations(|| {
        form_urlencoded::parse(b"From=whatsapp%3A%2B15551234567")
            .chain(form_urlencoded::parse(
                b"Body=Hello+doc%21+Caf%C3%A9+%26+co+%3D+100%25+%F0%9F%91%8B",
            ))
            .count()
    });
    assert_eq!(decoded, 2);
    counted
}

#[test]
fn parsing_allocates_nothing() {
    let form = TWILIO_WHATSAPP_FORM.as_bytes();
    let (params, counted) = allocations(|| Params::parse(b"", Some(form)));
    assert_eq!(params.from.unwrap().decode(), "whatsapp:+15551234567");
    assert_eq!(counted, 0, "values stay encoded until used");
    assert_eq!(form_urlencoded_allocations(), 7);
}

#[test]
fn the_log_line_of_a_message_allocates_nothing() {
    use std::fmt::Write;
    let params = Params::parse(b"", Some(TWILIO_WHATSAPP_FORM.as_bytes()));
    let message = events::Message {
        params: &params,
        rule: None,
        repeat: false,
    };
    let mut line = String::with_capacity(1024);
    // The first line sizes this thread's decoding buffer.
    write!(line, "{message}").unwrap();
    let (_, counted) = allocations(|| {
        line.clear();
        write!(line, "{message}").unwrap();
    });
    assert_eq!(counted, 0, "{line}");
    assert!(line.ends_with(": Hello doc! Café & co = 100% 👋"), "{line}");
}

#[test]
fn judging_the_framing_allocates_nothing() {
    let headers = [
        ("Host", "abc123.ngrok-free.app"),
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("Content-Length", "719"),
    ];
    let (framing, counted) = allocations(|| framing::judge(headers, false, MAX_BODY_BYTES as u64));
    assert!(framing.refusal.is_none());
    assert_eq!(counted, 0);
}

/// What the loop does with a request whose body tiny_http holds: read the
/// body, ask the app, write the answer. Returns the status.
fn answer(webhook: &Webhook, mut request: Request, out: &mut Out, scratch: &mut Vec<u8>) -> u16 {
    let length = request.body_length().unwrap_or(0);
    if length > 0 {
        body::read_body(
            request.as_reader(),
            Some(length),
            MAX_BODY_BYTES,
            None,
            None::<fn() -> bool>,
            scratch,
        )
        .unwrap();
    } else {
        scratch.clear();
    }
    let answer = webhook.answer(&Incoming::new(&request, scratch));
    let mut writer = request.into_writer();
    out.write(&mut writer, &answer, false, false, Duration::from_secs(1))
        .unwrap();
    answer.status()
}

/// Counts the bytes of the log lines written, so that a test knows the
/// message's line was written.
/// The project's logger, at `info` whatever `RUST_LOG` says, writing each
/// line at once to a counter of bytes; the counter.
fn logger() -> Arc<AtomicUsize> {
    static WRITTEN: std::sync::OnceLock<Arc<AtomicUsize>> = std::sync::OnceLock::new();
    Arc::clone(WRITTEN.get_or_init(|| support::counting_logger(true)))
}

/// The Twilio form with a `MessageSid` (and `SmsSid`) of its own for
/// `round`: a new message each time, not a repeat.
fn fresh_message(round: usize) -> &'static str {
    let sid = format!("SM{round:032x}");
    let form = TWILIO_WHATSAPP_FORM.replace("SM9d3b1b2f6a0c4e5f8a7b6c5d4e3f2a1b", &sid);
    assert_ne!(form, TWILIO_WHATSAPP_FORM);
    Box::leak(form.into_boxed_str())
}

#[test]
fn answering_a_new_message_allocates_nothing_its_log_line_included() {
    let written = logger();
    let webhook = Webhook::new(&Config::default());
    let mut out = Out::default();
    let mut scratch = Vec::with_capacity(MAX_BODY_BYTES + 1);
    // The first answer sizes the output buffer and this thread's buffers
    // for the log line.
    answer(&webhook, post(fresh_message(0)), &mut out, &mut scratch);
    for round in 1..=3 {
        let request = post(fresh_message(round));
        let before = written.load(Ordering::Relaxed);
        let (status, counted) = allocations(|| answer(&webhook, request, &mut out, &mut scratch));
        assert_eq!(status, 200);
        assert!(
            written.load(Ordering::Relaxed) > before,
            "round {round}: no log line was written"
        );
        assert_eq!(counted, 0, "round {round}");
    }
}
