//! The handlers that choose at once: a [`Fixed`] reply, and keyword
//! [`Rules`] tried before another handler.
//!
//! A rule answers when the message's `Body`, trimmed, equals its keyword
//! ignoring case (both sides lowercased, character by character). Every
//! reply is rendered once, when the handler is built; choosing one only
//! compares the body with the keywords and hands back the finished TwiML.

use std::fmt;
use std::time::Instant;

use crate::handler::{self, Chosen, Failure, Handler, Message};
use crate::logging::Escaped;
use crate::twilio::params::Value;
use crate::twilio::twiml::{Reply, TwimlError};

/// A keyword rule: `KEYWORD=REPLY`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    keyword: String,
    folded: String,
    reply: Reply,
}

impl Rule {
    /// Reads a rule written `KEYWORD=REPLY`: the keyword ends at the first
    /// `=` and is trimmed; the reply is the rest, as written. An empty reply
    /// sends no message.
    ///
    /// # Errors
    ///
    /// Fails when there is no `=`, the keyword is empty, or the reply is not
    /// one Twilio can send.
    pub fn parse(text: &str) -> Result<Rule, RuleError> {
        let Some((keyword, reply)) = text.split_once('=') else {
            return Err(RuleError::NoEquals {
                rule: text.to_owned(),
            });
        };
        let keyword = keyword.trim();
        if keyword.is_empty() {
            return Err(RuleError::EmptyKeyword {
                rule: text.to_owned(),
            });
        }
        let reply = Reply::new(reply).map_err(|source| RuleError::Reply {
            keyword: keyword.to_owned(),
            source,
        })?;
        Ok(Rule {
            keyword: keyword.to_owned(),
            folded: fold(keyword),
            reply,
        })
    }

    /// The keyword, as written (trimmed).
    pub fn keyword(&self) -> &str {
        &self.keyword
    }

    /// The reply this rule sends.
    pub fn reply(&self) -> &Reply {
        &self.reply
    }
}

/// Checks that no two rules share a keyword, ignoring case.
///
/// # Errors
///
/// Names the first keyword that appears twice.
pub fn check_unique(rules: &[Rule]) -> Result<(), RuleError> {
    for (at, rule) in rules.iter().enumerate() {
        if rules[..at]
            .iter()
            .any(|earlier| earlier.folded == rule.folded)
        {
            return Err(RuleError::Duplicate {
                keyword: rule.keyword.clone(),
            });
        }
    }
    Ok(())
}

/// Lowercases character by character, the same way for keywords and bodies
/// (`str::to_lowercase` would treat a final `Σ` differently).
fn fold(text: &str) -> String {
    text.chars().flat_map(char::to_lowercase).collect()
}

/// A rule that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RuleError {
    /// The rule has no `=`.
    NoEquals {
        /// The rule as given.
        rule: String,
    },
    /// Nothing but spaces before the `=`.
    EmptyKeyword {
        /// The rule as given.
        rule: String,
    },
    /// Two rules with the same keyword.
    Duplicate {
        /// The keyword, as written in the second rule.
        keyword: String,
    },
    /// The reply cannot be sent.
    Reply {
        /// The rule's keyword.
        keyword: String,
        /// Why Twilio cannot send the reply.
        source: TwimlError,
    },
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuleError::NoEquals { rule } => {
                write!(f, "rule {rule:?} has no '=': write it KEYWORD=REPLY")
            }
            RuleError::EmptyKeyword { rule } => write!(f, "rule {rule:?} has an empty keyword"),
            RuleError::Duplicate { keyword } => write!(
                f,
                "keyword {keyword:?} has two rules (keywords are compared ignoring case)"
            ),
            RuleError::Reply { keyword, source } => {
                write!(
                    f,
                    "the reply to keyword {keyword:?} cannot be sent: {source}"
                )
            }
        }
    }
}

impl std::error::Error for RuleError {}

/// The same reply to every message, rendered once.
#[derive(Debug, Clone)]
pub struct Fixed {
    reply: Reply,
    twiml: Box<[u8]>,
}

impl Fixed {
    /// Always `reply`.
    pub fn new(reply: &Reply) -> Fixed {
        Fixed {
            reply: reply.clone(),
            twiml: reply.render().into_boxed_slice(),
        }
    }

    /// The reply, chosen.
    pub fn chosen(&self) -> Chosen<'_> {
        Chosen {
            twiml: &self.twiml,
            rule: None,
        }
    }
}

impl Handler for Fixed {
    fn reply(&self, _: &Message, _: Instant) -> Result<handler::Reply, Failure> {
        Ok(self.reply.clone().into())
    }

    fn choose_at_once(&self, _: Option<Value<'_>>) -> Option<Chosen<'_>> {
        Some(self.chosen())
    }
}

/// Keyword rules, each reply rendered once, tried in order before another
/// handler answers the messages no rule does.
pub struct Rules {
    rules: Vec<Rendered>,
    otherwise: Box<dyn Handler>,
}

#[derive(Debug, Clone)]
struct Rendered {
    rule: Rule,
    twiml: Box<[u8]>,
}

impl Rules {
    /// `rules`, then `otherwise`.
    pub fn new(rules: &[Rule], otherwise: Box<dyn Handler>) -> Rules {
        Rules {
            rules: rules
                .iter()
                .map(|rule| Rendered {
                    rule: rule.clone(),
                    twiml: rule.reply.render().into_boxed_slice(),
                })
                .collect(),
            otherwise,
        }
    }

    /// The rule that answers a message with this `Body`, if any.
    fn rule(&self, body: &str) -> Option<&Rendered> {
        let body = body.trim();
        self.rules.iter().find(|rendered| {
            body.chars()
                .flat_map(char::to_lowercase)
                .eq(rendered.rule.folded.chars())
        })
    }
}

impl Handler for Rules {
    fn reply(&self, message: &Message, deadline: Instant) -> Result<handler::Reply, Failure> {
        match message.body.as_deref().and_then(|body| self.rule(body)) {
            Some(rendered) => Ok(rendered.rule.reply.clone().into()),
            None => self.otherwise.reply(message, deadline),
        }
    }

    /// The rule's reply, decoding the body only to compare it with the
    /// keywords; otherwise what the other handler chooses at once, if it
    /// does.
    fn choose_at_once(&self, body: Option<Value<'_>>) -> Option<Chosen<'_>> {
        let rule = body.and_then(|body| body.with_decoded(|body| self.rule(body)));
        match rule {
            Some(rendered) => Some(Chosen {
                twiml: &rendered.twiml,
                rule: Some(&rendered.rule.keyword),
            }),
            None => self.otherwise.choose_at_once(body),
        }
    }
}

impl fmt::Debug for Rules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rules")
            .field("rules", &self.rules)
            .finish_non_exhaustive()
    }
}

/// How a chosen reply is named in a log line: `rule "<keyword>"` (escaped)
/// or `default reply`.
pub struct Named<'a>(pub Option<&'a str>);

impl fmt::Display for Named<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(keyword) => write!(f, "rule \"{}\"", Escaped(keyword)),
            None => f.write_str("default reply"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DECL: &str = r#"<?xml version="1.0" encoding="UTF-8"?>"#;

    fn message(text: &str) -> String {
        format!("{DECL}<Response><Message>{text}</Message></Response>")
    }

    fn replies(rules: &[&str]) -> Rules {
        let rules: Vec<Rule> = rules.iter().map(|r| Rule::parse(r).unwrap()).collect();
        check_unique(&rules).unwrap();
        let default = Fixed::new(&Reply::new("default").unwrap());
        Rules::new(&rules, Box::new(default))
    }

    fn answer(replies: &Rules, body: Option<&str>) -> (String, Option<String>) {
        let encoded: Option<String> =
            body.map(|body| form_urlencoded::byte_serialize(body.as_bytes()).collect());
        let choice = replies
            .choose_at_once(encoded.as_deref().map(|body| Value::new(body.as_bytes())))
            .unwrap();
        (
            String::from_utf8(choice.twiml.to_vec()).unwrap(),
            choice.rule.map(str::to_owned),
        )
    }

    #[test]
    fn a_keyword_answers_with_its_rule_and_anything_else_with_the_default() {
        let replies = replies(&["hello=Hi!", "bye=Goodbye"]);
        assert_eq!(
            answer(&replies, Some("hello")),
            (message("Hi!"), Some("hello".to_owned()))
        );
        assert_eq!(
            answer(&replies, Some("bye")),
            (message("Goodbye"), Some("bye".to_owned()))
        );
        assert_eq!(
            answer(&replies, Some("hello there")),
            (message("default"), None)
        );
        assert_eq!(answer(&replies, Some("")), (message("default"), None));
        assert_eq!(answer(&replies, None), (message("default"), None));
    }

    #[test]
    fn case_and_surrounding_whitespace_do_not_matter() {
        let replies = replies(&["Hello=Hi!", "ÉTÉ=summer", "straße=street"]);
        for body in ["hello", "HELLO", "  HeLLo \n", "\thello\r\n"] {
            assert_eq!(
                answer(&replies, Some(body)).1.as_deref(),
                Some("Hello"),
                "{body:?}"
            );
        }
        assert_eq!(answer(&replies, Some("été")).1.as_deref(), Some("ÉTÉ"));
        assert_eq!(
            answer(&replies, Some("STRASSE")).1,
            None,
            "lowercasing is not case folding"
        );
        assert_eq!(
            answer(&replies, Some("Straße")).1.as_deref(),
            Some("straße")
        );
        assert_eq!(answer(&replies, Some("hel lo")).1, None);
    }

    #[test]
    fn keywords_are_trimmed_and_replies_kept_as_written() {
        let rule = Rule::parse("  stop  = You are unsubscribed. = bye ").unwrap();
        assert_eq!(rule.keyword(), "stop");
        assert_eq!(rule.reply().text(), " You are unsubscribed. = bye ");
    }

    #[test]
    fn a_rule_with_an_empty_reply_sends_no_message() {
        let replies = replies(&["stop="]);
        assert_eq!(
            answer(&replies, Some("STOP")),
            (format!("{DECL}<Response />"), Some("stop".to_owned()))
        );
    }

    #[test]
    fn xml_special_characters_in_keywords_and_replies_are_escaped_once() {
        let replies = replies(&["<b>&co=Tom & \"Jerry\" <3 'x'"]);
        assert_eq!(
            answer(&replies, Some("<B>&CO")),
            (
                message("Tom &amp; \"Jerry\" &lt;3 'x'"),
                Some("<b>&co".to_owned())
            )
        );
    }

    #[test]
    fn invalid_rules_say_what_is_wrong() {
        assert_eq!(
            Rule::parse("hello").unwrap_err().to_string(),
            r#"rule "hello" has no '=': write it KEYWORD=REPLY"#
        );
        assert_eq!(
            Rule::parse(" =Hi").unwrap_err().to_string(),
            r#"rule " =Hi" has an empty keyword"#
        );
        let long = format!("x={}", "y".repeat(1601));
        assert_eq!(
            Rule::parse(&long).unwrap_err().to_string(),
            r#"the reply to keyword "x" cannot be sent: the text is 1601 characters long; Twilio sends at most 1600"#
        );
        let rules = [
            Rule::parse("hello=a").unwrap(),
            Rule::parse("HELLO=b").unwrap(),
        ];
        assert_eq!(
            check_unique(&rules).unwrap_err().to_string(),
            r#"keyword "HELLO" has two rules (keywords are compared ignoring case)"#
        );
    }

    #[test]
    fn a_chosen_reply_is_named_with_its_keyword_escaped() {
        let replies = replies(&["h\u{1b}i=x"]);
        assert_eq!(
            Named(answer(&replies, Some("h\u{1b}i")).1.as_deref()).to_string(),
            r#"rule "h\u{1b}i""#
        );
        assert_eq!(Named(None).to_string(), "default reply");
    }

    #[test]
    fn rules_run_before_the_other_handler_which_answers_the_rest() {
        let echo =
            |message: &Message| handler::Reply::text(message.body.clone().unwrap_or_default());
        let rules = Rules::new(&[Rule::parse("hi=Hello").unwrap()], Box::new(echo));
        assert!(rules.choose_at_once(Some(Value::new(b"HI"))).is_some());
        assert_eq!(rules.choose_at_once(Some(Value::new(b"other"))), None);
        let message = |body: &str| Message {
            body: Some(body.to_owned()),
            ..Message::default()
        };
        assert_eq!(
            rules.reply(&message(" hi "), Instant::now()),
            Ok(handler::Reply::text("Hello"))
        );
        assert_eq!(
            rules.reply(&message("other"), Instant::now()),
            Ok(handler::Reply::text("other"))
        );
        let debug = format!("{rules:?}");
        assert!(
            debug.starts_with("Rules {") && debug.contains("hi"),
            "{debug}"
        );
    }

    #[test]
    fn a_fixed_reply_is_the_same_chosen_at_once_or_asked_for() {
        let fixed = Fixed::new(&Reply::new("Hello").unwrap());
        let asked = fixed.reply(&Message::default(), Instant::now()).unwrap();
        assert_eq!(asked.render(), fixed.chosen().twiml);
        assert_eq!(asked.render(), message("Hello").as_bytes());
    }
}
