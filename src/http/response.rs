//! Answers as bytes: the edge writes every answer itself, whole.
//!
//! tiny_http's own `respond` formats a `Date` for every answer and writes the
//! status line and each header in small pieces; it also drops a
//! `Connection: close` header, so it could never say that a refused
//! connection ends. The app says *what* to answer ([`Answer`]: a TwiML
//! document, rendered once for a fixed reply, or a short text); [`Out`]
//! joins its status line, the current `Date` (formatted at most once a
//! second), its header fields and its body in one reused buffer, and writes
//! it through the request's own writer in one go. Nothing is allocated once
//! the buffer has grown to the largest answer.

use std::io::{self, Write};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::answer::{Answer, REPLY_LATER_HEADER};

/// The `Content-Type` of TwiML answers.
pub const XML: &str = "text/xml; charset=utf-8";

/// The `Content-Type` of short text answers.
pub const PLAIN: &str = "text/plain; charset=utf-8";

/// Appends the whole of `answer` to `out`: the status line, `date`, its
/// fields, `Connection: close` when `close`, and the body unless
/// `head_only`.
pub fn render(answer: &Answer<'_>, date: &[u8], head_only: bool, close: bool, out: &mut Vec<u8>) {
    let status = answer.status();
    let (content_type, header) = match answer {
        // An answer to come is written when it has come, never before.
        Answer::Twiml(_) | Answer::Later(_) => (XML, None),
        Answer::ReplyLater => (XML, Some(REPLY_LATER_HEADER)),
        Answer::Text { allow, .. } => (PLAIN, allow.map(|allow| ("Allow", allow))),
    };
    let body = answer.body();
    // Writing into a Vec cannot fail.
    let _ = write!(
        out,
        "HTTP/1.1 {status} {}\r\nDate: ",
        reason(status).unwrap_or("")
    );
    out.extend_from_slice(date);
    let _ = write!(
        out,
        "\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some((name, value)) = header {
        let _ = write!(out, "{name}: {value}\r\n");
    }
    if close {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if !head_only {
        out.extend_from_slice(body);
    }
}

/// The reason phrase of each status this server sends.
pub fn reason(status: u16) -> Option<&'static str> {
    Some(match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Payload Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => return None,
    })
}

/// The `Date` header's value, formatted again only when the second changes,
/// into a buffer of its own.
#[derive(Debug)]
pub struct Clock {
    second: u64,
    text: [u8; 29],
}

impl Clock {
    /// A clock showing now.
    pub fn new() -> Clock {
        let mut clock = Clock {
            second: u64::MAX,
            text: [b' '; 29],
        };
        clock.now();
        clock
    }

    /// The current date as an IMF-fixdate (`Thu, 26 Nov 2026 10:28:51 GMT`,
    /// always 29 bytes).
    pub fn now(&mut self) -> &[u8] {
        let now = SystemTime::now();
        let second = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        if second != self.second {
            self.second = second;
            let mut text = &mut self.text[..];
            // An IMF-fixdate is 29 bytes until the year 10000.
            let _ = write!(text, "{}", httpdate::HttpDate::from(now));
        }
        &self.text
    }
}

impl Default for Clock {
    fn default() -> Clock {
        Clock::new()
    }
}

/// Writes answers for one thread: a clock and a buffer reused for every
/// answer.
#[derive(Debug, Default)]
pub struct Out {
    clock: Clock,
    buffer: Vec<u8>,
}

impl Out {
    /// Writes `answer` through `writer` (a tiny_http request's) in one
    /// piece, giving up when the client leaves no room for it for `patience`
    /// in all.
    ///
    /// # Errors
    ///
    /// `WouldBlock` or `TimedOut` when the client does not read in time;
    /// any other error when the connection failed.
    pub fn write(
        &mut self,
        writer: &mut dyn Write,
        answer: &Answer<'_>,
        head_only: bool,
        close: bool,
        patience: Duration,
    ) -> io::Result<()> {
        self.render(answer, head_only, close);
        write_within(writer, &self.buffer, patience)
    }

    /// Renders `answer` with the current `Date` into this writer's buffer,
    /// and returns the bytes.
    pub fn render(&mut self, answer: &Answer<'_>, head_only: bool, close: bool) -> &[u8] {
        self.buffer.clear();
        render(answer, self.clock.now(), head_only, close, &mut self.buffer);
        &self.buffer
    }
}

/// Writes all of `bytes` and flushes, failing with `TimedOut` once
/// `patience` has passed. tiny_http's writer buffers up to 1 KiB and hands
/// larger writes straight to the socket, whose own write timeout bounds each
/// attempt; checking between attempts bounds the whole answer, so a client
/// that reads a little at a time cannot hold the writer for long.
pub fn write_within(
    writer: &mut dyn Write,
    mut bytes: &[u8],
    patience: Duration,
) -> io::Result<()> {
    let deadline = Instant::now() + patience;
    while !bytes.is_empty() {
        match writer.write(bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(written) => bytes = &bytes[written..],
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
        if !bytes.is_empty() && Instant::now() >= deadline {
            return Err(io::ErrorKind::TimedOut.into());
        }
    }
    writer.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(answer: &Answer<'_>, head_only: bool, close: bool) -> String {
        let mut out = Vec::new();
        render(
            answer,
            b"Thu, 26 Nov 2026 10:28:51 GMT",
            head_only,
            close,
            &mut out,
        );
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn an_answer_is_its_status_line_date_fields_and_body() {
        let answer = Answer::Twiml(b"<Response />"[..].into());
        assert_eq!(
            rendered(&answer, false, false),
            "HTTP/1.1 200 OK\r\nDate: Thu, 26 Nov 2026 10:28:51 GMT\r\n\
             Content-Type: text/xml; charset=utf-8\r\nContent-Length: 12\r\n\r\n<Response />"
        );
    }

    #[test]
    fn head_keeps_the_length_but_not_the_body_and_close_is_announced() {
        let answer = Answer::Text {
            status: 405,
            text: "method not allowed\n",
            allow: Some("GET"),
        };
        assert_eq!(
            rendered(&answer, true, true),
            "HTTP/1.1 405 Method Not Allowed\r\nDate: Thu, 26 Nov 2026 10:28:51 GMT\r\n\
             Content-Type: text/plain; charset=utf-8\r\nContent-Length: 19\r\nAllow: GET\r\n\
             Connection: close\r\n\r\n"
        );
    }

    #[test]
    fn the_clock_formats_an_imf_fixdate() {
        let mut clock = Clock::new();
        let date = String::from_utf8(clock.now().to_vec()).unwrap();
        assert_eq!(date.len(), 29, "{date}");
        assert!(date.ends_with(" GMT"), "{date}");
        assert!(httpdate::parse_http_date(&date).is_ok());
    }

    #[test]
    fn a_writer_that_makes_no_progress_in_time_is_given_up() {
        struct Trickle;
        impl Write for Trickle {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                std::thread::sleep(Duration::from_millis(5));
                Ok(1)
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let error = write_within(&mut Trickle, &[0; 1000], Duration::from_millis(20)).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert!(write_within(&mut Vec::new(), &[0; 1000], Duration::ZERO).is_ok());
    }
}
