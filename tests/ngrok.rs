//! ngrok found rather than typed, against a fake of ngrok's agent API
//! started here (`GET /api/tunnels`, JSON), never the real one: the server
//! logs the URL to paste, accepts signatures made for a tunnel's URL even
//! when ngrok rewrites `Host`, and `check` goes through the tunnel. Without
//! an agent, or with one that answers garbage or never, nothing changes.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use support::{Binary, connect, read_response, signed_post};

const TOKEN: &str = "12345678901234567890123456789012";
const TUNNEL: &str = "https://abc123.ngrok-free.app";

/// A fake agent API: answers every request with the body it holds now, or
/// never (`None`).
struct Agent {
    addr: SocketAddr,
    body: Arc<Mutex<Option<String>>>,
    asked: Arc<AtomicUsize>,
}

impl Agent {
    fn start(body: Option<String>) -> Agent {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let body = Arc::new(Mutex::new(body));
        let asked = Arc::new(AtomicUsize::new(0));
        let (shared, count) = (Arc::clone(&body), Arc::clone(&asked));
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let body = shared.lock().unwrap().clone();
                count.fetch_add(1, Ordering::SeqCst);
                thread::spawn(move || answer(stream, body));
            }
        });
        Agent { addr, body, asked }
    }

    /// Waits until the agent has been asked `times`.
    fn wait_until_asked(&self, times: usize) {
        let deadline = Instant::now() + support::PATIENCE;
        while self.asked.load(Ordering::SeqCst) < times {
            assert!(Instant::now() < deadline, "the agent was not asked");
            thread::sleep(Duration::from_millis(10));
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn set(&self, body: Option<String>) {
        *self.body.lock().unwrap() = body;
    }
}

fn answer(mut stream: TcpStream, body: Option<String>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    while reader.read_line(&mut line).is_ok_and(|read| read > 2) {
        line.clear();
    }
    match body {
        Some(body) => {
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
        // Never answers: holds the connection until the client gives up.
        None => {
            let _ = stream.read_to_end(&mut Vec::new());
        }
    }
}

/// The agent's list: a tunnel from `public_url` to local `port`, and one to
/// another port.
fn tunnels(public_url: &str, port: u16) -> String {
    format!(
        r#"{{"tunnels":[{{"name":"command_line","public_url":"{public_url}","proto":"https","config":{{"addr":"http://localhost:{port}","inspect":true}}}},{{"name":"other","public_url":"https://other.ngrok-free.app","proto":"https","config":{{"addr":"http://localhost:1","inspect":true}}}}],"uri":"/api/tunnels"}}"#
    )
}

/// The server on a port of its own, asking `agent`, which then lists a
/// tunnel from [`TUNNEL`] to that port; and a request through the tunnel,
/// which makes the server ask the agent (the first time, before the agent
/// knew the port, found nothing). Returns once the server knows the tunnel.
fn server_with(agent: &Agent, env: &[(&str, &str)]) -> (Binary, u16) {
    let agent_url = agent.url();
    let mut all = vec![("NGROK_API_URL", agent_url.as_str())];
    all.extend_from_slice(env);
    let mut server = Binary::start(&[], &all);
    let port = server.addr.port();
    // Asked at start, the agent holds its answer (or has none), so the
    // request below comes while the server still waits for it.
    agent.wait_until_asked(1);
    agent.set(Some(tunnels(TUNNEL, port)));
    let mut through = connect(server.addr);
    through
        .write_all(b"GET /whatsapp HTTP/1.1\r\nHost: abc123.ngrok-free.app\r\n\r\n")
        .unwrap();
    read_response(&mut BufReader::new(through), false);
    server.wait_for("ngrok forwards");
    (server, port)
}

#[test]
fn the_url_to_paste_is_logged_and_only_for_a_tunnel_to_this_port() {
    let agent = Agent::start(None);
    let (mut server, _) = server_with(&agent, &[]);
    let line = server.wait_for("ngrok forwards");
    assert_eq!(
        server
            .seen
            .iter()
            .filter(|line| line.contains("ngrok forwards"))
            .count(),
        1
    );
    assert!(
        line.ends_with(
            "ngrok forwards https://abc123.ngrok-free.app to this server: paste \
             https://abc123.ngrok-free.app/whatsapp into the Sandbox's \"When a message comes \
             in\" (and https://abc123.ngrok-free.app/status into \"Status callback URL\"); \
             signatures for it are accepted"
        ),
        "{line}"
    );
    assert!(
        !server
            .seen
            .iter()
            .any(|line| line.contains("other.ngrok-free.app"))
    );
}

#[test]
fn a_signature_for_the_tunnels_url_is_accepted_when_ngrok_rewrites_host() {
    let agent = Agent::start(None);
    let (mut server, port) = server_with(&agent, &[("TWILIO_AUTH_TOKEN", TOKEN)]);
    let form = "MessageSid=SM1&From=whatsapp%3A%2B1555&Body=hi";
    // As `ngrok http 8767 --host-header=rewrite` passes it on: Host is the
    // local server's; the signature is for the tunnel's URL.
    let signed = String::from_utf8(signed_post(TOKEN, &format!("{TUNNEL}/whatsapp"), form))
        .unwrap()
        .replace(
            "Host: example.com\r\n",
            &format!(
                "Host: localhost:{port}\r\nX-Forwarded-Host: abc123.ngrok-free.app\r\nX-Forwarded-Proto: https\r\n"
            ),
        );
    let response = server.request(signed.as_bytes());
    assert_eq!(response.status(), 200, "{:#?}", server.log_so_far());
    // Signed for another URL, it is refused as ever.
    let other = signed_post(TOKEN, "https://else.example/whatsapp", form);
    assert_eq!(server.request(&other).status(), 403);
}

#[test]
fn a_request_through_a_tunnel_not_known_yet_has_the_agent_asked_again() {
    let agent = Agent::start(None);
    let (mut server, port) = server_with(&agent, &[("TWILIO_AUTH_TOKEN", TOKEN)]);
    // ngrok restarted with a new address, after the server asked.
    agent.set(Some(tunnels("https://new456.ngrok-free.app", port)));
    let form = "MessageSid=SM1&From=whatsapp%3A%2B1555&Body=hi";
    let signed = String::from_utf8(signed_post(
        TOKEN,
        "https://new456.ngrok-free.app/whatsapp",
        form,
    ))
    .unwrap()
    .replace(
        "Host: example.com\r\n",
        "Host: new456.ngrok-free.app\r\nX-Forwarded-Proto: https\r\n",
    );
    assert_eq!(server.request(signed.as_bytes()).status(), 200);
    server.wait_for("ngrok forwards https://new456.ngrok-free.app to this server");
}

#[test]
fn check_goes_through_the_tunnel_to_port_and_says_so() {
    let agent = Agent::start(None);
    let agent_url = agent.url();
    let mut server = Binary::start(&[], &[("NGROK_API_URL", &agent_url)]);
    let port = server.addr.port();
    // A "tunnel" whose public URL is the server itself, so that check can
    // reach it here.
    agent.set(Some(tunnels(&format!("http://127.0.0.1:{port}"), port)));
    let (status, report, errors) = support::run_binary(
        &["check"],
        &[("PORT", &port.to_string()), ("NGROK_API_URL", &agent.url())],
    );
    assert_eq!(status.code(), Some(0), "{report}{errors}");
    assert!(
        report.starts_with(&format!(
            "POST http://127.0.0.1:{port}/whatsapp (through the ngrok tunnel to the local \
             server, which ngrok's agent at {} lists)\n",
            agent.url()
        )),
        "{report}"
    );
    server.wait_for("incoming message");
}

#[test]
fn no_agent_a_garbled_one_or_a_silent_one_changes_nothing() {
    for (body, said) in [
        (None, "no ngrok agent answered"),
        (
            Some("<html>not json</html>".to_owned()),
            "is not ngrok's list of tunnels",
        ),
        (
            Some(r#"{"tunnels": 7}"#.to_owned()),
            "is not ngrok's list of tunnels",
        ),
    ] {
        let agent = Agent::start(body.clone());
        let started = Instant::now();
        let mut command = std::process::Command::new(Binary::path());
        command.args(["--host", "127.0.0.1", "--port", "0"]);
        let mut server = Binary::start_command(
            command,
            &[
                ("NGROK_API_URL", &agent.url()),
                ("RUST_LOG", "whatsapp_webhook=debug"),
            ],
        );
        // The loop never waits for the agent: a request is answered at once.
        let mut stream = connect(server.addr);
        stream.write_all(&support::bare("GET", "/healthz")).unwrap();
        read_response(&mut BufReader::new(stream), false).assert_text("HTTP/1.1 200 OK", "ok\n");
        let line = server.wait_for(said);
        assert!(line.contains(" DEBUG "), "{body:?}: {line}");
        assert!(
            server
                .log_so_far()
                .iter()
                .all(|line| !line.contains(" WARN ") || line.contains("signature checking is off")),
            "{body:?}: {:#?}",
            server.seen
        );
        eprintln!("{body:?}: answered {:?} after start", started.elapsed());
        // check, without an agent to go through, checks the local server.
        let (status, report, _) = support::run_binary(
            &["check"],
            &[
                ("PORT", &server.addr.port().to_string()),
                ("NGROK_API_URL", &agent.url()),
            ],
        );
        assert_eq!(status.code(), Some(0), "{report}");
        assert!(
            report.contains("(the local server, from HOST and PORT"),
            "{report}"
        );
    }
    // No agent at all: a closed port.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut command = std::process::Command::new(Binary::path());
    command.args(["--host", "127.0.0.1", "--port", "0"]);
    let mut server = Binary::start_command(
        command,
        &[
            ("NGROK_API_URL", &format!("http://{closed}")),
            ("RUST_LOG", "whatsapp_webhook=debug"),
        ],
    );
    let said = server.wait_for("no ngrok agent answered");
    assert!(said.contains(" DEBUG "), "{said}");
}
