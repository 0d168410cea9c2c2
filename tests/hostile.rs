//! Hostile and malformed input, sent over raw TCP to the built binary: for
//! every case the server stays up, answers the next normal request, and
//! never prints raw panic output (its stderr is checked).

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use socket2::SockRef;
use support::{Binary, DEFAULT_TWIML, TWILIO_WHATSAPP_FORM, connect, post_form};

/// The server's timeout in these tests, in seconds.
const TIMEOUT: &str = "2";

/// What the client does after sending a case's bytes.
#[derive(Clone, Copy, Debug)]
enum Then {
    /// Half-closes: the server sees the end of the stream.
    Shutdown,
    /// Waits, sending nothing more, until the server answers or closes.
    Wait,
    /// Resets the connection at once.
    Reset,
}

/// What the server must answer.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// These statuses, in this order, and nothing else.
    Statuses(&'static [u16]),
    /// A refusal with this status, which says `Connection: close`. What the
    /// client sent after it is read as its next requests: here the rest of
    /// a chunked body, which is not a request, gets tiny_http's own `400`.
    Refused(u16),
    /// No answer, and the server closes the connection.
    Nothing,
    /// No answer, and the connection is held open past the client's wait:
    /// a request parked unanswered, or a thread tiny_http deadlocked.
    Held,
    /// The client resets the connection (`Then::Reset`) and reads nothing:
    /// only that the server stays up, and answers the next request, is
    /// checked.
    Gone,
}

struct Case {
    name: &'static str,
    bytes: Vec<u8>,
    then: Then,
    expect: Expect,
}

fn case(name: &'static str, bytes: impl Into<Vec<u8>>, then: Then, expect: Expect) -> Case {
    Case {
        name,
        bytes: bytes.into(),
        then,
        expect,
    }
}

const OK: Expect = Expect::Statuses(&[200]);

fn get(target: &str, headers: &str) -> Vec<u8> {
    format!("GET {target} HTTP/1.1\r\nHost: x\r\n{headers}\r\n").into_bytes()
}

fn post(headers: &str, body: &[u8]) -> Vec<u8> {
    let mut request = format!(
        "POST /whatsapp HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n{headers}\r\n"
    )
    .into_bytes();
    request.extend_from_slice(body);
    request
}

fn battery() -> Vec<Case> {
    use Expect::*;
    use Then::*;
    let big = "a".repeat(1 << 20);
    let many_headers: String = (0..10_000).map(|i| format!("X-H{i}: v\r\n")).collect();
    let many_params: String = (0..100_000).map(|i| format!("p{i}=v&")).collect();
    let pipelined: Vec<u8> = (0..100).flat_map(|_| get("/whatsapp", "")).collect();
    // tiny_http reads on right after a refused chunked head: a request in
    // the body is read as the client's next one, after the refusal (behind a
    // proxy, which frames bodies itself, it never is: tests/deploy.rs).
    let hidden = post(
        "Transfer-Encoding: chunked\r\n",
        b"GET /whatsapp?Body=hidden HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    vec![
        case("empty connection", "", Shutdown, Nothing),
        case("only a line break", "\r\n", Shutdown, Statuses(&[400])),
        case(
            "TLS handshake bytes",
            &b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"[..],
            Shutdown,
            Nothing,
        ),
        case(
            "binary garbage",
            (0..=255u8).collect::<Vec<u8>>(),
            Shutdown,
            Nothing,
        ),
        case(
            "request line without version",
            "GET /whatsapp\r\n\r\n",
            Shutdown,
            Statuses(&[400]),
        ),
        case(
            "request line with double spaces",
            "GET  /whatsapp  HTTP/1.1\r\n\r\n",
            Shutdown,
            Statuses(&[400]),
        ),
        case(
            "unknown HTTP version",
            "GET /whatsapp HTTP/1.2\r\n\r\n",
            Shutdown,
            Statuses(&[400]),
        ),
        case(
            "lowercase method",
            "get /whatsapp HTTP/1.1\r\nHost: x\r\n\r\n",
            Shutdown,
            Statuses(&[405]),
        ),
        case(
            "unknown method",
            "FROB /whatsapp HTTP/1.1\r\nHost: x\r\n\r\n",
            Shutdown,
            Statuses(&[405]),
        ),
        case(
            "10 KiB method",
            format!("{} /whatsapp HTTP/1.1\r\n\r\n", "M".repeat(10240)),
            Shutdown,
            Statuses(&[405]),
        ),
        // tiny_http 0.12 deadlocks the connection thread on HTTP/2.0: the
        // thread and its socket leak, but the server goes on.
        case(
            "HTTP/2.0 request line",
            "GET /whatsapp HTTP/2.0\r\n\r\n",
            Shutdown,
            Held,
        ),
        case(
            "HTTP/0.9 request line",
            "GET /whatsapp HTTP/0.9\r\n\r\n",
            Shutdown,
            OK,
        ),
        case(
            "absolute-form target",
            get("http://evil.example/whatsapp", ""),
            Shutdown,
            Statuses(&[404]),
        ),
        case(
            "asterisk target",
            "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
            Shutdown,
            Statuses(&[404]),
        ),
        case(
            "NUL in the target",
            &b"GET /whats\0app HTTP/1.1\r\n\r\n"[..],
            Shutdown,
            Statuses(&[404]),
        ),
        case(
            "control bytes in a header value",
            &b"GET /whatsapp HTTP/1.1\r\nX-A: a\x01\x02\x7fb\r\n\r\n"[..],
            Shutdown,
            OK,
        ),
        case(
            "non-ASCII header value",
            "GET /whatsapp HTTP/1.1\r\nX-A: caf\u{e9}\r\n\r\n",
            Shutdown,
            Nothing,
        ),
        case(
            "header without a colon",
            get("/whatsapp", "NoColon\r\n"),
            Shutdown,
            Statuses(&[400]),
        ),
        case(
            "folded header line",
            get("/whatsapp", "X-A: b\r\n c\r\n"),
            Shutdown,
            Statuses(&[400]),
        ),
        case(
            "bare LF line endings",
            "GET /whatsapp HTTP/1.1\nHost: x\n\n",
            Shutdown,
            Nothing,
        ),
        case(
            "CR without LF",
            "GET /whatsapp HTTP/1.1\rHost: x\r\r",
            Shutdown,
            Nothing,
        ),
        case(
            "no Host header",
            "GET /whatsapp HTTP/1.1\r\n\r\n",
            Shutdown,
            OK,
        ),
        case(
            "1 MiB header",
            get("/whatsapp", &format!("X-Big: {big}\r\n")),
            Shutdown,
            OK,
        ),
        case(
            "10 000 headers",
            get("/whatsapp", &many_headers),
            Shutdown,
            OK,
        ),
        case(
            "1 MiB query string",
            get(&format!("/whatsapp?Body={big}"), ""),
            Shutdown,
            OK,
        ),
        case(
            "100 000 query parameters",
            get(&format!("/whatsapp?{many_params}"), ""),
            Shutdown,
            OK,
        ),
        case(
            "invalid UTF-8 in the query",
            get("/whatsapp?Body=%FF%FE&From=%C3%28", ""),
            Shutdown,
            OK,
        ),
        case(
            "invalid percent-encoding in the body",
            post("Content-Length: 16\r\n", b"Body=%zz%&From=%"),
            Shutdown,
            OK,
        ),
        case(
            "NUL and control bytes in the body",
            post("Content-Length: 20\r\n", b"Body=\0\x01\x1b[2J\r\n&From=x"),
            Shutdown,
            OK,
        ),
        case(
            "raw invalid UTF-8 in the body",
            post("Content-Length: 9\r\n", b"Body=\xff\xfe\xc3("),
            Shutdown,
            OK,
        ),
        case(
            "a body of 64 KiB of ampersands",
            post("Content-Length: 65536\r\n", &[b'&'; 65536]),
            Shutdown,
            OK,
        ),
        case(
            "two equal Content-Lengths",
            post("Content-Length: 6\r\nContent-Length: 6\r\n", b"Body=x"),
            Shutdown,
            OK,
        ),
        case(
            "two different Content-Lengths",
            post("Content-Length: 6\r\nContent-Length: 7\r\n", b"Body=x"),
            Shutdown,
            Statuses(&[400]),
        ),
        case(
            "negative Content-Length",
            post("Content-Length: -1\r\n", b""),
            Shutdown,
            Statuses(&[400]),
        ),
        case(
            "Content-Length with a plus sign",
            post("Content-Length: +6\r\n", b"Body=x"),
            Shutdown,
            Statuses(&[400]),
        ),
        case(
            "Content-Length beyond 64 bits",
            post("Content-Length: 99999999999999999999999\r\n", b"Body=x"),
            Shutdown,
            Statuses(&[400]),
        ),
        case(
            "Content-Length over the limit, no body",
            post("Content-Length: 70000\r\n", b""),
            Shutdown,
            Statuses(&[413]),
        ),
        // tiny_http would allocate the whole announced body to discard it:
        // such requests are parked, unanswered.
        case(
            "Content-Length of 2^64 - 1",
            post("Content-Length: 18446744073709551615\r\n", b"Body=x"),
            Shutdown,
            Held,
        ),
        case(
            "Content-Length of 100 TB, then a reset",
            post("Content-Length: 100000000000000\r\n", b"Body=x"),
            Reset,
            Gone,
        ),
        case(
            "small body shorter than announced",
            post("Content-Length: 50\r\n", b"Body=x"),
            Shutdown,
            Nothing,
        ),
        case(
            "large body shorter than announced",
            post("Content-Length: 5000\r\n", b"Body=x"),
            Shutdown,
            Statuses(&[400]),
        ),
        case(
            "body that stalls",
            post("Content-Length: 5000\r\n", b"Body=x"),
            Wait,
            Statuses(&[408]),
        ),
        case(
            "headers that stall",
            "POST /whatsapp HTTP/1.1\r\nHost: x\r\n",
            Wait,
            Nothing,
        ),
        case(
            "Transfer-Encoding: chunked",
            post(
                "Transfer-Encoding: chunked\r\n",
                b"6\r\nBody=x\r\n0\r\n\r\n",
            ),
            Shutdown,
            Refused(411),
        ),
        case(
            "Transfer-Encoding with Content-Length",
            post(
                "Transfer-Encoding: chunked\r\nContent-Length: 6\r\n",
                b"Body=x",
            ),
            Shutdown,
            Refused(400),
        ),
        case(
            "Transfer-Encoding: xchunked",
            post("Transfer-Encoding: xchunked\r\n", b"Body=x"),
            Shutdown,
            Refused(411),
        ),
        case(
            "a request in a refused chunked body",
            hidden,
            Shutdown,
            Statuses(&[411, 200]),
        ),
        case(
            "Expect: 100-continue",
            post("Content-Length: 6\r\nExpect: 100-continue\r\n", b"Body=x"),
            Shutdown,
            Statuses(&[100, 200]),
        ),
        case(
            "unknown Expect",
            get("/whatsapp", "Expect: tea\r\n"),
            Shutdown,
            Statuses(&[417]),
        ),
        case(
            "100 pipelined requests",
            pipelined,
            Shutdown,
            Statuses(&[200; 100]),
        ),
        case(
            "HTTP/1.0 keep-alive",
            "GET /whatsapp HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /healthz HTTP/1.0\r\n\r\n",
            Shutdown,
            Statuses(&[200, 200]),
        ),
        case(
            "reset mid-headers",
            "POST /whatsapp HTTP/1.1\r\nHost: x\r\nContent-Le",
            Reset,
            Gone,
        ),
        case(
            "reset mid-body",
            post("Content-Length: 5000\r\n", b"Body=x"),
            Reset,
            Gone,
        ),
        case(
            "reset right after a whole request",
            post_form(TWILIO_WHATSAPP_FORM),
            Reset,
            Gone,
        ),
        case(
            "a body on GET /healthz",
            "GET /healthz HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
            Shutdown,
            OK,
        ),
        case(
            "a body on HEAD",
            "HEAD /whatsapp HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
            Shutdown,
            OK,
        ),
    ]
}

/// How a connection ended, seen from the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    /// The server closed it (end of stream, or a reset for unread bytes).
    Closed,
    /// It was still open, and silent, when the client stopped waiting.
    StillOpen,
    /// The client reset it, and read nothing.
    ResetByClient,
}

/// How long a client waits for the server to answer or close: well past
/// the server's timeout, so that only a connection the server forgot is
/// still open then.
const CLIENT_WAITS: Duration = Duration::from_secs(8);

/// Plays one case and returns the status codes received, in order, and how
/// the connection ended.
fn play(addr: SocketAddr, case: &Case) -> (Vec<u16>, End) {
    let mut stream = connect(addr);
    stream.set_read_timeout(Some(CLIENT_WAITS)).unwrap();
    // A server that refuses early may close before all is sent: fine.
    let _ = stream.write_all(&case.bytes);
    match case.then {
        Then::Shutdown => {
            let _ = stream.shutdown(Shutdown::Write);
        }
        Then::Wait => {}
        Then::Reset => {
            SockRef::from(&stream)
                .set_linger(Some(Duration::ZERO))
                .unwrap();
            return (Vec::new(), End::ResetByClient);
        }
    }
    let mut received = Vec::new();
    let mut buf = [0u8; 65536];
    let end = loop {
        match stream.read(&mut buf) {
            Ok(0) => break End::Closed,
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                break End::StillOpen;
            }
            Err(error) if error.kind() == ErrorKind::ConnectionReset => break End::Closed,
            Err(error) => panic!("{}: reading failed: {error}", case.name),
        }
    };
    (statuses(&received), end)
}

/// The status codes of the responses in `bytes`.
fn statuses(bytes: &[u8]) -> Vec<u16> {
    let text = String::from_utf8_lossy(bytes);
    text.match_indices("HTTP/")
        .filter(|(at, _)| *at == 0 || text[..*at].ends_with('\n') || text[..*at].ends_with('>'))
        .filter_map(|(at, _)| text[at..].split(' ').nth(1)?.parse().ok())
        .collect()
}

fn assert_answers_normally(addr: SocketAddr, after: &str) {
    let mut stream = connect(addr);
    stream.write_all(&post_form(TWILIO_WHATSAPP_FORM)).unwrap();
    let response = support::read_response(&mut std::io::BufReader::new(stream), false);
    assert_eq!(response.status(), 200, "after {after}");
    assert_eq!(response.body_text(), DEFAULT_TWIML, "after {after}");
}

#[test]
fn every_hostile_case_leaves_the_server_up_and_nothing_panics() {
    let mut server = Binary::start(&["--timeout", TIMEOUT], &[]);
    let addr = server.addr;
    let cases = battery();
    assert!(cases.len() >= 40, "{} cases", cases.len());
    thread::scope(|scope| {
        for case in &cases {
            scope.spawn(move || {
                let (got, end) = play(addr, case);
                let name = case.name;
                match case.expect {
                    Expect::Statuses(expected) => {
                        assert_eq!((&got[..], end), (expected, End::Closed), "{name}");
                    }
                    Expect::Refused(status) => {
                        assert_eq!(got.first(), Some(&status), "{name}: {got:?}");
                        assert!(got[1..].iter().all(|&later| later == 400), "{name}");
                        assert_eq!(end, End::Closed, "{name}");
                    }
                    Expect::Nothing => {
                        assert_eq!((&got[..], end), (&[][..], End::Closed), "{name}")
                    }
                    Expect::Held => {
                        assert_eq!((&got[..], end), (&[][..], End::StillOpen), "{name}")
                    }
                    Expect::Gone => assert_eq!(end, End::ResetByClient, "{name}: resets"),
                }
                if end == End::ResetByClient {
                    assert!(matches!(case.expect, Expect::Gone), "{name}: expects Gone");
                }
                assert_answers_normally(addr, case.name);
            });
        }
    });
    assert_answers_normally(addr, "all cases");
    stop(&mut server);
    assert_no_panic_output_and_no_error_but_the_known_one(&server.seen);
}

/// tiny_http 0.12 reads a connection's peer address when it accepts it, and
/// unwraps that result once the request head is read. A client that sends a
/// head and resets the connection before tiny_http accepts it (easy while
/// the accept queue is busy) makes that connection's thread panic with
/// `NotConnected`. Only that thread ends, for a connection its client
/// abandoned; it happens before any request reaches this crate, so nothing
/// here can prevent it, but the panic hook tells it as one error line. No raw
/// panic output may reach stderr, and no other error.
fn assert_no_panic_output_and_no_error_but_the_known_one(stderr: &[String]) {
    for line in stderr {
        assert!(
            !line.contains("panicked at"),
            "raw panic output: {line}\n{stderr:#?}"
        );
        if line.contains(" ERROR ") {
            assert!(
                line.contains("tiny_http failed on a connection whose client had already gone"),
                "unexpected error: {line}\n{stderr:#?}"
            );
        }
    }
}

#[test]
fn a_request_line_cannot_forge_a_log_line() {
    let mut server = Binary::start(&["--timeout", TIMEOUT], &[]);
    let forged =
        "X\n[2026-01-01T00:00:00Z\tINFO\twhatsapp_webhook::answer]\tSM1\tincoming\tmessage\x1b[2J";
    // Refused for its framing: its warning names the method and the path.
    let request = format!(
        "{forged} /whatsapp\x1b[1m HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    let mut stream = connect(server.addr);
    stream.write_all(request.as_bytes()).unwrap();
    let response = support::read_response(&mut std::io::BufReader::new(stream), false);
    assert_eq!(response.status(), 411);
    let warning = server.wait_for("refused X");
    let escaped = r"refused X\n[2026-01-01T00:00:00Z\tINFO\twhatsapp_webhook::answer]\tSM1\tincoming\tmessage\u{1b}[2J /whatsapp\u{1b}[1m from 127.0.0.1:";
    assert!(warning.contains(escaped), "{warning}");
    stop(&mut server);
    for line in &server.seen {
        assert!(
            !line.contains('\u{1b}'),
            "a raw escape reached the log: {line:?}"
        );
        assert!(
            line.starts_with('[') || line.is_empty(),
            "a line that is not a log line: {line:?}"
        );
    }
}

#[test]
fn a_transfer_encoding_is_refused_before_its_body_is_read() {
    let server = Binary::start(&["--timeout", TIMEOUT], &[]);
    let mut stream = connect(server.addr);
    // Only the head: the answer must not wait for a body.
    stream
        .write_all(b"POST /whatsapp HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        .unwrap();
    let response = support::read_response(&mut std::io::BufReader::new(stream), false);
    response.assert_text(
        "HTTP/1.1 411 Length Required",
        "Transfer-Encoding is not supported: send Content-Length\n",
    );
}

#[test]
fn tiny_http_buffers_bodies_up_to_1024_bytes_and_no_more() {
    // The request loop answers such requests itself, trusting that reading
    // their body never waits: check tiny_http still works that way.
    use whatsapp_webhook::http::framing::TINY_HTTP_BUFFERS_UP_TO;
    let http = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let addr = http.server_addr().to_ip().unwrap();
    let head = |path: &str, length: usize| {
        format!("POST {path} HTTP/1.1\r\nContent-Length: {length}\r\n\r\n")
    };
    let next = || {
        http.recv_timeout(support::PATIENCE)
            .unwrap()
            .expect("a request")
    };

    // A request whose body is incomplete, then a whole one on another
    // connection: the whole one is handed over, the first is not, until
    // its body is in. (No wait for something not to happen: the second
    // request is the clock.)
    let mut buffered = connect(addr);
    buffered
        .write_all(head("/incomplete", TINY_HTTP_BUFFERS_UP_TO).as_bytes())
        .unwrap();
    buffered.write_all(&[b'x'; 100]).unwrap();
    let mut whole = connect(addr);
    whole.write_all(head("/whole", 0).as_bytes()).unwrap();
    let first = next();
    assert_eq!(
        first.url(),
        "/whole",
        "a request with an incomplete body of {TINY_HTTP_BUFFERS_UP_TO} bytes was handed over"
    );
    assert!(http.try_recv().unwrap().is_none());
    buffered
        .write_all(&vec![b'x'; TINY_HTTP_BUFFERS_UP_TO - 100])
        .unwrap();
    assert_eq!(next().url(), "/incomplete");

    let mut streamed = connect(addr);
    streamed
        .write_all(head("/streamed", TINY_HTTP_BUFFERS_UP_TO + 1).as_bytes())
        .unwrap();
    let request = http.recv_timeout(support::PATIENCE).unwrap();
    assert!(request.is_some(), "a longer body is handed over unread");
    std::mem::forget(request); // dropping it would wait for the body
}

/// Sends SIGTERM and waits for the process to end.
fn stop(server: &mut Binary) {
    let status = Command::new("kill")
        .args(["-TERM", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + support::PATIENCE;
    let exit = server.wait_for_exit();
    assert!(Instant::now() < deadline);
    assert_eq!(exit.code(), Some(0), "{:#?}", server.seen);
}
