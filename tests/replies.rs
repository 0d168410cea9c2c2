//! Replies beyond one fixed text: keyword rules, media, and no-reply mode,
//! end to end.

mod support;

use support::{Binary, DEFAULT_TWIML, TestServer, post_form, run_binary};
use whatsapp_webhook::Config;
use whatsapp_webhook::config::{self, Parsed};
use whatsapp_webhook::replies::Rule;
use whatsapp_webhook::twilio::twiml::Reply;

const DECL: &str = r#"<?xml version="1.0" encoding="UTF-8"?>"#;

fn message(inner: &str) -> String {
    format!("{DECL}<Response><Message>{inner}</Message></Response>")
}

/// A server configured by command-line flags, as a user would configure it.
fn server(args: &[&str]) -> TestServer {
    match config::parse(args.iter().copied(), |_| None) {
        Ok(Parsed::Serve(config)) => TestServer::with(config),
        other => panic!("{args:?} is not a configuration: {other:?}"),
    }
}

fn reply_to(server: &TestServer, body: &str) -> String {
    let form: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("From", "whatsapp:+15551234567")
        .append_pair("Body", body)
        .finish();
    let response = server.request(&post_form(&form));
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.header("Content-Type"),
        Some("text/xml; charset=utf-8")
    );
    response.body_text().to_owned()
}

#[test]
fn a_keyword_gets_its_rule_and_other_messages_the_default_reply() {
    let server = server(&["--on", "hello=Hi!", "--on", "bye=Goodbye"]);
    assert_eq!(reply_to(&server, "hello"), message("Hi!"));
    assert_eq!(reply_to(&server, "bye"), message("Goodbye"));
    assert_eq!(reply_to(&server, "hello bye"), DEFAULT_TWIML);
    assert_eq!(reply_to(&server, ""), DEFAULT_TWIML);
}

#[test]
fn keywords_match_whatever_the_case_and_surrounding_whitespace() {
    let server = server(&["--on", "Hello=Hi!"]);
    for body in ["hello", "HELLO", "  hElLo  ", "\nhello\t", "Hello\r\n"] {
        assert_eq!(reply_to(&server, body), message("Hi!"), "{body:?}");
    }
    for body in ["hell o", "hello!", "hello hello"] {
        assert_eq!(reply_to(&server, body), DEFAULT_TWIML, "{body:?}");
    }
}

#[test]
fn a_keyword_in_the_query_string_of_a_get_is_answered_too() {
    let server = server(&["--on", "hello=Hi!"]);
    let response = server.request(&support::bare("GET", "/whatsapp?Body=HELLO&From=x"));
    response.assert_twiml(&message("Hi!"));
}

#[test]
fn a_rule_with_an_empty_reply_sends_no_message() {
    let server = server(&["--on", "stop="]);
    assert_eq!(reply_to(&server, "STOP"), format!("{DECL}<Response />"));
    assert_eq!(reply_to(&server, "go"), DEFAULT_TWIML);
}

#[test]
fn xml_special_characters_in_keywords_replies_and_urls_are_escaped() {
    let server = server(&[
        "--on",
        "<3 & co=Tom & \"Jerry\" <3 'em'",
        "--reply",
        "a<b>&c",
        "--media",
        "https://example.com/a.jpg?x=1&y=<2>",
    ]);
    assert_eq!(
        reply_to(&server, "<3 & CO"),
        message("Tom &amp; \"Jerry\" &lt;3 'em'")
    );
    assert_eq!(
        reply_to(&server, "anything"),
        message("a&lt;b&gt;&amp;c<Media>https://example.com/a.jpg?x=1&amp;y=&lt;2&gt;</Media>")
    );
}

#[test]
fn media_follow_the_default_text_in_order() {
    let server = server(&[
        "--reply",
        "The Robots are coming!",
        "--media",
        "https://example.com/a.jpg?x=1&y=2",
        "--media",
        "https://example.com/b.png",
    ]);
    assert_eq!(
        reply_to(&server, "hi"),
        message(
            "The Robots are coming!<Media>https://example.com/a.jpg?x=1&amp;y=2</Media>\
             <Media>https://example.com/b.png</Media>"
        )
    );
}

#[test]
fn media_without_text_is_a_message_of_media_only() {
    let server = server(&["--reply", "", "--media", "https://example.com/a.jpg"]);
    assert_eq!(
        reply_to(&server, "hi"),
        message("<Media>https://example.com/a.jpg</Media>")
    );
}

#[test]
fn media_belong_to_the_default_reply_not_to_rules() {
    let server = server(&["--media", "https://example.com/a.jpg", "--on", "hi=Hello"]);
    assert_eq!(reply_to(&server, "hi"), message("Hello"));
}

#[test]
fn an_empty_reply_receives_messages_without_answering() {
    let server = TestServer::with(Config {
        reply: Reply::new("").unwrap(),
        rules: vec![Rule::parse("help=Text STOP to stop").unwrap()],
        ..Config::default()
    });
    assert_eq!(reply_to(&server, "hello"), format!("{DECL}<Response />"));
    assert_eq!(reply_to(&server, "HELP"), message("Text STOP to stop"));
}

#[test]
fn the_log_says_which_rule_answered() {
    let mut server = Binary::start(&["--on", "hello=Hi!", "--reply", ""], &[]);
    server.wait_for(r#"keyword rules: "hello""#);
    server.wait_for("the default reply is empty");
    server.request(&post_form("From=alice&Body=+HELLO+"));
    server.request(&post_form("From=bob&Body=other"));
    let rule = server.wait_for("from alice");
    assert!(
        rule.ends_with(r#"incoming message from alice (rule "hello"):  HELLO "#),
        "{rule}"
    );
    let default = server.wait_for("from bob");
    assert!(
        default.ends_with("incoming message from bob: other"),
        "{default}"
    );
}

#[test]
fn invalid_rules_and_media_stop_start_up_with_status_2() {
    let long_rule = format!("long={}", "x".repeat(1601));
    for (args, env, message) in [
        (
            vec!["--on", "hello"],
            vec![],
            r#"invalid rule from --on: rule "hello" has no '=': write it KEYWORD=REPLY"#,
        ),
        (
            vec!["--on", "=Hi"],
            vec![],
            r#"invalid rule from --on: rule "=Hi" has an empty keyword"#,
        ),
        (
            vec!["--on", "hi=a", "--on", " HI =b"],
            vec![],
            r#"invalid rule from --on: keyword "HI" has two rules (keywords are compared ignoring case)"#,
        ),
        (
            vec!["--on", long_rule.as_str()],
            vec![],
            r#"invalid rule from --on: the reply to keyword "long" cannot be sent: the text is 1601 characters long; Twilio sends at most 1600"#,
        ),
        (
            vec![],
            vec![("ON_RULES", "ok=fine\nbroken")],
            r#"invalid rule from ON_RULES (environment variable): rule "broken" has no '=': write it KEYWORD=REPLY"#,
        ),
        (
            vec!["--media", "ftp://example.com/a.jpg"],
            vec![],
            r#"invalid media from --media: "ftp://example.com/a.jpg" is not an http or https URL; Twilio fetches media from absolute http(s) URLs"#,
        ),
    ] {
        let (status, _, stderr) = run_binary(&args, &env);
        assert_eq!(status.code(), Some(2), "{args:?}");
        assert_eq!(stderr, format!("whatsapp-webhook: {message}\n"), "{args:?}");
    }
    let eleven: Vec<String> = (0..11)
        .flat_map(|i| ["--media".to_owned(), format!("https://e.com/{i}.jpg")])
        .collect();
    let eleven: Vec<&str> = eleven.iter().map(String::as_str).collect();
    let (status, _, stderr) = run_binary(&eleven, &[]);
    assert_eq!(status.code(), Some(2));
    assert_eq!(
        stderr,
        "whatsapp-webhook: invalid media from --media: 11 media given; Twilio sends at most 10 with one message\n"
    );
}
