//! Everything Twilio posts, as it posts it: text, media, location, button
//! replies, delivery statuses at both paths, fallbacks, repeats, and checks
//! that are not from Twilio. For each, the exact answer and the exact log
//! line, in text and in JSON.

mod support;

use serde_json::Value;
use support::{Binary, DEFAULT_TWIML, TWILIO_WHATSAPP_FORM, bare, post_form};

const EMPTY_TWIML: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Response />"#;

/// A photo sent to the sandbox: no text, one image.
const IMAGE_FORM: &str = "MediaContentType0=image%2Fjpeg&SmsMessageSid=MM1f3b2a0c9d8e7f6a5b4c3d2e1f0a9b8c&NumMedia=1&ProfileName=Ada+Lovelace&MessageType=image&SmsSid=MM1f3b2a0c9d8e7f6a5b4c3d2e1f0a9b8c&WaId=15551234567&SmsStatus=received&Body=&To=whatsapp%3A%2B14155238886&NumSegments=1&ReferralNumMedia=0&MessageSid=MM1f3b2a0c9d8e7f6a5b4c3d2e1f0a9b8c&AccountSid=AC0123456789abcdef0123456789abcdef&From=whatsapp%3A%2B15551234567&MediaUrl0=https%3A%2F%2Fapi.twilio.com%2F2010-04-01%2FAccounts%2FAC0123456789abcdef0123456789abcdef%2FMessages%2FMM1f3b2a0c9d8e7f6a5b4c3d2e1f0a9b8c%2FMedia%2FME2a4c6e8f0a1b3c5d7e9f1a3b5c7d9e1f&ApiVersion=2010-04-01";

/// A shared location.
const LOCATION_FORM: &str = "Latitude=52.516275&Longitude=13.377704&Address=Pariser+Platz%2C+10117+Berlin&SmsMessageSid=SM2b4d6f8a0c1e3a5c7e9b1d3f5a7c9e1b&NumMedia=0&ProfileName=Ada+Lovelace&MessageType=location&SmsSid=SM2b4d6f8a0c1e3a5c7e9b1d3f5a7c9e1b&WaId=15551234567&SmsStatus=received&Label=Brandenburger+Tor&Body=&To=whatsapp%3A%2B14155238886&NumSegments=1&ReferralNumMedia=0&MessageSid=SM2b4d6f8a0c1e3a5c7e9b1d3f5a7c9e1b&AccountSid=AC0123456789abcdef0123456789abcdef&From=whatsapp%3A%2B15551234567&ApiVersion=2010-04-01";

/// A tap on a quick-reply button of an earlier message.
const BUTTON_FORM: &str = "OriginalRepliedMessageSender=whatsapp%3A%2B14155238886&SmsMessageSid=SM8824d91645395b17594d92659b878468&FrequentlyForwarded=false&NumMedia=0&ProfileName=Ada+Lovelace&MessageType=interactive&SmsSid=SM8824d91645395b17594d92659b878468&WaId=15551234567&SmsStatus=received&Body=Confirm&Forwarded=false&ButtonText=Confirm&To=whatsapp%3A%2B14155238886&ButtonPayload=confirm_booking_42&NumSegments=1&ReferralNumMedia=0&MessageSid=SM8824d91645395b17594d92659b878468&AccountSid=AC0123456789abcdef0123456789abcdef&OriginalRepliedMessageSid=MM5cc44eecf7dab0d48d4529d0fa4af44d&From=whatsapp%3A%2B15551234567&ApiVersion=2010-04-01";

/// A reply delivered.
const DELIVERED_FORM: &str = "ChannelPrefix=whatsapp&ApiVersion=2010-04-01&MessageStatus=delivered&SmsSid=SM5e7f9a1b3c5d7e9f1a3b5c7d9e1f3a5b&SmsStatus=delivered&ChannelInstallSid=XE0123456789abcdef0123456789abcdef&To=whatsapp%3A%2B15551234567&From=whatsapp%3A%2B14155238886&MessageSid=SM5e7f9a1b3c5d7e9f1a3b5c7d9e1f3a5b&StructuredMessage=false&AccountSid=AC0123456789abcdef0123456789abcdef&ChannelToAddress=%2B155512XXXXX";

/// A reply sent after the session window closed.
const FAILED_FORM: &str = "ChannelPrefix=whatsapp&ApiVersion=2010-04-01&MessageStatus=failed&SmsSid=SM6f8a0b2c4d6e8f0a2b4c6d8e0f2a4b6c&SmsStatus=failed&ChannelInstallSid=XE0123456789abcdef0123456789abcdef&To=whatsapp%3A%2B15551234567&From=whatsapp%3A%2B14155238886&MessageSid=SM6f8a0b2c4d6e8f0a2b4c6d8e0f2a4b6c&StructuredMessage=false&ErrorCode=63016&AccountSid=AC0123456789abcdef0123456789abcdef&ChannelToAddress=%2B155512XXXXX";

/// The answer to a form posted at `path`.
fn post(server: &Binary, path: &str, form: &str) -> support::HttpResponse {
    let request = post_form(form);
    let request = String::from_utf8(request).unwrap().replacen(
        "POST /whatsapp ",
        &format!("POST {path} "),
        1,
    );
    server.request(request.as_bytes())
}

/// The message part of a text log line: what follows `] `.
fn message(line: &str) -> &str {
    line.split_once("] ").map_or(line, |(_, message)| message)
}

/// The level of a text log line.
fn level(line: &str) -> &str {
    line.split_whitespace().nth(1).unwrap_or_default()
}

fn json(line: &str) -> Value {
    serde_json::from_str(line).unwrap_or_else(|error| panic!("{error}: {line}"))
}

fn text_server() -> Binary {
    Binary::start(&[], &[])
}

fn json_server() -> Binary {
    Binary::start(&["--log-format", "json"], &[])
}

#[test]
fn a_text_message_is_one_line_starting_with_its_sid() {
    let mut server = text_server();
    server
        .request(&post_form(TWILIO_WHATSAPP_FORM))
        .assert_twiml(DEFAULT_TWIML);
    let line = server.wait_for("SM9d3b1b2f6a0c4e5f8a7b6c5d4e3f2a1b incoming message");
    assert_eq!(level(&line), "INFO");
    assert_eq!(
        message(&line),
        "SM9d3b1b2f6a0c4e5f8a7b6c5d4e3f2a1b incoming message from whatsapp:+15551234567 \
         \"Ada Lovelace\": Hello doc! Café & co = 100% 👋"
    );
}

#[test]
fn a_photo_without_text_shows_its_type_and_url() {
    let mut server = text_server();
    post(&server, "/whatsapp", IMAGE_FORM).assert_twiml(DEFAULT_TWIML);
    let line = server.wait_for("MM1f3b2a0c9d8e7f6a5b4c3d2e1f0a9b8c incoming");
    assert_eq!(
        message(&line),
        "MM1f3b2a0c9d8e7f6a5b4c3d2e1f0a9b8c incoming message from whatsapp:+15551234567 \
         \"Ada Lovelace\"; media: image/jpeg https://api.twilio.com/2010-04-01/Accounts/\
         AC0123456789abcdef0123456789abcdef/Messages/MM1f3b2a0c9d8e7f6a5b4c3d2e1f0a9b8c/Media/\
         ME2a4c6e8f0a1b3c5d7e9f1a3b5c7d9e1f"
    );
}

#[test]
fn a_location_shows_its_coordinates_label_and_address() {
    let mut server = text_server();
    post(&server, "/whatsapp", LOCATION_FORM).assert_twiml(DEFAULT_TWIML);
    let line = server.wait_for("SM2b4d6f8a0c1e3a5c7e9b1d3f5a7c9e1b incoming");
    assert_eq!(
        message(&line),
        "SM2b4d6f8a0c1e3a5c7e9b1d3f5a7c9e1b incoming message from whatsapp:+15551234567 \
         \"Ada Lovelace\"; location: 52.516275,13.377704 \"Brandenburger Tor\", Pariser Platz, \
         10117 Berlin"
    );
}

#[test]
fn a_button_reply_shows_the_button_its_payload_and_the_message_it_answers() {
    let mut server = text_server();
    post(&server, "/whatsapp", BUTTON_FORM).assert_twiml(DEFAULT_TWIML);
    let line = server.wait_for("SM8824d91645395b17594d92659b878468 incoming");
    assert_eq!(
        message(&line),
        "SM8824d91645395b17594d92659b878468 incoming message from whatsapp:+15551234567 \
         \"Ada Lovelace\": Confirm; button \"Confirm\" (payload \"confirm_booking_42\"); in reply \
         to MM5cc44eecf7dab0d48d4529d0fa4af44d"
    );
}

#[test]
fn status_callbacks_at_both_paths_get_an_empty_response_and_one_line() {
    let mut server = text_server();
    for path in ["/whatsapp", "/status"] {
        post(&server, path, DELIVERED_FORM).assert_twiml(EMPTY_TWIML);
    }
    let line = server.wait_for("SM5e7f9a1b3c5d7e9f1a3b5c7d9e1f3a5b status");
    assert_eq!(
        message(&line),
        "SM5e7f9a1b3c5d7e9f1a3b5c7d9e1f3a5b status delivered to whatsapp:+15551234567"
    );
    assert_eq!(level(&line), "INFO");
    // A message after both, then: two status lines, no message but it.
    let sentinel = "MessageSid=SMsentinel&From=x&Body=done";
    server.request(&post_form(sentinel));
    server.wait_for("SMsentinel incoming message");
    let statuses = server
        .seen
        .iter()
        .filter(|line| line.contains("status delivered"))
        .count();
    assert_eq!(statuses, 2);
    let messages = server
        .seen
        .iter()
        .filter(|line| line.contains("incoming message"))
        .count();
    assert_eq!(messages, 1, "{:#?}", server.seen);
}

#[test]
fn a_failed_delivery_is_a_warning_that_explains_the_error() {
    let mut server = text_server();
    post(&server, "/status", FAILED_FORM).assert_twiml(EMPTY_TWIML);
    let line = server.wait_for("SM6f8a0b2c4d6e8f0a2b4c6d8e0f2a4b6c status");
    assert_eq!(level(&line), "WARN");
    assert_eq!(
        message(&line),
        "SM6f8a0b2c4d6e8f0a2b4c6d8e0f2a4b6c status failed to whatsapp:+15551234567: error \
         63016: outside the 24-hour session window: only an approved template can be sent \
         until the recipient writes again"
    );
}

#[test]
fn the_status_path_takes_only_status_callbacks() {
    let server = text_server();
    post(&server, "/status", TWILIO_WHATSAPP_FORM).assert_text(
        "HTTP/1.1 400 Bad Request",
        "not a status callback: no MessageStatus\n",
    );
    let response = server.request(&bare("DELETE", "/status"));
    assert_eq!(response.status(), 405);
    assert_eq!(response.header("Allow"), Some("GET, HEAD, POST"));
}

#[test]
fn a_fallback_is_answered_and_warns_with_the_url_that_failed() {
    let mut server = text_server();
    let form = format!(
        "{TWILIO_WHATSAPP_FORM}&ErrorCode=11200&ErrorUrl=https%3A%2F%2Fprimary.example%2Fwhatsapp"
    );
    post(&server, "/whatsapp", &form).assert_twiml(DEFAULT_TWIML);
    let line = server.wait_for("SM9d3b1b2f6a0c4e5f8a7b6c5d4e3f2a1b fallback");
    assert_eq!(level(&line), "WARN");
    assert_eq!(
        message(&line),
        "SM9d3b1b2f6a0c4e5f8a7b6c5d4e3f2a1b fallback after https://primary.example/whatsapp \
         failed with error 11200: HTTP retrieval failure: Twilio got an error status, or no \
         answer, from the URL; incoming message from whatsapp:+15551234567 \"Ada Lovelace\": \
         Hello doc! Café & co = 100% 👋"
    );
}

#[test]
fn a_repeat_is_answered_the_same_and_logged_as_a_repeat() {
    let mut server = Binary::start(&["--on", "confirm=Booked!"], &[]);
    let booked =
        r#"<?xml version="1.0" encoding="UTF-8"?><Response><Message>Booked!</Message></Response>"#;
    post(&server, "/whatsapp", BUTTON_FORM).assert_twiml(booked);
    post(&server, "/whatsapp", BUTTON_FORM).assert_twiml(booked);
    let repeat = server.wait_for("(repeat)");
    assert!(
        message(&repeat).starts_with(
            "SM8824d91645395b17594d92659b878468 incoming message from whatsapp:+15551234567 \
             \"Ada Lovelace\" (rule \"confirm\"): Confirm;"
        ),
        "{repeat}"
    );
    let first = server
        .seen
        .iter()
        .filter(|line| line.contains("SM8824d91645395b17594d92659b878468 incoming"))
        .count();
    assert_eq!(first, 2, "one line each: {:#?}", server.seen);
}

/// A repeat is the same `MessageSid` again, not the same sender: two
/// messages from one sender are both new, the second one's sid posted
/// again is a repeat.
#[test]
fn repeats_are_told_by_message_sid_not_by_sender() {
    let mut server = json_server();
    let sids = [
        "MM1f3b2a0c9d8e7f6a5b4c3d2e1f0a9b8c",
        "SM2b4d6f8a0c1e3a5c7e9b1d3f5a7c9e1b",
    ];
    for form in [IMAGE_FORM, LOCATION_FORM, LOCATION_FORM] {
        assert!(form.contains("From=whatsapp%3A%2B15551234567&"));
        post(&server, "/whatsapp", form).assert_twiml(DEFAULT_TWIML);
    }
    let repeat = json(&server.wait_for("\"repeat\":true"));
    assert_eq!(repeat["sid"], sids[1]);
    let lines: Vec<Value> = server
        .seen
        .iter()
        .filter(|line| line.contains("\"sid\""))
        .map(|line| json(line))
        .collect();
    let told: Vec<(&str, bool)> = lines
        .iter()
        .map(|line| {
            let sid = line["sid"].as_str().expect("a sid");
            (sid, line["repeat"].as_bool().expect("repeat is a bool"))
        })
        .collect();
    assert_eq!(
        told,
        [(sids[0], false), (sids[1], false), (sids[1], true)],
        "{:#?}",
        server.seen
    );
}

#[test]
fn a_browser_check_is_answered_and_logged_as_a_check() {
    let mut server = text_server();
    server
        .request(&bare("GET", "/whatsapp"))
        .assert_twiml(DEFAULT_TWIML);
    let line = server.wait_for("without MessageSid or From");
    assert_eq!(
        message(&line),
        "GET /whatsapp without MessageSid or From: a check, not a message from Twilio; \
         answered with the default reply"
    );
    assert!(
        !server
            .seen
            .iter()
            .any(|line| line.contains("incoming message"))
    );
}

#[test]
fn debug_shows_every_parameter_and_the_idempotency_token() {
    let mut server = Binary::start(&[], &[("RUST_LOG", "info,whatsapp_webhook::answer=debug")]);
    let request = String::from_utf8(post_form(IMAGE_FORM)).unwrap().replacen(
        "Host: example.com\r\n",
        "Host: example.com\r\nI-Twilio-Idempotency-Token: 0b1a2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d\r\n",
        1,
    );
    server.request(request.as_bytes());
    let parameters = server.wait_for("MM1f3b2a0c9d8e7f6a5b4c3d2e1f0a9b8c parameters: ");
    assert_eq!(level(&parameters), "DEBUG");
    assert!(
        message(&parameters).starts_with(
            "MM1f3b2a0c9d8e7f6a5b4c3d2e1f0a9b8c parameters: MediaContentType0=image/jpeg, \
             SmsMessageSid=MM1f3b2a0c9d8e7f6a5b4c3d2e1f0a9b8c, NumMedia=1, ProfileName=Ada \
             Lovelace, MessageType=image,"
        ),
        "{parameters}"
    );
    let token = server.wait_for("I-Twilio-Idempotency-Token");
    assert!(token.ends_with(
        "MM1f3b2a0c9d8e7f6a5b4c3d2e1f0a9b8c I-Twilio-Idempotency-Token: \
         0b1a2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
    ));
}

#[test]
fn json_logs_carry_every_field_of_a_message() {
    let mut server = json_server();
    post(&server, "/whatsapp", IMAGE_FORM).assert_twiml(DEFAULT_TWIML);
    let line = json(&server.wait_for("\"sid\":\"MM1f3b2a0c9d8e7f6a5b4c3d2e1f0a9b8c\""));
    assert_eq!(line["level"], "INFO");
    assert_eq!(line["target"], "whatsapp_webhook::answer");
    assert!(
        line["message"]
            .as_str()
            .unwrap()
            .starts_with("MM1f3b2a0c9d8e7f6a5b4c3d2e1f0a9b8c incoming message from")
    );
    assert_eq!(line["from"], "whatsapp:+15551234567");
    assert_eq!(line["to"], "whatsapp:+14155238886");
    assert_eq!(line["body"], "");
    assert_eq!(line["profile_name"], "Ada Lovelace");
    assert_eq!(
        line["media"],
        serde_json::json!([{
            "url": "https://api.twilio.com/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages/MM1f3b2a0c9d8e7f6a5b4c3d2e1f0a9b8c/Media/ME2a4c6e8f0a1b3c5d7e9f1a3b5c7d9e1f",
            "content_type": "image/jpeg"
        }])
    );
    assert_eq!(line["repeat"], false);
    // The session window ends 24 hours after the message.
    let time: jiff::Timestamp = line["time"].as_str().unwrap().parse().unwrap();
    let until: jiff::Timestamp = line["window_until"].as_str().unwrap().parse().unwrap();
    let window = until.as_second() - time.as_second();
    assert!((86_400..=86_401).contains(&window), "{window}");
}

#[test]
fn json_logs_carry_locations_buttons_and_statuses() {
    let mut server = json_server();
    post(&server, "/whatsapp", LOCATION_FORM).assert_twiml(DEFAULT_TWIML);
    post(&server, "/whatsapp", BUTTON_FORM).assert_twiml(DEFAULT_TWIML);
    post(&server, "/status", FAILED_FORM).assert_twiml(EMPTY_TWIML);
    let location = json(&server.wait_for("\"sid\":\"SM2b4d6f8a0c1e3a5c7e9b1d3f5a7c9e1b\""));
    assert_eq!(
        location["location"],
        serde_json::json!({
            "latitude": 52.516275,
            "longitude": 13.377704,
            "address": "Pariser Platz, 10117 Berlin",
            "label": "Brandenburger Tor"
        })
    );
    let button = json(&server.wait_for("\"sid\":\"SM8824d91645395b17594d92659b878468\""));
    assert_eq!(button["button_payload"], "confirm_booking_42");
    assert_eq!(button["button_text"], "Confirm");
    assert_eq!(button["in_reply_to"], "MM5cc44eecf7dab0d48d4529d0fa4af44d");
    let status = json(&server.wait_for("\"sid\":\"SM6f8a0b2c4d6e8f0a2b4c6d8e0f2a4b6c\""));
    assert_eq!(status["level"], "WARN");
    assert_eq!(status["status"], "failed");
    assert_eq!(status["error_code"], 63016);
    assert_eq!(status["to"], "whatsapp:+15551234567");
    assert!(status.get("window_until").is_none());
    assert!(status.get("repeat").is_none());
}

#[test]
fn every_json_line_is_one_object_with_time_level_target_and_message() {
    let mut server = json_server();
    server.request(&bare("GET", "/whatsapp"));
    server.wait_for("a check, not a message from Twilio");
    for line in &server.seen {
        let value = json(line);
        for field in ["time", "level", "target", "message"] {
            assert!(value[field].is_string(), "{field} in {line}");
        }
    }
}
