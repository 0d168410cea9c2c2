//! TwiML: the XML document that tells Twilio how to answer a message.
//!
//! All XML in this crate is written here, with quick-xml. A [`Reply`] is checked
//! once, when the configuration is read, and rendered once, when the server
//! starts; requests only copy the finished bytes.
//!
//! The bytes match what Twilio's official helper libraries produce for
//! `MessagingResponse().message(text)`: an XML declaration, no whitespace
//! between elements, and text escaped for `&`, `<` and `>` only (quick-xml's
//! default would also turn `'` into `&apos;`). One deliberate difference: a
//! carriage return is written as `&#13;`, so that it survives XML line-ending
//! normalisation instead of being turned into a line feed.

use std::borrow::Cow;
use std::fmt;

use quick_xml::Writer;
use quick_xml::escape::partial_escape;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};

/// Twilio's limit on the length of one message, in characters.
pub const MAX_MESSAGE_CHARS: usize = 1600;

/// Twilio's limit on the number of media in one message.
pub const MAX_MEDIA: usize = 10;

/// A reply, checked against Twilio's rules: a text and up to [`MAX_MEDIA`]
/// media URLs.
///
/// A reply with no text and no media means "no message": Twilio receives the
/// message and sends nothing back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    text: String,
    removed: usize,
    media: Vec<String>,
}

impl Default for Reply {
    /// No message: Twilio receives the message and sends nothing back.
    fn default() -> Reply {
        Reply {
            text: String::new(),
            removed: 0,
            media: Vec::new(),
        }
    }
}

impl Reply {
    /// Checks `text` and keeps what Twilio can send.
    ///
    /// Characters that XML 1.0 forbids (most C0 control characters, U+FFFE and
    /// U+FFFF) are removed: Twilio rejects a document that holds them with
    /// error 12100. [`Reply::removed`] counts them, for a warning. A text
    /// of only whitespace is no text: Twilio has nothing to send.
    ///
    /// # Errors
    ///
    /// Fails when the text, once those characters are removed, is longer than
    /// [`MAX_MESSAGE_CHARS`].
    pub fn new(text: &str) -> Result<Reply, TwimlError> {
        let kept = strip_forbidden(text);
        let chars = kept.chars().count();
        if chars > MAX_MESSAGE_CHARS {
            return Err(TwimlError::TooLong { chars });
        }
        let removed = text.chars().count() - chars;
        // A blank message is no message: Twilio has nothing to send.
        let text = if kept.trim().is_empty() {
            String::new()
        } else {
            kept.into_owned()
        };
        Ok(Reply {
            removed,
            text,
            media: Vec::new(),
        })
    }

    /// Adds media to the reply: each URL becomes a `<Media>` element after
    /// the text, as `message.media(url)` does in the helper libraries.
    ///
    /// # Errors
    ///
    /// Fails when there would be more than [`MAX_MEDIA`] media, or a URL is
    /// not an absolute `http` or `https` URL (with a host, and no spaces or
    /// control characters).
    pub fn with_media(mut self, urls: &[String]) -> Result<Reply, TwimlError> {
        let count = self.media.len() + urls.len();
        if count > MAX_MEDIA {
            return Err(TwimlError::TooManyMedia { count });
        }
        if let Some(bad) = urls.iter().find(|url| !is_media_url(url)) {
            return Err(TwimlError::MediaUrl { url: bad.clone() });
        }
        self.media.extend_from_slice(urls);
        Ok(self)
    }

    /// The media URLs, in order.
    pub fn media(&self) -> &[String] {
        &self.media
    }

    /// Whether the reply sends no message at all.
    pub fn is_silent(&self) -> bool {
        self.text.is_empty() && self.media.is_empty()
    }

    /// How many characters [`Reply::new`] removed because XML forbids them.
    pub fn removed(&self) -> usize {
        self.removed
    }

    /// The text that will be sent, without the characters XML forbids.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Renders the complete TwiML document for this reply.
    pub fn render(&self) -> Vec<u8> {
        render_all(std::slice::from_ref(self))
    }
}

/// Renders one TwiML document sending `messages` in order, one `<Message>`
/// each; messages with no text and no media are left out, and a document
/// with none left is `<Response />`, which sends nothing.
pub fn render_all(messages: &[Reply]) -> Vec<u8> {
    let length: usize = messages.iter().map(|message| message.text.len() + 32).sum();
    let mut writer = Writer::new(Vec::with_capacity(length + 64));
    // `<Response />`, with the space, is what the helper libraries write.
    writer.config_mut().add_space_before_slash_in_empty_elements = true;
    write(
        &mut writer,
        Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)),
    );
    if messages.iter().all(Reply::is_silent) {
        write(&mut writer, Event::Empty(BytesStart::new("Response")));
        return writer.into_inner();
    }
    write(&mut writer, Event::Start(BytesStart::new("Response")));
    for message in messages.iter().filter(|message| !message.is_silent()) {
        write(&mut writer, Event::Start(BytesStart::new("Message")));
        text(&mut writer, &message.text);
        for url in &message.media {
            write(&mut writer, Event::Start(BytesStart::new("Media")));
            text(&mut writer, url);
            write(&mut writer, Event::End(BytesEnd::new("Media")));
        }
        write(&mut writer, Event::End(BytesEnd::new("Message")));
    }
    write(&mut writer, Event::End(BytesEnd::new("Response")));
    writer.into_inner()
}

/// Writes character data with the helper libraries' escaping.
fn text(writer: &mut Writer<Vec<u8>>, text: &str) {
    if !text.is_empty() {
        write(
            writer,
            Event::Text(BytesText::from_escaped(partial_escape(text))),
        );
    }
}

/// An absolute http or https URL with a host, as Twilio fetches media from.
pub fn is_media_url(url: &str) -> bool {
    let Some((scheme, rest)) = url.split_once("://") else {
        return false;
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    (scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https"))
        && !host.is_empty()
        && !url.contains(|c: char| c.is_whitespace() || c.is_control() || !is_xml_char(c))
}

fn write(writer: &mut Writer<Vec<u8>>, event: Event<'_>) {
    writer
        .write_event(event)
        .expect("BUG: writing XML into a Vec cannot fail");
}

/// Returns `text` without the characters XML 1.0 forbids, borrowing when
/// there are none.
pub fn strip_forbidden(text: &str) -> Cow<'_, str> {
    if text.chars().all(is_xml_char) {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(text.chars().filter(|&c| is_xml_char(c)).collect())
    }
}

/// XML 1.0's `Char` production; Rust's `char` already excludes surrogates.
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | ' '..='\u{FFFD}' | '\u{10000}'..)
}

/// Why a reply cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TwimlError {
    /// The text is longer than [`MAX_MESSAGE_CHARS`].
    TooLong {
        /// The length of the text, in characters.
        chars: usize,
    },
    /// More media than [`MAX_MEDIA`].
    TooManyMedia {
        /// How many media were given.
        count: usize,
    },
    /// A media URL Twilio cannot fetch.
    MediaUrl {
        /// The URL as given.
        url: String,
    },
    /// Media added to a TwiML document of a handler's own, which is passed
    /// on as it is.
    OwnDocument,
}

impl fmt::Display for TwimlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TwimlError::TooLong { chars } => write!(
                f,
                "the text is {chars} characters long; Twilio sends at most {MAX_MESSAGE_CHARS}"
            ),
            TwimlError::TooManyMedia { count } => write!(
                f,
                "{count} media given; Twilio sends at most {MAX_MEDIA} with one message"
            ),
            TwimlError::MediaUrl { url } => write!(
                f,
                "{url:?} is not an http or https URL; Twilio fetches media from absolute http(s) URLs"
            ),
            TwimlError::OwnDocument => f.write_str(
                "a TwiML document of your own is passed on as it is: put the <Media> in it",
            ),
        }
    }
}

impl std::error::Error for TwimlError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(text: &str) -> String {
        String::from_utf8(Reply::new(text).unwrap().render()).unwrap()
    }

    const DECL: &str = r#"<?xml version="1.0" encoding="UTF-8"?>"#;

    #[test]
    fn default_reply_matches_the_helper_libraries_byte_for_byte() {
        assert_eq!(
            rendered("What's app, doc?"),
            r#"<?xml version="1.0" encoding="UTF-8"?><Response><Message>What's app, doc?</Message></Response>"#
        );
    }

    #[test]
    fn only_ampersand_and_angle_brackets_are_escaped() {
        assert_eq!(
            rendered(r#"Tom & "Jerry" <3 'cheese' > all"#),
            format!(
                "{DECL}<Response><Message>Tom &amp; \"Jerry\" &lt;3 'cheese' &gt; all</Message></Response>"
            )
        );
    }

    #[test]
    fn entity_lookalikes_are_escaped_not_passed_through() {
        assert_eq!(
            rendered("&amp; &#65; &lt;"),
            format!("{DECL}<Response><Message>&amp;amp; &amp;#65; &amp;lt;</Message></Response>")
        );
    }

    #[test]
    fn non_ascii_and_emoji_are_written_as_utf8() {
        assert_eq!(
            rendered("Café ☕ 👋 日本語"),
            format!("{DECL}<Response><Message>Café ☕ 👋 日本語</Message></Response>")
        );
    }

    #[test]
    fn newlines_and_tabs_are_kept_and_carriage_returns_survive_as_a_reference() {
        assert_eq!(
            rendered("a\nb\tc\r\nd"),
            format!("{DECL}<Response><Message>a\nb\tc&#13;\nd</Message></Response>")
        );
    }

    #[test]
    fn characters_xml_forbids_are_removed() {
        assert_eq!(
            rendered("a\u{0}b\u{1}c\u{8}d\u{B}e\u{C}f\u{1F}g\u{FFFE}h\u{FFFF}i"),
            format!("{DECL}<Response><Message>abcdefghi</Message></Response>")
        );
        assert_eq!(Reply::new("a\u{0}b\u{1F}\u{FFFF}").unwrap().removed(), 3);
        assert_eq!(Reply::new("What's app, doc?").unwrap().removed(), 0);
    }

    #[test]
    fn characters_xml_allows_at_the_edges_of_its_ranges_are_kept() {
        let text = "\u{7F}\u{80}\u{9F}\u{D7FF}\u{E000}\u{FFFD}\u{10000}\u{10FFFF}";
        assert_eq!(Reply::new(text).unwrap().removed(), 0);
        assert_eq!(
            rendered(text),
            format!("{DECL}<Response><Message>{text}</Message></Response>")
        );
    }

    #[test]
    fn empty_reply_is_a_response_without_a_message() {
        assert_eq!(rendered(""), format!("{DECL}<Response />"));
    }

    #[test]
    fn reply_of_only_forbidden_characters_is_no_message_rather_than_an_empty_one() {
        assert_eq!(rendered("\u{0}\u{1}"), format!("{DECL}<Response />"));
    }

    #[test]
    fn reply_of_only_whitespace_is_no_message_rather_than_a_blank_one() {
        for blank in [" ", "\r", "\n\t ", "\u{0} \u{1}"] {
            assert_eq!(rendered(blank), format!("{DECL}<Response />"), "{blank:?}");
            assert!(Reply::new(blank).unwrap().is_silent());
        }
        assert_eq!(Reply::new("\u{0} \u{1}").unwrap().removed(), 2);
        assert_eq!(Reply::new(" hi ").unwrap().text(), " hi ");
    }

    #[test]
    fn reply_of_1600_characters_is_accepted_and_1601_refused() {
        let limit = "é".repeat(MAX_MESSAGE_CHARS);
        assert_eq!(Reply::new(&limit).unwrap().text().chars().count(), 1600);
        let over = "é".repeat(MAX_MESSAGE_CHARS + 1);
        assert_eq!(Reply::new(&over), Err(TwimlError::TooLong { chars: 1601 }));
        assert_eq!(
            TwimlError::TooLong { chars: 1601 }.to_string(),
            "the text is 1601 characters long; Twilio sends at most 1600"
        );
    }

    #[test]
    fn length_is_counted_after_forbidden_characters_are_removed() {
        let text = format!("{}\u{0}", "a".repeat(MAX_MESSAGE_CHARS));
        assert!(Reply::new(&text).is_ok());
    }

    fn with_media(text: &str, urls: &[&str]) -> String {
        let urls: Vec<String> = urls.iter().map(|u| u.to_string()).collect();
        let reply = Reply::new(text).unwrap().with_media(&urls).unwrap();
        String::from_utf8(reply.render()).unwrap()
    }

    #[test]
    fn media_follow_the_text_like_the_helper_libraries() {
        assert_eq!(
            with_media(
                "The Robots are coming!",
                &["https://example.com/a.jpg?x=1&y=2"]
            ),
            format!(
                "{DECL}<Response><Message>The Robots are coming!<Media>https://example.com/a.jpg?x=1&amp;y=2</Media></Message></Response>"
            )
        );
    }

    #[test]
    fn media_without_text_is_a_message_of_media_only() {
        assert_eq!(
            with_media("", &["https://example.com/a.jpg", "http://e.com/b<c>.png"]),
            format!(
                "{DECL}<Response><Message><Media>https://example.com/a.jpg</Media><Media>http://e.com/b&lt;c&gt;.png</Media></Message></Response>"
            )
        );
        assert!(
            !Reply::new("")
                .unwrap()
                .with_media(&["https://e.com/a".into()])
                .unwrap()
                .is_silent()
        );
        assert!(Reply::new("").unwrap().is_silent());
    }

    #[test]
    fn ten_media_are_accepted_and_eleven_refused() {
        let urls: Vec<String> = (0..11).map(|i| format!("https://e.com/{i}.jpg")).collect();
        assert_eq!(
            Reply::new("x")
                .unwrap()
                .with_media(&urls[..10])
                .unwrap()
                .media()
                .len(),
            10
        );
        assert_eq!(
            Reply::new("x").unwrap().with_media(&urls),
            Err(TwimlError::TooManyMedia { count: 11 })
        );
    }

    #[test]
    fn media_urls_must_be_absolute_http_or_https() {
        for good in [
            "https://e.com",
            "HTTP://e.com/a.png",
            "https://e.com:8443/a?b=c&d#e",
        ] {
            assert!(is_media_url(good), "{good}");
        }
        for bad in [
            "e.com/a.png",
            "ftp://e.com/a.png",
            "https://",
            "https:///a.png",
            "https://e.com/a b.png",
            "https://e.com/\u{0}",
            // Not a control character, but not allowed in XML either.
            "https://e.com/\u{FFFE}",
            "javascript:alert(1)",
            "",
        ] {
            assert_eq!(
                Reply::new("x").unwrap().with_media(&[bad.to_owned()]),
                Err(TwimlError::MediaUrl {
                    url: bad.to_owned()
                }),
                "{bad}"
            );
        }
    }

    #[test]
    fn strip_forbidden_borrows_clean_text() {
        assert!(matches!(strip_forbidden("clean"), Cow::Borrowed("clean")));
    }
}
