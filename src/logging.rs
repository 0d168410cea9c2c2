//! Logging: the format of a log line, where lines go, and writing what
//! senders control into them safely.
//!
//! [`init`] sets `env_logger` up with `RUST_LOG` filtering (default `info`)
//! and one of two [`Format`]s: text for people,
//! `[2026-11-26T10:28:51Z INFO  target] message`, or JSON for log
//! shippers, one object per line with `time`, `level`, `target` and
//! `message`, and the fields of an [`Event`] ([`emit`]) besides. Values are
//! written by serde_json, never escaped by hand. Times are formatted at most
//! once a second.
//!
//! Lines go to standard error in batches: every line at `warn` or above,
//! every line when standard error is a terminal, and otherwise whatever has
//! gathered at least every [`FLUSH_EVERY`] (the watchdog's tick, [`flush`],
//! makes sure of it), so that a busy server spends one `write` on many
//! lines, not one each.
//!
//! [`Escaped`] writes a value for a text line, so that what a sender types
//! can never look like a second log line.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io::{self, IsTerminal, Write};
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use log::{Level, LevelFilter, Metadata};
use serde::ser::{Serialize, SerializeMap, Serializer};

/// The longest a line waits in the batch before it is written.
pub const FLUSH_EVERY: Duration = Duration::from_millis(250);

/// A batch grown past this many bytes is written at once.
const BATCH_BYTES: usize = 32 * 1024;

/// The batch behind standard error, and the format, once [`init`] has run.
static SINK: OnceLock<(Arc<Mutex<Batch>>, Format)> = OnceLock::new();

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Format {
    /// `[time LEVEL target] message`, for people.
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

impl FromStr for Format {
    type Err = ();

    /// `text` or `json`, in any case.
    fn from_str(text: &str) -> Result<Format, ()> {
        if text.eq_ignore_ascii_case("text") {
            Ok(Format::Text)
        } else if text.eq_ignore_ascii_case("json") {
            Ok(Format::Json)
        } else {
            Err(())
        }
    }
}

/// Sets up logging to standard error in `format`: the level from `RUST_LOG`
/// (default `info`; a `RUST_LOG` that would hide every line of this server
/// is said at once, and `info` used instead), tiny_http's own lines off (the
/// edge reports what they would, and more precisely), and batched writes.
/// Call it once, first thing.
pub fn init(format: Format) {
    let immediate = io::stderr().is_terminal();
    init_to(
        format,
        std::env::var("RUST_LOG").ok().as_deref(),
        Box::new(io::stderr()),
        immediate,
    );
}

/// Sets up logging as [`init`] does, with `rust_log` as the value of
/// `RUST_LOG`, to `out` instead of standard error (a file, a pipe: for
/// benchmarks and tests of the whole path), every line written at once when
/// `immediate`. Only the first call in a process counts.
pub fn init_to(
    format: Format,
    rust_log: Option<&str>,
    out: Box<dyn Write + Send>,
    immediate: bool,
) {
    let (filter, unused) = filter(rust_log);
    let (batch, _) = SINK.get_or_init(|| {
        let batch = Batch {
            buffer: Vec::with_capacity(BATCH_BYTES),
            written: Instant::now(),
            immediate,
            out,
        };
        (Arc::new(Mutex::new(batch)), format)
    });
    let installed = env_logger::Builder::new()
        .parse_filters(&filter)
        .filter_module("tiny_http", LevelFilter::Off)
        .format(move |out, record| {
            URGENT.set(record.level() <= Level::Warn);
            let line = Line::new(record.level(), record.target(), record.args());
            match format {
                Format::Text => line.write_text(out),
                Format::Json => line.write_json(out, None),
            }
        })
        .target(env_logger::Target::Pipe(Box::new(Sink(Arc::clone(batch)))))
        .try_init();
    if installed.is_err() {
        return;
    }
    if let Some(rust_log) = unused {
        log::warn!(
            "RUST_LOG={} names no level (error, warn, info, debug, trace) and no module of this \
             server (whatsapp_webhook): it would hide every line; logging at info",
            Escaped(&rust_log)
        );
    }
}

/// The filter env_logger is given for `rust_log` (the value of `RUST_LOG`),
/// and, when that value would hide every line of this server although it
/// does not say `off`, the value itself, to be said (`info` is used then).
fn filter(rust_log: Option<&str>) -> (String, Option<String>) {
    let Some(rust_log) = rust_log.filter(|value| !value.trim().is_empty()) else {
        return ("info".to_owned(), None);
    };
    let levels = ["error", "warn", "info", "debug", "trace", "off"];
    let names_ours = rust_log.split(',').map(str::trim).any(|directive| {
        let (module, level) = match directive.split_once('=') {
            Some((module, level)) => (Some(module.trim()), Some(level.trim())),
            None if levels.contains(&directive.to_ascii_lowercase().as_str()) => {
                (None, Some(directive))
            }
            None => (Some(directive), None),
        };
        let ours = module.is_none_or(|module| module.starts_with("whatsapp_webhook"));
        let level_valid =
            level.is_none_or(|level| levels.contains(&level.to_ascii_lowercase().as_str()));
        ours && level_valid
    });
    if names_ours {
        (rust_log.to_owned(), None)
    } else {
        ("info".to_owned(), Some(rust_log.to_owned()))
    }
}

/// Writes every line gathered so far. The watchdog calls it on every tick,
/// and the program before it exits.
pub fn flush() {
    if let Some((batch, _)) = SINK.get() {
        lock(batch).write_out();
    }
}

/// Something worth a log line of its own, with fields a log shipper can
/// query: a message received, a delivery status.
pub trait Event: fmt::Display {
    /// Writes the event's fields, each with [`Fields::field`].
    ///
    /// # Errors
    ///
    /// Fails when a field cannot be serialized.
    fn fields(&self, fields: &mut Fields<'_, '_>) -> serde_json::Result<()>;
}

/// The fields of a JSON line being written.
pub struct Fields<'s, 'w>(
    &'s mut serde_json::ser::Compound<'w, &'w mut Vec<u8>, serde_json::ser::CompactFormatter>,
);

impl Fields<'_, '_> {
    /// Adds a field.
    ///
    /// # Errors
    ///
    /// Fails when the value cannot be serialized.
    pub fn field<T: Serialize + ?Sized>(
        &mut self,
        name: &str,
        value: &T,
    ) -> serde_json::Result<()> {
        self.0.serialize_entry(name, value)
    }
}

/// Logs `event` at `level` for `target` (a module path), if that level is
/// on: as its text in text format, as its text and its fields in JSON. The
/// line goes straight to the batch, in the format env_logger's lines have.
pub fn emit(level: Level, target: &'static str, event: &dyn Event) {
    let metadata = Metadata::builder().level(level).target(target).build();
    if level > log::max_level() || !log::logger().enabled(&metadata) {
        return;
    }
    let Some((batch, format)) = SINK.get() else {
        return;
    };
    thread_local! {
        static LINE: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    }
    LINE.with_borrow_mut(|line| {
        line.clear();
        let written = match format {
            Format::Text => {
                let message = format_args!("{event}");
                Line::new(level, target, &message).write_text(line).is_ok()
            }
            Format::Json => json_line(line, level, target, event).is_ok(),
        };
        if written {
            lock(batch).add(line, level <= Level::Warn);
        }
    });
}

/// Appends `event` as the JSON line [`emit`] writes for it in JSON format:
/// `time`, `level`, `target`, `message` (its text), then its fields, and a
/// line feed.
///
/// # Errors
///
/// Fails when a field cannot be serialized.
pub fn json_line(
    out: &mut Vec<u8>,
    level: Level,
    target: &str,
    event: &dyn Event,
) -> serde_json::Result<()> {
    let message = format_args!("{event}");
    Line::new(level, target, &message).json_into(out, Some(event))?;
    out.push(b'\n');
    Ok(())
}

/// One line: level, target and message.
struct Line<'a> {
    level: Level,
    target: &'a str,
    message: &'a fmt::Arguments<'a>,
}

impl<'a> Line<'a> {
    fn new(level: Level, target: &'a str, message: &'a fmt::Arguments<'a>) -> Line<'a> {
        Line {
            level,
            target,
            message,
        }
    }

    /// `[2026-11-26T10:28:51Z INFO  target] message`.
    fn write_text(&self, out: &mut dyn Write) -> io::Result<()> {
        let level: &[u8] = match self.level {
            Level::Error => b" ERROR ",
            Level::Warn => b" WARN  ",
            Level::Info => b" INFO  ",
            Level::Debug => b" DEBUG ",
            Level::Trace => b" TRACE ",
        };
        out.write_all(b"[")?;
        with_time(|time| out.write_all(time))?;
        out.write_all(level)?;
        out.write_all(self.target.as_bytes())?;
        out.write_all(b"] ")?;
        match self.message.as_str() {
            Some(text) => out.write_all(text.as_bytes())?,
            None => out.write_fmt(*self.message)?,
        }
        out.write_all(b"\n")
    }

    /// `{"time":...,"level":...,"target":...,"message":...,<fields>}`.
    fn write_json(&self, out: &mut dyn Write, event: Option<&dyn Event>) -> io::Result<()> {
        let mut line = Vec::with_capacity(256);
        self.json_into(&mut line, event).map_err(io::Error::other)?;
        line.push(b'\n');
        out.write_all(&line)
    }

    fn json_into(&self, line: &mut Vec<u8>, event: Option<&dyn Event>) -> serde_json::Result<()> {
        let mut serializer = serde_json::Serializer::new(line);
        let mut map = (&mut serializer).serialize_map(None)?;
        with_time(|time| map.serialize_entry("time", &String::from_utf8_lossy(time)))?;
        map.serialize_entry("level", self.level.as_str())?;
        map.serialize_entry("target", self.target)?;
        map.serialize_entry("message", &Collected(self.message))?;
        if let Some(event) = event {
            event.fields(&mut Fields(&mut map))?;
        }
        map.end()
    }
}

/// Serializes a `Display` value as a string, without a copy of its own.
pub struct Collected<'a, T: fmt::Display + ?Sized>(pub &'a T);

impl<T: fmt::Display + ?Sized> Serialize for Collected<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self.0)
    }
}

thread_local! {
    /// Whether the line being logged on this thread must not wait: set by
    /// the format, read by the [`Sink`] in the same call.
    static URGENT: Cell<bool> = const { Cell::new(false) };
}

/// Calls `use_it` with the current time as RFC 3339 to the second,
/// formatted again on this thread only when the second changes.
fn with_time<T>(use_it: impl FnOnce(&[u8]) -> T) -> T {
    thread_local! {
        static CLOCK: RefCell<Rfc3339> = const {
            RefCell::new(Rfc3339 { second: u64::MAX, text: [b' '; 20] })
        };
    }
    CLOCK.with_borrow_mut(|clock| use_it(clock.now()))
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

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

/// Lines gathered for standard error.
struct Batch {
    buffer: Vec<u8>,
    written: Instant,
    /// Write every line at once (standard error is a terminal).
    immediate: bool,
    /// Where lines go: standard error, but for benchmarks and tests.
    out: Box<dyn Write + Send>,
}

impl Batch {
    /// Adds a whole line, and writes the batch out if the line must not
    /// wait, or the batch has waited or grown enough.
    fn add(&mut self, line: &[u8], urgent: bool) {
        self.buffer.extend_from_slice(line);
        if urgent
            || self.immediate
            || self.buffer.len() >= BATCH_BYTES
            || self.written.elapsed() >= FLUSH_EVERY
        {
            self.write_out();
        }
    }

    fn write_out(&mut self) {
        if !self.buffer.is_empty() {
            // Nowhere to report a failure to write the log.
            let _ = self.out.write_all(&self.buffer);
            self.buffer.clear();
        }
        self.written = Instant::now();
    }
}

/// The `env_logger` target: adds each line to the batch.
struct Sink(Arc<Mutex<Batch>>);

impl Write for Sink {
    /// env_logger writes one whole line per call.
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        lock(&self.0).add(line, URGENT.get());
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
        // those are written whole without decoding a character. The test
        // looks at every byte, without stopping early, so that it runs on
        // many bytes at once.
        if !self
            .0
            .bytes()
            .fold(false, |found, byte| found | may_start_escape(byte))
        {
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
    (byte < 0x20)
        | (byte == 0x7f)
        | (byte == b'\\')
        | (byte == 0xc2)
        | (byte == 0xd8)
        | (byte == 0xe2)
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
        let now = with_time(|time| String::from_utf8(time.to_vec()).unwrap());
        assert_eq!(now.len(), 20);
        assert!(now.ends_with('Z'), "{now}");
    }

    #[test]
    fn a_text_line_has_the_time_the_level_the_target_and_the_message() {
        let mut out = Vec::new();
        let message = format_args!("incoming message from {}: y", "x");
        Line::new(Level::Info, "whatsapp_webhook::answer", &message)
            .write_text(&mut out)
            .unwrap();
        let line = String::from_utf8(out).unwrap();
        assert!(line.starts_with('['));
        assert_eq!(
            &line[21..],
            " INFO  whatsapp_webhook::answer] incoming message from x: y\n"
        );
    }

    struct Sample;

    impl fmt::Display for Sample {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a \"quoted\"\nline")
        }
    }

    impl Event for Sample {
        fn fields(&self, fields: &mut Fields<'_, '_>) -> serde_json::Result<()> {
            fields.field("sid", "SM1")?;
            fields.field("repeat", &false)
        }
    }

    #[test]
    fn a_json_line_is_one_object_whose_values_serde_json_wrote() {
        let mut out = Vec::new();
        let message = format_args!("{Sample}");
        Line::new(Level::Warn, "t", &message)
            .write_json(&mut out, Some(&Sample))
            .unwrap();
        assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1);
        assert!(out.ends_with(b"\n"));
        let value: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(value["level"], "WARN");
        assert_eq!(value["target"], "t");
        assert_eq!(value["message"], "a \"quoted\"\nline");
        assert_eq!(value["sid"], "SM1");
        assert_eq!(value["repeat"], false);
        assert_eq!(value["time"].as_str().unwrap().len(), 20);
    }

    #[test]
    fn a_rust_log_that_would_hide_every_line_is_said_and_info_used() {
        for kept in [
            "debug",
            "WARN",
            "off",
            "whatsapp_webhook=debug",
            "info,tiny_http=trace",
            "whatsapp_webhook::http=trace,warn",
        ] {
            assert_eq!(filter(Some(kept)), (kept.to_owned(), None), "{kept}");
        }
        assert_eq!(filter(None), ("info".to_owned(), None));
        assert_eq!(filter(Some(" ")), ("info".to_owned(), None));
        for hiding in ["verbose", "tiny_http=debug", "whatsapp_webhook=loud", "1"] {
            assert_eq!(
                filter(Some(hiding)),
                ("info".to_owned(), Some(hiding.to_owned())),
                "{hiding}"
            );
        }
    }

    #[test]
    fn formats_are_text_or_json_in_any_case() {
        assert_eq!("text".parse(), Ok(Format::Text));
        assert_eq!("JSON".parse(), Ok(Format::Json));
        assert_eq!("xml".parse::<Format>(), Err(()));
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
