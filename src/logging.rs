//! Writing what senders control into log lines, safely.
//!
//! [`Escaped`] writes a value for a log line, so that what a sender types can
//! never look like a second log line.

use std::fmt;

/// Displays a value with the characters that could forge or disguise a log
/// line escaped the way Rust escapes them in `{:?}` (`\n`, `\u{1b}`, ...):
/// control characters, the Unicode line and paragraph separators, the
/// bidirectional formatting characters, and the backslash itself, so that an
/// escape in the log is never ambiguous. Everything else, including quotes and
/// non-ASCII text, is written as it is.
pub struct Escaped<'a>(pub &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut plain_from = 0;
        for (at, c) in self.0.char_indices().filter(|&(_, c)| needs_escape(c)) {
            f.write_str(&self.0[plain_from..at])?;
            write!(f, "{}", c.escape_debug())?;
            plain_from = at + c.len_utf8();
        }
        f.write_str(&self.0[plain_from..])
    }
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
    fn control_characters_separators_bidi_controls_and_backslashes_are_escaped() {
        assert_eq!(
            Escaped("a\nb\r\u{1b}[2J\u{2028}\u{202e}\\ \"Café\" 👋").to_string(),
            r#"a\nb\r\u{1b}[2J\u{2028}\u{202e}\\ "Café" 👋"#
        );
    }
}
