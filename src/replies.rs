//! Which reply answers a message: keyword rules first, then the default
//! reply.
//!
//! A rule answers when the message's `Body`, trimmed, equals its keyword
//! ignoring case (both sides lowercased, character by character). Every
//! answer is rendered once, by [`Replies::new`]; [`Replies::choose`] only
//! compares the body with the keywords and hands back a finished answer.

use std::fmt;

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

/// Every reply, rendered as TwiML, and the rules that choose between them.
#[derive(Debug, Clone)]
pub struct Replies {
    rules: Vec<Rendered>,
    default: Box<[u8]>,
}

#[derive(Debug, Clone)]
struct Rendered {
    keyword: String,
    folded: String,
    twiml: Box<[u8]>,
}

/// The reply chosen for one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Choice<'a> {
    /// The TwiML document that sends it.
    pub twiml: &'a [u8],
    /// The keyword of the rule that answered; `None` for the default reply.
    pub keyword: Option<&'a str>,
}

impl Replies {
    /// Renders the default reply and every rule's reply.
    pub fn new(default: &Reply, rules: &[Rule]) -> Replies {
        Replies {
            rules: rules
                .iter()
                .map(|rule| Rendered {
                    keyword: rule.keyword.clone(),
                    folded: rule.folded.clone(),
                    twiml: rule.reply.render().into_boxed_slice(),
                })
                .collect(),
            default: default.render().into_boxed_slice(),
        }
    }

    /// Chooses the reply to a message with this `Body`, still encoded as
    /// sent: it is decoded only if there are rules to compare it with.
    pub fn choose_for(&self, body: Option<Value<'_>>) -> Choice<'_> {
        match body {
            Some(body) if !self.rules.is_empty() => {
                body.with_decoded(|body| self.choose(Some(body)))
            }
            _ => self.choose(None),
        }
    }

    /// Chooses the reply to a message with this `Body`.
    pub fn choose(&self, body: Option<&str>) -> Choice<'_> {
        let rule = body.and_then(|body| {
            let body = body.trim();
            self.rules.iter().find(|rule| {
                body.chars()
                    .flat_map(char::to_lowercase)
                    .eq(rule.folded.chars())
            })
        });
        match rule {
            Some(rule) => Choice {
                twiml: &rule.twiml,
                keyword: Some(&rule.keyword),
            },
            None => Choice {
                twiml: &self.default,
                keyword: None,
            },
        }
    }
}

impl fmt::Display for Choice<'_> {
    /// `rule "<keyword>"` (escaped) or `default reply`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.keyword {
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

    fn replies(rules: &[&str]) -> Replies {
        let rules: Vec<Rule> = rules.iter().map(|r| Rule::parse(r).unwrap()).collect();
        check_unique(&rules).unwrap();
        Replies::new(&Reply::new("default").unwrap(), &rules)
    }

    fn answer(replies: &Replies, body: Option<&str>) -> (String, Option<String>) {
        let choice = replies.choose(body);
        (
            String::from_utf8(choice.twiml.to_vec()).unwrap(),
            choice.keyword.map(str::to_owned),
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
    fn choice_displays_which_reply_answered() {
        let replies = replies(&["h\u{1b}i=x"]);
        assert_eq!(
            replies.choose(Some("h\u{1b}i")).to_string(),
            r#"rule "h\u{1b}i""#
        );
        assert_eq!(replies.choose(Some("other")).to_string(), "default reply");
    }
}
