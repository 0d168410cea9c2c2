//! Signature checking against vectors made with Twilio's official Python
//! helper library, through the checking function and through the running
//! server.

mod support;

use std::io::Write;

use serde_json::Value;
use support::{Binary, DEFAULT_TWIML, HttpResponse, TestServer, post_form, read_response};
use whatsapp_webhook::Config;
use whatsapp_webhook::twilio::signature::{self, Keys, Payload, Secret, Verdict};

/// One vector of `tests/data/twilio-signature-vectors.json`.
struct Vector {
    name: String,
    token: String,
    sha256: bool,
    method: String,
    url: String,
    body: String,
    signature: String,
    valid: bool,
}

fn vectors() -> Vec<Vector> {
    let text = include_str!("data/twilio-signature-vectors.json");
    let json: Value = serde_json::from_str(text).expect("valid JSON");
    let vectors: Vec<Vector> = json["vectors"]
        .as_array()
        .expect("a vectors array")
        .iter()
        .map(|v| {
            let field = |name: &str| {
                v[name]
                    .as_str()
                    .unwrap_or_else(|| panic!("{name}"))
                    .to_owned()
            };
            Vector {
                name: field("name"),
                token: field("token"),
                sha256: match field("algorithm").as_str() {
                    "HMAC_SHA1" => false,
                    "HMAC_SHA256" => true,
                    other => panic!("unexpected algorithm {other}"),
                },
                method: field("method"),
                url: field("url"),
                body: field("body"),
                signature: field("signature"),
                valid: v["valid"].as_bool().expect("valid is a boolean"),
            }
        })
        .collect();
    assert!(vectors.iter().filter(|v| v.served()).count() >= 10);
    assert!(vectors.iter().any(|v| !v.valid) && vectors.iter().any(|v| v.sha256));
    vectors
}

const SHARED_KEY_SETTINGS: &str = "key=webhooks_sharedkey_0123456789,algorithm=HMAC_SHA256";

impl Vector {
    fn keys(&self) -> Keys {
        let secrets = vec![Secret::new(&self.token)];
        if self.sha256 {
            Keys {
                auth_tokens: vec![],
                shared_keys: secrets,
            }
        } else {
            Keys {
                auth_tokens: secrets,
                shared_keys: vec![],
            }
        }
    }

    fn settings(&self) -> Option<&str> {
        self.sha256.then_some(SHARED_KEY_SETTINGS)
    }

    /// Scheme, host (with any port) and request target of the URL.
    fn parts(&self) -> (&str, &str, &str) {
        let (scheme, rest) = self.url.split_once("://").expect("absolute URL");
        let slash = rest.find('/').expect("a path");
        (scheme, &rest[..slash], &rest[slash..])
    }

    /// The request Twilio sent, with `extra` headers.
    fn request(&self, extra: &str) -> Vec<u8> {
        let (_, _, target) = self.parts();
        let mut head = format!("{} {target} HTTP/1.1\r\n{extra}", self.method);
        head.push_str(&format!("X-Twilio-Signature: {}\r\n", self.signature));
        if let Some(settings) = self.settings() {
            head.push_str(&format!(
                "X-Twilio-Webhooks-Signature-Settings: {settings}\r\n"
            ));
        }
        if self.method == "POST" {
            head.push_str(&format!(
                "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
                self.body.len()
            ));
        }
        head.push_str("\r\n");
        head.push_str(&self.body);
        head.into_bytes()
    }

    /// Whether the vector's URL is one this server answers; the others (the
    /// example from Twilio's documentation signs `/myapp.php`) are routed to
    /// `404` before any signature is checked.
    fn served(&self) -> bool {
        let (_, _, target) = self.parts();
        target.split('?').next() == Some("/whatsapp")
    }

    fn assert_verdict(&self, response: &HttpResponse, how: &str) {
        if !self.served() {
            assert_eq!(response.status(), 404, "{}: {how}", self.name);
            return;
        }
        if self.valid {
            assert_eq!(response.status(), 200, "{}: {how}", self.name);
            assert_eq!(response.body_text(), DEFAULT_TWIML, "{}", self.name);
        } else {
            assert_eq!(response.status(), 403, "{}: {how}", self.name);
            response.assert_text(
                "HTTP/1.1 403 Forbidden",
                "invalid or missing Twilio signature\n",
            );
        }
    }
}

#[test]
fn every_vector_gets_the_official_verdict_from_the_checking_function() {
    for vector in vectors() {
        let payload = if vector.method == "POST" {
            Payload::Form(vector.body.as_bytes())
        } else {
            Payload::Nothing
        };
        let verdict = signature::check(
            &vector.keys(),
            &vector.url,
            payload,
            Some(&vector.signature),
            vector.settings(),
        );
        let expected = if vector.valid {
            Verdict::Valid
        } else {
            Verdict::NoMatch
        };
        assert_eq!(verdict, expected, "{}", vector.name);
    }
}

#[test]
fn signing_gives_the_official_signature_of_every_valid_auth_token_vector() {
    // What `check` sends: the signature Twilio's library made for the URL
    // as signed. Two vectors sign one form of the URL and receive the other.
    let mut signed = 0;
    for v in vectors().iter().filter(|v| v.valid && !v.sha256) {
        let form = if v.method == "POST" {
            v.body.as_str()
        } else {
            ""
        };
        let ours = signature::sign(&Secret::new(&v.token), &v.url, form.as_bytes());
        if v.name.contains("port") {
            assert_ne!(ours, v.signature, "{}: signed another URL", v.name);
        } else {
            assert_eq!(ours, v.signature, "{}", v.name);
            signed += 1;
        }
    }
    assert!(signed >= 5, "{signed} vectors signed");
}

#[test]
fn the_tests_own_signer_gives_the_official_signature_of_every_valid_post_vector() {
    // Tests that send signed requests sign them with tests/support, written
    // from Twilio's rule, so that the server is checked against something
    // other than itself.
    let mut signed = 0;
    for v in vectors()
        .iter()
        .filter(|v| v.valid && !v.sha256 && v.method == "POST" && !v.name.contains("port"))
    {
        if v.url.contains("bodySHA256") {
            continue;
        }
        assert_eq!(
            support::twilio_signature(&v.token, &v.url, &v.body),
            v.signature,
            "{}",
            v.name
        );
        signed += 1;
    }
    assert!(signed >= 4, "{signed} vectors signed");
}

#[test]
fn every_vector_gets_the_official_verdict_from_the_server_behind_a_proxy() {
    for vector in vectors() {
        let server = TestServer::with(Config {
            keys: vector.keys(),
            ..Config::default()
        });
        let (scheme, host, _) = vector.parts();
        let request = vector.request(&format!("Host: {host}\r\nX-Forwarded-Proto: {scheme}\r\n"));
        vector.assert_verdict(&server.request(&request), "Host and X-Forwarded-Proto");
    }
}

#[test]
fn every_vector_gets_the_official_verdict_from_the_server_with_a_public_url() {
    for vector in vectors() {
        let (scheme, host, _) = vector.parts();
        let server = TestServer::with(Config {
            keys: vector.keys(),
            public_url: Some(format!("{scheme}://{host}")),
            ..Config::default()
        });
        // What the server sees behind ngrok: its own address, plain http.
        let request = vector.request(&format!("Host: {}\r\n", server.addr()));
        vector.assert_verdict(&server.request(&request), "PUBLIC_URL");
    }
}

/// Signs like Twilio does, with the tested function's own building blocks
/// kept out: a vector from the official library gives the expected value.
fn whatsapp_vector() -> Vector {
    vectors()
        .into_iter()
        .find(|v| v.name == "whatsapp sandbox via ngrok")
        .expect("the WhatsApp vector")
}

fn server_with_tokens(tokens: &[&str]) -> TestServer {
    TestServer::with(Config {
        keys: Keys {
            auth_tokens: tokens.iter().map(|t| Secret::new(t)).collect(),
            shared_keys: vec![],
        },
        public_url: Some("https://abc123.ngrok-free.app".to_owned()),
        ..Config::default()
    })
}

#[test]
fn an_unsigned_request_is_refused_with_403() {
    let server = server_with_tokens(&["12345"]);
    let response = server.request(&post_form(&whatsapp_vector().body));
    response.assert_text(
        "HTTP/1.1 403 Forbidden",
        "invalid or missing Twilio signature\n",
    );
    let get = server.request(&support::bare("GET", "/whatsapp"));
    assert_eq!(get.status(), 403);
}

#[test]
fn a_signed_request_gets_the_twiml() {
    let server = server_with_tokens(&["12345"]);
    let vector = whatsapp_vector();
    server
        .request(&vector.request("Host: localhost:8767\r\n"))
        .assert_twiml(DEFAULT_TWIML);
}

#[test]
fn a_tampered_body_is_refused() {
    let server = server_with_tokens(&["12345"]);
    let mut vector = whatsapp_vector();
    vector.body = vector.body.replace("Hello+doc", "Hello+bob");
    assert_eq!(server.request(&vector.request("Host: x\r\n")).status(), 403);
}

#[test]
fn a_rotation_accepts_either_token() {
    let vector = whatsapp_vector();
    for tokens in [&["12345", "other"][..], &["other", "12345"]] {
        let server = server_with_tokens(tokens);
        assert_eq!(
            server.request(&vector.request("Host: x\r\n")).status(),
            200,
            "{tokens:?}"
        );
    }
    let server = server_with_tokens(&["other", "another"]);
    assert_eq!(server.request(&vector.request("Host: x\r\n")).status(), 403);
}

#[test]
fn the_health_check_needs_no_signature() {
    let server = server_with_tokens(&["12345"]);
    server
        .request(&support::bare("GET", "/healthz"))
        .assert_text("HTTP/1.1 200 OK", "ok\n");
}

#[test]
fn a_refused_request_leaves_a_keep_alive_connection_usable() {
    let server = server_with_tokens(&["12345"]);
    let vector = whatsapp_vector();
    let mut stream = server.connect();
    let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
    stream.write_all(&post_form(&vector.body)).unwrap();
    assert_eq!(read_response(&mut reader, false).status(), 403);
    stream.write_all(&vector.request("Host: x\r\n")).unwrap();
    read_response(&mut reader, false).assert_twiml(DEFAULT_TWIML);
}

#[test]
fn without_a_secret_checking_is_off_and_start_up_says_how_to_turn_it_on() {
    let mut server = Binary::start(&[], &[]);
    let warning = server.wait_for("signature checking is off");
    assert!(warning.contains(" WARN "), "{warning}");
    assert!(warning.contains("set TWILIO_AUTH_TOKEN"), "{warning}");
    server
        .request(&post_form("From=x&Body=unsigned"))
        .assert_twiml(DEFAULT_TWIML);
}

#[test]
fn a_refusal_is_logged_with_the_reason_and_url_but_no_secret_or_message() {
    let token = "s3cr3t-token-value";
    let mut server = Binary::start(&[], &[("TWILIO_AUTH_TOKEN", token)]);
    let on = server.wait_for("checking X-Twilio-Signature with TWILIO_AUTH_TOKEN");
    assert!(on.contains(" INFO "), "{on}");

    let unsigned = server.request(&post_form("From=whatsapp%3A%2B1555&Body=forged"));
    assert_eq!(unsigned.status(), 403);
    let missing = server.wait_for("rejected POST /whatsapp");
    assert!(missing.contains(" WARN "), "{missing}");
    assert!(
        missing.ends_with(
            "rejected POST /whatsapp: no X-Twilio-Signature header (checked URL http://example.com/whatsapp)"
        ),
        "{missing}"
    );

    let wrong = "POST /whatsapp?x=1 HTTP/1.1\r\nHost: abc.ngrok-free.app\r\nX-Forwarded-Proto: https\r\nX-Twilio-Signature: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(server.request(wrong.as_bytes()).status(), 403);
    let mismatch = server.wait_for("does not match");
    assert!(
        mismatch.ends_with(
            "rejected POST /whatsapp: X-Twilio-Signature does not match (checked URL \
             https://abc.ngrok-free.app/whatsapp?x=1); no URL the request could have come \
             through matches it either, so the token is the likely cause: TWILIO_AUTH_TOKEN \
             must be the Auth Token of the account that owns the number"
        ),
        "{mismatch}"
    );

    server
        .request(&support::bare("GET", "/healthz"))
        .assert_text("HTTP/1.1 200 OK", "ok\n");
    // Every line the server wrote, read to its end.
    assert_eq!(server.terminate().code(), Some(0));
    assert!(server.seen.iter().all(|line| !line.contains(token)));
    assert!(
        server
            .seen
            .iter()
            .all(|line| !line.contains("incoming message"))
    );
}

#[test]
fn secrets_come_from_the_environment_only() {
    let (status, _, stderr) = support::run_binary(&["--auth-token", "x"], &[]);
    assert_eq!(status.code(), Some(2));
    assert_eq!(
        stderr,
        "whatsapp-webhook: invalid option '--auth-token' (see --help)\n"
    );
    let (status, _, stderr) = support::run_binary(&[], &[("TWILIO_AUTH_TOKEN", "a,b,c")]);
    assert_eq!(status.code(), Some(2));
    assert_eq!(
        stderr,
        "whatsapp-webhook: TWILIO_AUTH_TOKEN holds more than two comma-separated values (two allow a rotation)\n"
    );
}

#[test]
fn a_signature_that_does_not_match_names_the_likely_fix() {
    const KEY: &str = "12345678901234567890123456789012";
    let form = "MessageSid=SM1&From=whatsapp%3A%2B1555&Body=hi";
    let mut server = support::Binary::start(&[], &[("TWILIO_AUTH_TOKEN", KEY)]);
    // Twilio called https, a proxy in front said nothing about it: the server
    // rebuilt http.
    let signed = support::signed_post(KEY, "https://hooks.example.com/whatsapp", form);
    let sent = String::from_utf8(signed)
        .unwrap()
        .replace("Host: example.com", "Host: hooks.example.com");
    assert_eq!(server.request(sent.as_bytes()).status(), 403);
    let warning = server.wait_for("rejected POST /whatsapp");
    assert!(
        warning.ends_with(
            "X-Twilio-Signature does not match (checked URL http://hooks.example.com/whatsapp); \
             it matches https://hooks.example.com/whatsapp: set \
             PUBLIC_URL=https://hooks.example.com"
        ),
        "{warning}"
    );
    // ngrok rewrote Host: the original is in X-Forwarded-Host.
    let signed = support::signed_post(KEY, "https://abc123.ngrok-free.app/whatsapp", form);
    let sent = String::from_utf8(signed).unwrap().replace(
        "Host: example.com",
        "Host: localhost:8767\r\nX-Forwarded-Host: abc123.ngrok-free.app",
    );
    assert_eq!(server.request(sent.as_bytes()).status(), 403);
    let warning = server.wait_for("set PUBLIC_URL=https://abc123.ngrok-free.app");
    assert!(
        warning.contains("(checked URL http://localhost:8767/whatsapp)"),
        "{warning}"
    );
    // Signed with another token: no URL helps.
    let signed = support::signed_post("another-token", "http://example.com/whatsapp", form);
    assert_eq!(server.request(&signed).status(), 403);
    let warning = server.wait_for("the token is the likely cause");
    assert!(
        warning.ends_with(
            "X-Twilio-Signature does not match (checked URL http://example.com/whatsapp); no URL \
             the request could have come through matches it either, so the token is the likely \
             cause: TWILIO_AUTH_TOKEN must be the Auth Token of the account that owns the number"
        ),
        "{warning}"
    );
    for line in &server.seen {
        assert!(!line.contains(KEY), "a secret in the log: {line}");
    }
}
