//! `whatsapp-webhook check`, run as the built binary with a clean
//! environment: against the real server, and against small deliberately
//! broken servers started here, all on 127.0.0.1 and ports the system picks.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use support::Binary;

const TOKEN: &str = "12345678901234567890123456789012";

/// Runs `whatsapp-webhook check` with `args` and nothing in the environment
/// but `env`; returns its exit code and standard output.
fn check(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let args: Vec<&str> = ["check"].iter().chain(args).copied().collect();
    let (status, stdout, stderr) = support::run_binary(&args, env);
    assert_eq!(
        stderr, "",
        "check wrote to standard error; report:\n{stdout}"
    );
    (status.code().expect("an exit code"), stdout)
}

fn url(addr: SocketAddr) -> String {
    format!("http://{addr}/whatsapp")
}

#[test]
fn a_signed_check_of_the_real_server_is_accepted_and_logged_as_a_message() {
    let mut server = Binary::start(&[], &[("TWILIO_AUTH_TOKEN", TOKEN)]);
    let (code, report) = check(&[&url(server.addr)], &[("TWILIO_AUTH_TOKEN", TOKEN)]);
    assert_eq!(code, 0, "{report}");
    let first_line = format!("POST {}\n", url(server.addr));
    assert!(report.starts_with(&first_line), "{report}");
    assert!(
        report.contains("  signed with TWILIO_AUTH_TOKEN, as Twilio signs this URL\n"),
        "{report}"
    );
    assert!(
        report.contains("answer: 200 OK, text/xml; charset=utf-8, 94 bytes, in "),
        "{report}"
    );
    assert!(
        report.ends_with(
            "\nOK: Twilio would accept the answer; the sender would receive:\n  \"What's app, doc?\"\n"
        ),
        "{report}"
    );
    let line = server.wait_for(" incoming message from whatsapp:+15551234567");
    assert!(
        line.ends_with(
            " incoming message from whatsapp:+15551234567 \"whatsapp-webhook check\": Hello"
        ),
        "{line}"
    );
}

#[test]
fn the_default_url_is_the_local_server_from_host_and_port() {
    let server = Binary::start(&["--reply", "Hi!"], &[]);
    let port = server.addr.port().to_string();
    let (code, report) = check(&[], &[("HOST", "0.0.0.0"), ("PORT", &port)]);
    assert_eq!(code, 0, "{report}");
    assert!(
        report.starts_with(&format!(
            "POST http://127.0.0.1:{port}/whatsapp (the local server, from HOST and PORT; with \
             ngrok running, check goes through it)\n  a WhatsApp message \"Hello\" from \
             whatsapp:+15551234567 to whatsapp:+14155238886\n  not signed: TWILIO_AUTH_TOKEN is \
             not set (a server that checks signatures answers 403)\n"
        )),
        "{report}"
    );
    assert!(report.ends_with("would receive:\n  \"Hi!\"\n"), "{report}");
}

#[test]
fn a_wrong_token_gets_403_and_an_explanation() {
    let mut server = Binary::start(&[], &[("TWILIO_AUTH_TOKEN", TOKEN)]);
    let (code, report) = check(&[&url(server.addr)], &[("TWILIO_AUTH_TOKEN", "wrong")]);
    assert_eq!(code, 1, "{report}");
    assert!(report.contains("answer: 403 Forbidden, "), "{report}");
    assert!(
        report.contains(
            "FAIL: Twilio would log error 11200 (HTTP retrieval failure) and send no reply.\n  \
             the answer's status is 403, not 2xx\n"
        ),
        "{report}"
    );
    assert!(
        report.contains(&format!(
            "what to do: the server refused the signature. Twilio signs the exact URL in its \
             console, here {}, with the Auth Token of the account.",
            url(server.addr)
        )),
        "{report}"
    );
    assert!(
        report.contains("  see https://www.twilio.com/docs/api/errors/11200\n"),
        "{report}"
    );
    server.wait_for("rejected POST /whatsapp: X-Twilio-Signature does not match");

    // Unsigned, the report says why the server may refuse it.
    let (code, report) = check(&[&url(server.addr)], &[]);
    assert_eq!(code, 1, "{report}");
    assert!(
        report.contains("what to do: the server may check signatures: set TWILIO_AUTH_TOKEN"),
        "{report}"
    );
}

#[test]
fn get_sends_the_parameters_in_the_signed_query_string() {
    let mut server = Binary::start(&[], &[("TWILIO_AUTH_TOKEN", TOKEN)]);
    // A query string of its own, and a port that is not the scheme's.
    let target = format!("{}?site=north&x=a%20b", url(server.addr));
    let (code, report) = check(
        &["--get", "--body", "Tom & Jerry", &target],
        &[("TWILIO_AUTH_TOKEN", TOKEN)],
    );
    assert_eq!(code, 0, "{report}");
    assert!(report.starts_with(&format!("GET {target}\n")), "{report}");
    let line = server.wait_for(" incoming message from ");
    assert!(line.ends_with(": Tom & Jerry"), "{line}");
}

#[test]
fn media_and_extra_parameters_reach_the_server() {
    let mut server = Binary::start(&[], &[("TWILIO_AUTH_TOKEN", TOKEN)]);
    let (code, report) = check(
        &[
            &url(server.addr),
            "--body",
            "",
            "--media",
            "https://example.com/cat.jpg",
            "--param",
            "Latitude=52.516275",
            "--param",
            "Longitude=13.377704",
            "--param",
            "ProfileName=Ada",
        ],
        &[("TWILIO_AUTH_TOKEN", TOKEN)],
    );
    assert_eq!(code, 0, "{report}");
    assert!(report.contains(", with 1 media\n"), "{report}");
    let line = server.wait_for(" incoming message from ");
    assert!(
        line.contains(
            " incoming message from whatsapp:+15551234567 \"Ada\"; media: image/jpeg \
             https://example.com/cat.jpg; location: 52.516275,13.377704"
        ),
        "{line}"
    );
    assert!(
        line.contains("] MM"),
        "a message with media has an MM sid: {line}"
    );
}

/// The arguments of a command line quoted as `Request::curl` quotes them.
fn shell_words(command: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut chars = command.chars();
    let mut started = false;
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                started = true;
                for quoted in chars.by_ref() {
                    if quoted == '\'' {
                        break;
                    }
                    word.push(quoted);
                }
            }
            '\\' => match chars.next() {
                Some('\n') => {}
                Some(escaped) => {
                    started = true;
                    word.push(escaped);
                }
                None => {}
            },
            ' ' | '\n' => {
                if started {
                    words.push(std::mem::take(&mut word));
                    started = false;
                }
            }
            other => {
                started = true;
                word.push(other);
            }
        }
    }
    if started {
        words.push(word);
    }
    words
}

/// What a curl command sends: URL, header fields and body.
struct Curl {
    url: String,
    headers: Vec<(String, String)>,
    body: String,
}

fn parse_curl(command: &str) -> Curl {
    let command: String = command
        .lines()
        .filter(|line| !line.starts_with('#'))
        .map(|line| format!("{line}\n"))
        .collect();
    let words = shell_words(&command);
    assert_eq!(words[0], "curl", "{command}");
    let mut curl = Curl {
        url: String::new(),
        headers: Vec::new(),
        body: String::new(),
    };
    let mut words = words.into_iter().skip(1);
    while let Some(word) = words.next() {
        match word.as_str() {
            "--header" => {
                let field = words.next().expect("a header");
                let (name, value) = field.split_once(": ").expect("name: value");
                curl.headers.push((name.to_owned(), value.to_owned()));
            }
            "--data-raw" => curl.body = words.next().expect("a body"),
            "--request" => assert_eq!(words.next().as_deref(), Some("POST")),
            flag if flag.starts_with("--") => {}
            url => curl.url = url.to_owned(),
        }
    }
    curl
}

impl Curl {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(known, _)| known == name)
            .map(|(_, value)| value.as_str())
    }
}

#[test]
fn curl_prints_a_command_whose_signature_the_server_accepts() {
    let target = "https://abc123.ngrok-free.app:8443/whatsapp?site=north";
    let (code, command) = check(
        &["--curl", "--body", "it's $HOME", target],
        &[("TWILIO_AUTH_TOKEN", TOKEN)],
    );
    assert_eq!(code, 0, "{command}");
    let curl = parse_curl(&command);
    assert_eq!(curl.url, target);
    assert_eq!(curl.header("User-Agent"), Some("TwilioProxy/1.1"));
    assert_eq!(
        curl.header("Content-Type"),
        Some("application/x-www-form-urlencoded")
    );
    assert!(curl.body.contains("&Body=it%27s+%24HOME&"), "{}", curl.body);
    // Made by the tests' own signer, from Twilio's documented rule.
    assert_eq!(
        curl.header("X-Twilio-Signature"),
        Some(support::twilio_signature(TOKEN, &curl.url, &curl.body).as_str()),
        "{command}"
    );

    // Unsigned, the command says so.
    let (code, command) = check(&["--curl", target], &[]);
    assert_eq!(code, 0);
    assert!(
        command.starts_with("# not signed: TWILIO_AUTH_TOKEN is not set"),
        "{command}"
    );
    assert_eq!(parse_curl(&command).header("X-Twilio-Signature"), None);
}

#[test]
fn the_signature_is_the_public_vectors_algorithm_for_a_query_and_a_port() {
    // The algorithm of Twilio's helper libraries, as the vectors in
    // tests/data/ were made: HMAC-SHA1 of the URL and then every parameter
    // name and value, sorted by name, in Base64.
    let target = "https://example.com:8443/bot/whatsapp?b=2&a=1%202";
    let (code, command) = check(
        &["--curl", "--param", "Zeta=last", target],
        &[("TWILIO_AUTH_TOKEN", TOKEN)],
    );
    assert_eq!(code, 0, "{command}");
    let curl = parse_curl(&command);
    let mut params: Vec<(String, String)> = form_urlencoded::parse(curl.body.as_bytes())
        .into_owned()
        .collect();
    params.sort();
    let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(TOKEN.as_bytes()).expect("any key");
    mac.update(target.as_bytes());
    for (name, value) in &params {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    let expected = STANDARD.encode(mac.finalize().into_bytes());
    assert_eq!(curl.header("X-Twilio-Signature"), Some(expected.as_str()));
}

/// A server that answers every request with the same bytes, after a delay;
/// it records each request it reads and stops when dropped.
struct Canned {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Canned {
    fn new(response: &str) -> Canned {
        Canned::slow(response, Duration::ZERO)
    }

    fn slow(response: &str, delay: Duration) -> Canned {
        let response = response.to_owned();
        Canned::serving(move |_| (response.clone(), delay))
    }

    /// Answers each request with what `answer` returns for its head.
    fn serving(answer: impl Fn(&str) -> (String, Duration) + Send + 'static) -> Canned {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (stopped, seen) = (Arc::clone(&stop), Arc::clone(&requests));
        thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let request = read_request(&stream);
                let (response, delay) = answer(&request);
                seen.lock().expect("not poisoned").push(request);
                thread::sleep(delay);
                let _ = (&stream).write_all(response.as_bytes());
            }
        });
        Canned {
            addr,
            stop,
            requests,
        }
    }

    fn url(&self) -> String {
        format!("http://{}/whatsapp", self.addr)
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().expect("not poisoned").clone()
    }
}

impl Drop for Canned {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accepting thread, which then sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

/// Reads one request's head and body.
fn read_request(stream: &TcpStream) -> String {
    let _ = stream.set_read_timeout(Some(support::PATIENCE));
    let mut reader = BufReader::new(stream);
    let mut request = String::new();
    let mut length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return request;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        request.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    request.push_str(&String::from_utf8_lossy(&body));
    request
}

fn response(status: &str, content_type: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// Checks `server` and returns the exit code and the report's verdict: the
/// lines after the blank line.
fn verdict(server: &Canned, args: &[&str]) -> (i32, String) {
    let mut all = vec![server.url()];
    all.extend(args.iter().map(|arg| arg.to_string()));
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    let (code, report) = check(&all, &[]);
    let verdict = report
        .split_once("\n\n")
        .map(|(_, verdict)| verdict.to_owned())
        .unwrap_or_else(|| panic!("no verdict in {report}"));
    (code, verdict)
}

#[test]
fn check_sends_twilios_parameters_and_headers() {
    let server = Canned::new(&response("200 OK", "text/xml", "<Response/>"));
    let (code, verdict) = verdict(&server, &[]);
    assert_eq!(code, 0);
    assert_eq!(
        verdict,
        "OK: Twilio would accept the answer and send no reply.\n"
    );
    let requests = server.requests();
    let request = &requests[0];
    assert!(
        request.starts_with("POST /whatsapp HTTP/1.1\r\n"),
        "{request}"
    );
    for field in [
        "user-agent: TwilioProxy/1.1\r\n",
        "accept: */*\r\n",
        "x-home-region: us1\r\n",
        "content-type: application/x-www-form-urlencoded\r\n",
    ] {
        let field = field.to_ascii_lowercase();
        assert!(
            request.to_ascii_lowercase().contains(&field),
            "{field} in {request}"
        );
    }
    assert!(
        request
            .to_ascii_lowercase()
            .contains("i-twilio-idempotency-token: ")
    );
    assert!(!request.to_ascii_lowercase().contains("x-twilio-signature"));
    let body = request.split("\r\n\r\n").nth(1).expect("a body");
    let names: Vec<String> = form_urlencoded::parse(body.as_bytes())
        .map(|(name, _)| name.into_owned())
        .collect();
    for name in [
        "MessageSid",
        "SmsMessageSid",
        "SmsSid",
        "AccountSid",
        "From",
        "To",
        "Body",
        "NumMedia",
        "NumSegments",
        "ProfileName",
        "WaId",
        "SmsStatus",
        "MessageType",
        "ApiVersion",
    ] {
        assert!(names.iter().any(|known| known == name), "{name} in {body}");
    }
}

#[test]
fn a_500_is_11200() {
    let server = Canned::new(&response(
        "500 Internal Server Error",
        "text/html",
        "<h1>Internal Server Error</h1>",
    ));
    let (code, verdict) = verdict(&server, &[]);
    assert_eq!(code, 1);
    assert_eq!(
        verdict,
        "FAIL: Twilio would log error 11200 (HTTP retrieval failure) and send no reply.\n  \
         the answer's status is 500, not 2xx\n  the answer began: \
         \"<h1>Internal Server Error</h1>\"\n  what to do: look at the server's log for the \
         error behind the 500\n  see https://www.twilio.com/docs/api/errors/11200\n"
    );
}

#[test]
fn plain_text_fails_and_shows_what_twilio_would_text_back() {
    let server = Canned::new(&response("200 OK", "text/plain; charset=utf-8", "Thanks!"));
    let (code, verdict) = verdict(&server, &[]);
    assert_eq!(code, 1);
    assert_eq!(
        verdict,
        "FAIL: Twilio would accept the answer, but it is almost certainly not what was meant.\n  \
         the answer is text/plain, which Twilio texts back as it is: the sender would receive \
         \"Thanks!\"\n  what to do: answer TwiML with Content-Type: text/xml, such as \
         <Response><Message>...</Message></Response>\n"
    );
}

#[test]
fn invalid_xml_is_12100() {
    let server = Canned::new(&response(
        "200 OK",
        "text/xml",
        "<Response><Message>Tom & Jerry</Message></Response>",
    ));
    let (code, verdict) = verdict(&server, &[]);
    assert_eq!(code, 1);
    assert!(
        verdict.starts_with(
            "FAIL: Twilio would log error 12100 (document parse failure) and send no reply.\n  \
             the answer is not well-formed XML: "
        ),
        "{verdict}"
    );
    assert!(verdict.ends_with("see https://www.twilio.com/docs/api/errors/12100\n"));
}

#[test]
fn json_is_12300() {
    let server = Canned::new(&response("200 OK", "application/json", r#"{"reply":"Hi"}"#));
    let (code, verdict) = verdict(&server, &[]);
    assert_eq!(code, 1);
    assert!(
        verdict.starts_with(
            "FAIL: Twilio would log error 12300 (invalid Content-Type) and send no reply.\n  \
             the answer's Content-Type is \"application/json\", not XML\n"
        ),
        "{verdict}"
    );
}

#[test]
fn a_wrong_root_is_12200() {
    let server = Canned::new(&response(
        "200 OK",
        "text/xml",
        "<Reply><Message>Hi</Message></Reply>",
    ));
    let (code, verdict) = verdict(&server, &[]);
    assert_eq!(code, 1);
    assert!(
        verdict.starts_with(
            "FAIL: Twilio would log error 12200 (schema validation warning) and send no \
             reply.\n  the answer is XML but not Messaging TwiML: the root element is <Reply>, \
             not <Response>\n"
        ),
        "{verdict}"
    );
}

#[test]
fn a_reply_over_1600_characters_is_21617() {
    let long = format!(
        "<Response><Message>{}</Message></Response>",
        "a".repeat(1601)
    );
    let server = Canned::new(&response("200 OK", "text/xml", &long));
    let (code, verdict) = verdict(&server, &[]);
    assert_eq!(code, 1);
    assert!(
        verdict.starts_with(
            "FAIL: Twilio would log error 21617 (the message body exceeds the 1600 character \
             limit) and send no reply.\n  a message is 1601 characters long; Twilio sends at \
             most 1600\n"
        ),
        "{verdict}"
    );
}

#[test]
fn an_answer_slower_than_the_timeout_is_11200() {
    let server = Canned::slow(
        &response("200 OK", "text/xml", "<Response/>"),
        Duration::from_secs(3),
    );
    let (code, verdict) = verdict(&server, &["--timeout", "1"]);
    assert_eq!(code, 1);
    assert!(
        verdict.starts_with(
            "FAIL: Twilio would log error 11200 (HTTP retrieval failure) and send no reply.\n  \
             no complete answer within 1 s\n  what to do: answer at once"
        ),
        "{verdict}"
    );
}

#[test]
fn a_closed_port_is_11205() {
    let addr = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener.local_addr().expect("local address")
    };
    let (code, report) = check(&[&url(addr)], &[]);
    assert_eq!(code, 1, "{report}");
    assert!(
        report.contains(
            "\n\nFAIL: Twilio would log error 11205 (HTTP connection failure) and send no \
             reply.\n  the connection was refused: nothing listens at that address and port\n"
        ),
        "{report}"
    );
    // The local server's own address: the advice is to start it.
    let (code, report) = check(&[], &[("PORT", &addr.port().to_string())]);
    assert_eq!(code, 1, "{report}");
    assert!(
        report.contains(
            "what to do: start the server in a terminal of its own (cargo run --release)"
        ),
        "{report}"
    );
}

#[test]
fn a_connection_closed_without_an_answer_is_11200() {
    let server = Canned::new("");
    let (code, verdict) = verdict(&server, &[]);
    assert_eq!(code, 1);
    assert!(
        verdict.starts_with(
            "FAIL: Twilio would log error 11200 (HTTP retrieval failure) and send no reply.\n"
        ),
        "{verdict}"
    );
}

#[test]
fn html_twiml_as_flask_sends_it_is_accepted() {
    let server = Canned::new(&response(
        "200 OK",
        "text/html; charset=utf-8",
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Message>What's app, doc?</Message></Response>",
    ));
    let (code, verdict) = verdict(&server, &[]);
    assert_eq!(code, 0);
    assert_eq!(
        verdict,
        "OK: Twilio would accept the answer; the sender would receive:\n  \"What's app, doc?\"\n"
    );
}

#[test]
fn redirects_are_followed_and_signed_again_for_their_url() {
    let server = Canned::serving(|request| {
        let answer = if request.starts_with("POST /whatsapp ") {
            "HTTP/1.1 308 Permanent Redirect\r\nLocation: /whatsapp/\r\nContent-Length: 0\r\n\r\n"
                .to_owned()
        } else {
            response(
                "200 OK",
                "text/xml",
                "<Response><Message>moved</Message></Response>",
            )
        };
        (answer, Duration::ZERO)
    });
    let (code, report) = check(&[&server.url()], &[("TWILIO_AUTH_TOKEN", TOKEN)]);
    assert_eq!(code, 0, "{report}");
    let moved = format!("{}/", server.url());
    assert!(
        report.contains(&format!("  redirected (308) to {moved}\n")),
        "{report}"
    );
    assert!(
        report.ends_with(&format!(
            "  \"moved\"\n  note: Twilio follows redirects, but each costs a round trip: \
             configure {moved} in Twilio\n"
        )),
        "{report}"
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    let second = &requests[1];
    assert!(
        second.starts_with("POST /whatsapp/ HTTP/1.1\r\n"),
        "{second}"
    );
    let (head, body) = second.split_once("\r\n\r\n").expect("head and body");
    let signature = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(": ")?;
            name.eq_ignore_ascii_case("x-twilio-signature")
                .then_some(value)
        })
        .expect("a signature");
    assert_eq!(signature, support::twilio_signature(TOKEN, &moved, body));
}

#[test]
fn bad_usage_exits_2_with_the_reason() {
    let (status, _, stderr) = support::run_binary(&["check", "--param", "nope"], &[]);
    assert_eq!(status.code(), Some(2));
    assert_eq!(
        stderr,
        "whatsapp-webhook: invalid value \"nope\" for --param: expected NAME=VALUE, such as \
         Latitude=52.37\n"
    );
    let (code, help) = check(&["--help"], &[]);
    assert_eq!(code, 0);
    assert!(help.starts_with("whatsapp-webhook check: "), "{help}");
}

#[test]
fn a_host_name_that_does_not_resolve_is_11210() {
    // `.invalid` never resolves (RFC 2606), with or without a network.
    let (code, report) = check(&["http://no-such-host.invalid/whatsapp"], &[]);
    assert_eq!(code, 1, "{report}");
    assert!(
        report.contains(
            "\n\nFAIL: Twilio would log error 11210 (HTTP bad host name) and send no reply.\n  \
             the URL's host name cannot be resolved\n"
        ),
        "{report}"
    );
}

#[test]
fn https_to_a_plain_http_server_is_11220() {
    let server = Binary::start(&[], &[]);
    let (code, report) = check(&[&format!("https://{}/whatsapp", server.addr)], &[]);
    assert_eq!(code, 1, "{report}");
    assert!(
        report.contains(
            "FAIL: Twilio would log error 11220 (SSL/TLS handshake error) and send no reply.\n"
        ),
        "{report}"
    );
    assert!(
        report.contains("what to do: the port does not speak HTTPS: use an http:// URL"),
        "{report}"
    );
}

/// An HTTPS server with a certificate made here for 127.0.0.1, signed by
/// itself: `openssl s_server`, on a port of its own; killed when dropped.
struct SelfSigned {
    child: std::process::Child,
    port: u16,
    _dir: support::TempDir,
}

impl SelfSigned {
    /// `ca` makes a certificate that says it is an authority (as `openssl
    /// req -x509` does by default); otherwise an end entity's.
    fn start(openssl: &std::path::Path, ca: bool) -> SelfSigned {
        let dir = support::TempDir::new("tls");
        let mut made = Command::new(openssl);
        made.args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args([
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        if !ca {
            made.args(["-addext", "basicConstraints=critical,CA:FALSE"]);
        }
        assert!(made.status().expect("run openssl req").success());
        // A port of its own: bound, read back, freed for s_server at once.
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(openssl)
            .args(["s_server", "-quiet", "-www", "-accept"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("-cert")
            .arg(dir.join("cert.pem"))
            .arg("-key")
            .arg(dir.join("key.pem"))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start openssl s_server");
        let deadline = std::time::Instant::now() + support::PATIENCE;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "s_server did not start"
            );
            thread::sleep(Duration::from_millis(20));
        }
        SelfSigned {
            child,
            port,
            _dir: dir,
        }
    }
}

impl Drop for SelfSigned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_self_signed_certificate_is_11237() {
    let Some(openssl) = support::program("openssl", &[]) else {
        return support::skipped("check: a self-signed certificate", "openssl not found");
    };
    for ca in [true, false] {
        let server = SelfSigned::start(&openssl, ca);
        let (code, report) = check(
            &[&format!("https://127.0.0.1:{}/whatsapp", server.port)],
            &[],
        );
        assert_eq!(code, 1, "{report}");
        assert!(
            report.contains(
                "FAIL: Twilio would log error 11237 (certificate invalid) and send no reply.\n  \
                 the server's certificate is not valid"
            ),
            "{ca}: {report}"
        );
    }
}

#[test]
fn a_malformed_url_is_bad_usage() {
    for url in ["http://[::1/x", "http://exa mple.com/", "http:///whatsapp"] {
        let (status, stdout, stderr) = support::run_binary(&["check", url], &[]);
        assert_eq!(status.code(), Some(2), "{url}");
        assert_eq!(stdout, "", "{url}");
        assert!(
            stderr.starts_with(&format!("whatsapp-webhook: invalid value {url:?} for URL")),
            "{stderr}"
        );
    }
}
