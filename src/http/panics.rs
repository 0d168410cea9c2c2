//! Panics, told as one log line each.
//!
//! tiny_http unwraps results on its own threads: a client that resets its
//! connection before tiny_http reads its address, or running out of file
//! descriptors while accepting, panics that thread. Rust's default hook
//! prints such a panic as raw `thread '...' panicked at` text, with a
//! backtrace when `RUST_BACKTRACE` is set, which says nothing about what the
//! server does next. [`install`] replaces it with a hook that logs one
//! `error` line naming what failed and what happens now.

use std::panic::{self, PanicHookInfo};
use std::thread;

/// Replaces the panic hook with one that logs through `log`. Call it once
/// logging is set up.
pub fn install() {
    panic::set_hook(Box::new(|info| {
        log::error!("{}", describe(info));
        crate::logging::flush();
    }));
}

/// The one line a panic is logged as.
pub fn describe(info: &PanicHookInfo<'_>) -> String {
    let message = info
        .payload()
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| info.payload().downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)");
    let (file, line) = info
        .location()
        .map_or(("?", 0), |location| (location.file(), location.line()));
    let thread = thread::current();
    explain(thread.name(), file, line, message)
}

/// What a panic at `file`:`line` on thread `thread` means for the server.
pub fn explain(thread: Option<&str>, file: &str, line: u32, message: &str) -> String {
    let message = crate::logging::Escaped(message);
    let place = match file.rsplit_once("/src/") {
        Some((_, inside)) if file.contains("tiny_http") => format!("tiny_http's {inside}:{line}"),
        _ => format!("{file}:{line}"),
    };
    if !file.contains("tiny_http") {
        let thread = thread.unwrap_or("unnamed");
        return format!(
            "BUG: thread {thread} panicked at {place}: {message}; a request in hand gets 500 \
             and the server goes on"
        );
    }
    if file.ends_with("refined_tcp_stream.rs") {
        format!(
            "tiny_http's accept thread could not duplicate a new connection's socket \
             ({place}: {message}), most likely out of file descriptors: that connection is \
             dropped, and the watchdog starts a new accept thread"
        )
    } else if file.ends_with("client.rs") {
        format!(
            "tiny_http failed on a connection whose client had already gone ({place}: \
             {message}): that connection is dropped; the server goes on"
        )
    } else {
        format!(
            "tiny_http failed ({place}: {message}): the thread it ran on ended; the server goes \
             on, and the watchdog starts a new accept thread if that was the one"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REGISTRY: &str = "/root/.cargo/registry/src/index.crates.io-1/tiny_http-0.12.0/src";

    #[test]
    fn tiny_http_panics_say_what_failed_and_what_happens_next() {
        let accept = explain(
            None,
            &format!("{REGISTRY}/util/refined_tcp_stream.rs"),
            18,
            "called `Result::unwrap()` on an `Err` value: Os { code: 24 }",
        );
        assert!(
            accept.starts_with(
                "tiny_http's accept thread could not duplicate a new connection's socket \
                 (tiny_http's util/refined_tcp_stream.rs:18: called"
            ),
            "{accept}"
        );
        assert!(accept.ends_with("the watchdog starts a new accept thread"));
        let client = explain(None, &format!("{REGISTRY}/client.rs"), 153, "NotConnected");
        assert_eq!(
            client,
            "tiny_http failed on a connection whose client had already gone (tiny_http's \
             client.rs:153: NotConnected): that connection is dropped; the server goes on"
        );
    }

    #[test]
    fn other_panics_are_bugs_and_their_messages_are_escaped() {
        assert_eq!(
            explain(Some("body-3"), "src/answer.rs", 7, "oops\nforged"),
            "BUG: thread body-3 panicked at src/answer.rs:7: oops\\nforged; a request in hand \
             gets 500 and the server goes on"
        );
    }
}
