//! End-to-end behaviour of the webhook, over real HTTP to an in-process server.

mod support;

use std::io::{BufReader, Read, Write};

use support::{DEFAULT_TWIML, TWILIO_WHATSAPP_FORM, TestServer, bare, post_form, read_response};
use whatsapp_webhook::Config;
use whatsapp_webhook::twilio::twiml::Reply;

#[test]
fn get_answers_the_exact_twiml_as_text_xml() {
    let server = TestServer::start();
    let response = server.request(&bare("GET", "/whatsapp"));
    response.assert_twiml(DEFAULT_TWIML);
    assert_eq!(
        response.header_names(),
        ["Date", "Content-Type", "Content-Length"]
    );
    assert!(response.header("Date").unwrap().ends_with(" GMT"));
}

#[test]
fn get_with_parameters_in_the_query_string_answers_the_same() {
    let server = TestServer::start();
    server
        .request(&bare("GET", "/whatsapp?From=whatsapp%3A%2B1555&Body=hi"))
        .assert_twiml(DEFAULT_TWIML);
}

#[test]
fn head_answers_the_same_headers_without_a_body() {
    let server = TestServer::start();
    let mut stream = server.connect();
    stream.write_all(&bare("HEAD", "/whatsapp")).unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut reader = BufReader::new(stream);
    let head = read_response(&mut reader, true);
    assert_eq!(head.status_line, "HTTP/1.1 200 OK");
    assert_eq!(head.header("Content-Type"), Some("text/xml; charset=utf-8"));
    assert_eq!(
        head.header("Content-Length"),
        Some(DEFAULT_TWIML.len().to_string().as_str())
    );
    // The next bytes on the connection are the next response, not a body.
    read_response(&mut reader, false).assert_text("HTTP/1.1 200 OK", "ok\n");
}

#[test]
fn post_of_a_realistic_twilio_whatsapp_message_answers_the_exact_twiml() {
    let server = TestServer::start();
    let request = format!(
        "POST /whatsapp HTTP/1.1\r\n\
         Host: abc123.ngrok-free.app\r\n\
         User-Agent: TwilioProxy/1.1\r\n\
         Content-Type: application/x-www-form-urlencoded; charset=UTF-8\r\n\
         Content-Length: {}\r\n\
         Accept: */*\r\n\
         Cache-Control: max-age=259200\r\n\
         I-Twilio-Idempotency-Token: 0b1a2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d\r\n\
         X-Forwarded-For: 3.90.1.2\r\n\
         X-Forwarded-Proto: https\r\n\
         X-Home-Region: us1\r\n\
         X-Twilio-Signature: njDbA2tS0Cv8pM6ML+Qe+xckvco=\r\n\
         Accept-Encoding: gzip\r\n\r\n{TWILIO_WHATSAPP_FORM}",
        TWILIO_WHATSAPP_FORM.len()
    );
    server
        .request(request.as_bytes())
        .assert_twiml(DEFAULT_TWIML);
}

#[test]
fn post_without_a_form_content_type_is_answered_and_its_body_ignored() {
    let server = TestServer::start();
    let request = b"POST /whatsapp HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{\"Body\":\"hi\"}";
    server.request(request).assert_twiml(DEFAULT_TWIML);
}

#[test]
fn post_without_a_body_is_answered() {
    let server = TestServer::start();
    server
        .request(b"POST /whatsapp HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        .assert_twiml(DEFAULT_TWIML);
}

#[test]
fn keep_alive_connections_get_one_answer_per_request() {
    let server = TestServer::start();
    let mut stream = server.connect();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    for _ in 0..3 {
        stream.write_all(&post_form(TWILIO_WHATSAPP_FORM)).unwrap();
        read_response(&mut reader, false).assert_twiml(DEFAULT_TWIML);
    }
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let server = TestServer::start();
    let mut stream = server.connect();
    let mut pipeline = post_form("From=a&Body=1");
    pipeline.extend_from_slice(&bare("GET", "/healthz"));
    pipeline.extend_from_slice(&bare("GET", "/nowhere"));
    stream.write_all(&pipeline).unwrap();
    let mut reader = BufReader::new(stream);
    read_response(&mut reader, false).assert_twiml(DEFAULT_TWIML);
    read_response(&mut reader, false).assert_text("HTTP/1.1 200 OK", "ok\n");
    read_response(&mut reader, false).assert_text("HTTP/1.1 404 Not Found", "not found\n");
}

#[test]
fn http_1_0_requests_are_answered_and_the_connection_closed() {
    let server = TestServer::start();
    let mut stream = server.connect();
    stream.write_all(b"GET /whatsapp HTTP/1.0\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let response = read_response(&mut &raw[..], false);
    // A server answers with the highest version it speaks (RFC 9110, 2.5).
    assert_eq!(response.status_line, "HTTP/1.1 200 OK");
    assert_eq!(response.header("Connection"), Some("close"));
    assert_eq!(response.body_text(), DEFAULT_TWIML);
}

#[test]
fn a_configured_reply_is_escaped_like_the_helper_libraries() {
    let server = TestServer::with(Config {
        reply: Reply::new("Tom & \"Jerry\" <3 'em'").unwrap(),
        ..Config::default()
    });
    server.request(&post_form("Body=x")).assert_twiml(
        r#"<?xml version="1.0" encoding="UTF-8"?><Response><Message>Tom &amp; "Jerry" &lt;3 'em'</Message></Response>"#,
    );
}

#[test]
fn an_empty_reply_answers_a_response_without_a_message() {
    let server = TestServer::with(Config {
        reply: Reply::new("").unwrap(),
        ..Config::default()
    });
    server
        .request(&post_form(TWILIO_WHATSAPP_FORM))
        .assert_twiml(r#"<?xml version="1.0" encoding="UTF-8"?><Response />"#);
}

#[test]
fn unknown_paths_are_404_in_plain_text() {
    let server = TestServer::start();
    for target in [
        "/",
        "/whatsapp/",
        "/WhatsApp",
        "/favicon.ico",
        "/whatsapp/../etc/passwd",
    ] {
        let response = server.request(&bare("GET", target));
        response.assert_text("HTTP/1.1 404 Not Found", "not found\n");
        assert_eq!(response.header("Allow"), None);
    }
}

#[test]
fn other_methods_on_the_webhook_are_405_with_allow() {
    let server = TestServer::start();
    for method in ["PUT", "DELETE", "OPTIONS", "PATCH", "BREW"] {
        let response = server.request(&bare(method, "/whatsapp"));
        response.assert_text("HTTP/1.1 405 Method Not Allowed", "method not allowed\n");
        assert_eq!(
            response.header("Allow"),
            Some("GET, HEAD, POST"),
            "{method}"
        );
    }
}

#[test]
fn healthz_answers_ok_and_allows_only_get_and_head() {
    let server = TestServer::start();
    server
        .request(&bare("GET", "/healthz"))
        .assert_text("HTTP/1.1 200 OK", "ok\n");
    let response = server.request(&bare("POST", "/healthz"));
    response.assert_text("HTTP/1.1 405 Method Not Allowed", "method not allowed\n");
    assert_eq!(response.header("Allow"), Some("GET, HEAD"));
}

#[test]
fn a_body_over_64_kib_is_refused_from_its_content_length_without_being_stored() {
    let server = TestServer::start();
    // Only the head goes out, then the client says it sends nothing more:
    // the refusal does not wait for the 65 537 bytes announced.
    let mut stream = server.connect();
    stream
        .write_all(b"POST /whatsapp HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 65537\r\n\r\n")
        .unwrap();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let response = read_response(&mut BufReader::new(stream), false);
    response.assert_text("HTTP/1.1 413 Payload Too Large", "request body too large\n");
    assert_eq!(response.header("Connection"), Some("close"));
}

#[test]
fn a_body_of_exactly_64_kib_is_read() {
    let server = TestServer::start();
    let mut form = String::from("From=x&Body=");
    form.push_str(&"a".repeat(64 * 1024 - form.len()));
    assert_eq!(form.len(), 65536);
    server
        .request(&post_form(&form))
        .assert_twiml(DEFAULT_TWIML);
}

#[test]
fn stop_ends_run_cleanly() {
    let server = TestServer::start();
    server.request(&bare("GET", "/healthz"));
    assert!(server.stop().is_ok());
}
