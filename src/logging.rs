//! Logging: the format of a log line, where lines go, and writing what
//! senders control into them safely.
//!
//! [`init`] sets `env_logger` up with `RUST_LOG` filtering (default `info`)
//! and this module's own line format: `[time LEVEL target] message`, with
//! the time formatted at most once a second. Lines go to standard error in
//! batches: every line at `warn` or above, every line when standard error is
//! a terminal, and otherwise whatever has gathered at least every
//! [`FLUSH_EVERY`] (the watchdog's tick, [`flush`], makes sure of it), so
//! that a busy server spends one `write` on many lines, not one each.
//!
//! [`Escaped`] writes a value for a log line, so that what a sender types can
//! never look like a second log line.

use std::fmt;
use std::io::{self, IsTerminal, Write};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use log::{Level, LevelFilter, Record};

/// The longest a line waits in the batch before it is written.
pub const FLUSH_EVERY: Duration = Duration::from_millis(250);

/// A batch grown past this many bytes is written at once.
const BATCH_BYTES: usize = 32 * 1024;

/// The batch behind standard error, once [`init`] has run.
static SINK: OnceLock<Arc<Mutex<Batch>>> = OnceLock::new();

/// Sets up logging to standard error: the level from `RUST_LOG` (default
/// `info`), tiny_http's own lines off (the edge reports what they would, and
/// more precisely), this module's line format, and batched writes. Call it
/// once, first thing.
pub fn init() {
    let batch = SINK.get_or_init(|| {
        Arc::new(Mutex::new(Batch {
            buffer: Vec::with_capacity(BATCH_BYTES),
            written: Instant::now(),
            immediate: io::stderr().is_terminal(),
        }))
    });
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .filter_module("tiny_http", LevelFilter::Off)
        .format(|out, record| write_line(out, record))
        .target(env_logger::Target::Pipe(Box::new(Sink(Arc::clone(batch)))))
        .init();
}

/// Writes every line gathered so far. The watchdog calls it on every tick,
/// and the program before it exits.
pub fn flush() {
    if let Some(batch) = SINK.get() {
        lock(batch).write_out();
    }
}

thread_local! {
    /// Whether the line being logged on this thread must not wait: set by
    /// the format, read by the [`Sink`] in the same call.
    static URGENT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Writes one text line: `[2026-11-26T10:28:51Z INFO  target] message`.
fn write_line(out: &mut dyn Write, record: &Record<'_>) -> io::Result<()> {
    URGENT.set(record.level() <= Level::Warn);
    thread_local! {
        static CLOCK: std::cell::RefCell<Rfc3339> = const {
            std::cell::RefCell::new(Rfc3339 { second: u64::MAX, text: [b' '; 20] })
        };
    }
    let level: &[u8] = match record.level() {
        Level::Error => b" ERROR ",
        Level::Warn => b" WARN  ",
        Level::Info => b" INFO  ",
        Level::Debug => b" DEBUG ",
        Level::Trace => b" TRACE ",
    };
    CLOCK.with_borrow_mut(|clock| {
        out.write_all(b"[")?;
        out.write_all(clock.now())?;
        out.write_all(level)?;
        out.write_all(record.target().as_bytes())?;
        out.write_all(b"] ")?;
        match record.args().as_str() {
            Some(text) => out.write_all(text.as_bytes())?,
            None => out.write_fmt(*record.args())?,
        }
        out.write_all(b"\n")
    })
}

/// The time as RFC 3339 in UTC to the second (`2026-11-26T10:28:51Z`),
/// formatted again only when the second changes.
struct Rfc3339 {
    second: u64,
    text: [u8; 20],
}

impl Rfc3339 {
    fn now(&mut self) -> &[u8] {
        let second = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        if second != self.second {
            self.second = second;
            let mut text = &mut self.text[..];
            // Twenty bytes until the year 10000.
            let _ = write!(text, "{}", rfc3339(second));
        }
        &self.text
    }
}

/// `seconds` since the Unix epoch as RFC 3339 in UTC, to the second.
pub fn rfc3339(seconds: u64) -> impl fmt::Display {
    i64::try_from(seconds)
        .ok()
        .and_then(|seconds| jiff::Timestamp::from_second(seconds).ok())
        .unwrap_or(jiff::Timestamp::MAX)
}

/// Lines gathered for standard error.
struct Batch {
    buffer: Vec<u8>,
    written: Instant,
    /// Write every line at once (standard error is a terminal).
    immediate: bool,
}

impl Batch {
    fn write_out(&mut self) {
        if !self.buffer.is_empty() {
            // Nowhere to report a failure to write the log.
            let _ = io::stderr().lock().write_all(&self.buffer);
            self.buffer.clear();
        }
        self.written = Instant::now();
    }
}

/// The `env_logger` target: appends each line to the batch and writes the
/// batch out when a line must not wait.
struct Sink(Arc<Mutex<Batch>>);

impl Write for Sink {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        let mut batch = lock(&self.0);
        batch.buffer.extend_from_slice(line);
        if URGENT.get()
            || batch.immediate
            || batch.buffer.len() >= BATCH_BYTES
            || batch.written.elapsed() >= FLUSH_EVERY
        {
            batch.write_out();
        }
        Ok(line.len())
    }

    /// env_logger flushes after every line; [`Sink::write`] has already
    /// decided whether this one waits.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn lock(batch: &Mutex<Batch>) -> MutexGuard<'_, Batch> {
    // A panic while holding the lock leaves lines at worst half-written.
    batch.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Displays a value with the characters that could forge or disguise a log
/// line escaped the way Rust escapes them in `{:?}` (`\n`, `\u{1b}`, ...):
/// control characters, the Unicode line and paragraph separators, the
/// bidirectional formatting characters, and the backslash itself, so that an
/// escape in the log is never ambiguous. Everything else, including quotes and
/// non-ASCII text, is written as it is.
pub struct Escaped<'a>(pub &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Most values have no byte that can start a character to escape:
        // those are written whole without decoding a character.
        if !self.0.bytes().any(may_start_escape) {
            return f.write_str(self.0);
        }
        let mut plain_from = 0;
        for (at, c) in self.0.char_indices().filter(|&(_, c)| needs_escape(c)) {
            f.write_str(&self.0[plain_from..at])?;
            write!(f, "{}", c.escape_debug())?;
            plain_from = at + c.len_utf8();
        }
        f.write_str(&self.0[plain_from..])
    }
}

/// Whether `byte` may be the first byte of a character [`needs_escape`]
/// matches: an ASCII control or backslash, or the lead byte of U+0080 to
/// U+009F (`C2`), U+061C (`D8`) or U+2028 to U+2069 (`E2`).
fn may_start_escape(byte: u8) -> bool {
    byte < 0x20 || matches!(byte, 0x7f | b'\\' | 0xc2 | 0xd8 | 0xe2)
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || c == '\\'
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' // line and paragraph separators
                | '\u{061C}' | '\u{200E}' | '\u{200F}' // bidirectional marks
                | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' // bidirectional embeddings and isolates
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_in_utc_to_the_second() {
        assert_eq!(rfc3339(0).to_string(), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_689_131).to_string(), "2026-11-26T10:32:11Z");
        let mut clock = Rfc3339 {
            second: u64::MAX,
            text: [b' '; 20],
        };
        let now = String::from_utf8(clock.now().to_vec()).unwrap();
        assert_eq!(now.len(), 20);
        assert!(now.ends_with('Z'), "{now}");
    }

    #[test]
    fn a_line_has_the_time_the_level_the_target_and_the_message() {
        let mut out = Vec::new();
        let record = Record::builder()
            .level(Level::Info)
            .target("whatsapp_webhook::answer")
            .args(format_args!("incoming message from x: y"))
            .build();
        write_line(&mut out, &record).unwrap();
        let line = String::from_utf8(out).unwrap();
        assert_eq!(
            line.len(),
            22 + "INFO  whatsapp_webhook::answer] incoming message from x: y\n".len()
        );
        assert!(line.starts_with('['));
        assert_eq!(
            &line[21..],
            " INFO  whatsapp_webhook::answer] incoming message from x: y\n"
        );
    }

    #[test]
    fn every_character_to_escape_starts_with_a_byte_that_may_start_one() {
        for c in (0..=0x10FFFF)
            .filter_map(char::from_u32)
            .filter(|&c| needs_escape(c))
        {
            let mut utf8 = [0; 4];
            let first = c.encode_utf8(&mut utf8).as_bytes()[0];
            assert!(may_start_escape(first), "{c:?}");
        }
    }

    #[test]
    fn control_characters_separators_bidi_controls_and_backslashes_are_escaped() {
        assert_eq!(
            Escaped("a\nb\r\u{1b}[2J\u{2028}\u{202e}\\ \"Café\" 👋").to_string(),
            r#"a\nb\r\u{1b}[2J\u{2028}\u{202e}\\ "Café" 👋"#
        );
    }
}
