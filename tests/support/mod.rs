//! Test support: the server started in-process or as the built binary, always
//! on 127.0.0.1 with a port the system picks, and HTTP spoken over raw TCP so
//! that tests see the exact bytes.

#![allow(dead_code)] // each test file uses a different part of this module

use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, ChildStderr, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use whatsapp_webhook::{Config, Handle, Server, ServerError, logging};

/// The reply every test expects unless it configures another one.
pub const DEFAULT_TWIML: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Response><Message>What's app, doc?</Message></Response>"#;

/// What every binary a test starts gets before the test's own variables:
/// no asking an ngrok agent at its fixed address (a test that wants one
/// starts a fake and says where).
pub const HERMETIC: &[(&str, &str)] = &[("NGROK_API_URL", "off")];

/// How long a test waits for something that should happen at once.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A realistic form body of a WhatsApp message, as Twilio posts it.
pub const TWILIO_WHATSAPP_FORM: &str = "SmsMessageSid=SM9d3b1b2f6a0c4e5f8a7b6c5d4e3f2a1b&NumMedia=0&ProfileName=Ada+Lovelace&MessageType=text&SmsSid=SM9d3b1b2f6a0c4e5f8a7b6c5d4e3f2a1b&WaId=15551234567&SmsStatus=received&Body=Hello+doc%21+Caf%C3%A9+%26+co+%3D+100%25+%F0%9F%91%8B&To=whatsapp%3A%2B14155238886&NumSegments=1&ReferralNumMedia=0&MessageSid=SM9d3b1b2f6a0c4e5f8a7b6c5d4e3f2a1b&AccountSid=AC0123456789abcdef0123456789abcdef&From=whatsapp%3A%2B15551234567&ApiVersion=2010-04-01";

/// A server running in this process; stopped when dropped.
pub struct TestServer {
    addr: SocketAddr,
    handle: Handle,
    thread: Option<JoinHandle<Result<(), ServerError>>>,
}

impl TestServer {
    /// Starts a server with the default configuration.
    pub fn start() -> TestServer {
        TestServer::with(Config::default())
    }

    /// Starts a server with `config`, on 127.0.0.1 and a free port.
    pub fn with(config: Config) -> TestServer {
        let config = Config {
            host: [127, 0, 0, 1].into(),
            port: 0,
            ngrok_api: None,
            ..config
        };
        let server = Server::bind(&config).expect("bind 127.0.0.1:0");
        let addr = server.local_addr();
        let handle = server.handle();
        let thread = thread::spawn(move || server.run());
        TestServer {
            addr,
            handle,
            thread: Some(thread),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Opens a new connection.
    pub fn connect(&self) -> TcpStream {
        connect(self.addr)
    }

    /// Sends `raw` on a new connection and reads one response.
    pub fn request(&self, raw: &[u8]) -> HttpResponse {
        let mut stream = self.connect();
        stream.write_all(raw).expect("send request");
        read_response(&mut BufReader::new(stream), false)
    }

    /// Stops the server and returns what `run` returned.
    pub fn stop(mut self) -> Result<(), ServerError> {
        self.handle.stop();
        self.thread
            .take()
            .expect("running")
            .join()
            .expect("server thread panicked")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.handle.stop();
            let _ = thread.join();
        }
    }
}

/// Connects with timeouts, so that a broken server fails the test instead
/// of hanging it.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, PATIENCE).expect("connect");
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.set_write_timeout(Some(PATIENCE)).unwrap();
    stream
}

/// Whether the server has sent nothing on `stream` yet and not closed it.
pub fn still_waiting(stream: &TcpStream) -> bool {
    stream.set_nonblocking(true).unwrap();
    let mut byte = [0u8; 1];
    let waiting = matches!(stream.peek(&mut byte), Err(e) if e.kind() == ErrorKind::WouldBlock);
    stream.set_nonblocking(false).unwrap();
    waiting
}

/// A `POST /whatsapp` with a form body.
pub fn post_form(form: &str) -> Vec<u8> {
    format!(
        "POST /whatsapp HTTP/1.1\r\nHost: example.com\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
        form.len()
    )
    .into_bytes()
}

/// A request with no body.
pub fn bare(method: &str, target: &str) -> Vec<u8> {
    format!("{method} {target} HTTP/1.1\r\nHost: example.com\r\n\r\n").into_bytes()
}

/// One HTTP response, as received.
#[derive(Debug)]
pub struct HttpResponse {
    pub status_line: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn status(&self) -> u16 {
        self.status_line
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {:?}", self.status_line))
    }

    /// The value of the only header called `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        let mut values = self
            .headers
            .iter()
            .filter(|(field, _)| field.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str());
        let first = values.next();
        assert!(values.next().is_none(), "more than one {name} header");
        first
    }

    /// The header names, in order.
    pub fn header_names(&self) -> Vec<&str> {
        self.headers.iter().map(|(name, _)| name.as_str()).collect()
    }

    pub fn body_text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("UTF-8 body")
    }

    /// Asserts a `text/xml` 200 carrying exactly `twiml`.
    pub fn assert_twiml(&self, twiml: &str) {
        assert_eq!(self.status_line, "HTTP/1.1 200 OK");
        assert_eq!(self.header("Content-Type"), Some("text/xml; charset=utf-8"));
        assert_eq!(
            self.header("Content-Length"),
            Some(twiml.len().to_string().as_str())
        );
        assert_eq!(self.body_text(), twiml);
    }

    /// Asserts a short `text/plain` answer.
    pub fn assert_text(&self, status_line: &str, text: &str) {
        assert_eq!(self.status_line, status_line);
        assert_eq!(
            self.header("Content-Type"),
            Some("text/plain; charset=utf-8")
        );
        assert_eq!(self.body_text(), text);
    }
}

/// Reads one response; `head_only` for an answer to `HEAD`, which announces
/// a length but carries no body.
pub fn read_response(reader: &mut impl BufRead, head_only: bool) -> HttpResponse {
    let mut status_line = String::new();
    reader
        .read_line(&mut status_line)
        .expect("read status line");
    assert!(
        status_line.ends_with("\r\n"),
        "truncated status line {status_line:?}"
    );
    status_line.truncate(status_line.len() - 2);
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("read header");
        let line = line.strip_suffix("\r\n").expect("header ends with CRLF");
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(": ").expect("header has a colon");
        headers.push((name.to_owned(), value.to_owned()));
    }
    let mut response = HttpResponse {
        status_line,
        headers,
        body: Vec::new(),
    };
    if !head_only {
        let length: usize = response
            .header("Content-Length")
            .map(|value| value.parse().expect("numeric Content-Length"))
            .unwrap_or(0);
        response.body = vec![0; length];
        reader.read_exact(&mut response.body).expect("read body");
    }
    response
}

/// Reads one response, or `None` when the connection ends (closed or reset)
/// before its first byte. A response cut short or malformed still fails the
/// test.
pub fn read_response_or_end(reader: &mut impl BufRead, head_only: bool) -> Option<HttpResponse> {
    match reader.fill_buf() {
        Ok([]) => None,
        Err(error) if error.kind() == ErrorKind::ConnectionReset => None,
        Ok(_) => Some(read_response(reader, head_only)),
        Err(error) => panic!("read a response: {error}"),
    }
}

/// The built binary, running; killed when dropped.
pub struct Binary {
    child: Child,
    lines: Receiver<String>,
    pub addr: SocketAddr,
    /// Every stderr line read so far.
    pub seen: Vec<String>,
}

impl Binary {
    /// The path of the built binary.
    pub fn path() -> &'static str {
        env!("CARGO_BIN_EXE_whatsapp-webhook")
    }

    /// Runs the binary on 127.0.0.1 and a free port, with `args` and no
    /// environment but `env` (whatever the user has exported: tokens,
    /// `REPLY`, `RUST_LOG`...), and waits until it logs its address.
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> Binary {
        let mut command = Command::new(Binary::path());
        command
            .args(["--host", "127.0.0.1", "--port", "0"])
            .args(args);
        Binary::start_command(command, env)
    }

    /// Like [`Binary::start`], for a prepared command.
    pub fn start_command(mut command: Command, env: &[(&str, &str)]) -> Binary {
        command
            .env_clear()
            .envs(HERMETIC.iter().copied())
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("start the binary");
        let lines = stderr_lines(child.stderr.take().expect("piped stderr"));
        let mut binary = Binary {
            child,
            lines,
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
            seen: Vec::new(),
        };
        let line = binary.wait_for("listening on http://");
        // The line is text or JSON: the address ends where the path starts.
        let addr = line
            .split("listening on http://")
            .nth(1)
            .and_then(|rest| rest.split_once("/whatsapp"))
            .map(|(addr, _)| addr)
            .unwrap_or_else(|| panic!("unexpected start-up line {line:?}"));
        binary.addr = addr.parse().expect("address in the start-up line");
        binary
    }

    /// Waits for a stderr line containing `needle` and returns it.
    pub fn wait_for(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        if let Some(line) = self.seen.iter().find(|line| line.contains(needle)) {
            return line.clone();
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!(
                        "no line containing {needle:?} in {PATIENCE:?}; seen: {:#?}",
                        self.seen
                    )
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!(
                        "the binary ended without logging {needle:?}; seen: {:#?}",
                        self.seen
                    )
                }
            }
        }
    }

    /// Every stderr line written so far, without waiting for more.
    pub fn log_so_far(&mut self) -> &[String] {
        self.seen.extend(self.lines.try_iter());
        &self.seen
    }

    /// Sends `raw` on a new connection and reads one response.
    pub fn request(&self, raw: &[u8]) -> HttpResponse {
        let mut stream = connect(self.addr);
        stream.write_all(raw).expect("send request");
        read_response(&mut BufReader::new(stream), false)
    }

    /// Waits for the process to end by itself, collecting the rest of its
    /// stderr.
    pub fn wait_for_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for the binary") {
                self.seen.extend(self.lines.iter());
                return status;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "the binary did not exit; seen: {:#?}",
                self.seen
            );
            if let Ok(line) = self.lines.recv_timeout(left.min(Duration::from_millis(50))) {
                self.seen.push(line);
            }
        }
    }

    /// Stops the server as a supervisor does (SIGTERM), and waits for it to
    /// exit, with every line it wrote read.
    pub fn terminate(&mut self) -> ExitStatus {
        let sent = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM failed");
        self.wait_for_exit()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the binary to completion with `args` and no environment but `env`,
/// and returns its status, stdout and stderr. A server it starts by mistake
/// listens on 127.0.0.1 and a free port (`env` or `args` may say
/// otherwise), and a binary still running after [`PATIENCE`] is killed and
/// fails the test.
pub fn run_binary(args: &[&str], env: &[(&str, &str)]) -> (ExitStatus, String, String) {
    let mut child = Command::new(Binary::path())
        .args(args)
        .env_clear()
        .envs([("HOST", "127.0.0.1"), ("PORT", "0")])
        .envs(HERMETIC.iter().copied())
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the binary");
    let stdout = chunks(child.stdout.take().expect("piped stdout"));
    let stderr = chunks(child.stderr.take().expect("piped stderr"));
    let deadline = Instant::now() + PATIENCE;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the binary") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            let said: Vec<u8> = stderr.try_iter().flatten().collect();
            panic!(
                "the binary {args:?} still ran after {PATIENCE:?}; its stderr:\n{}",
                String::from_utf8_lossy(&said)
            );
        }
        thread::sleep(Duration::from_millis(10));
    };
    // The pipes close when the binary and anything it started are gone.
    let whole = |chunks: Receiver<Vec<u8>>| {
        let deadline = Instant::now() + PATIENCE;
        let mut bytes = Vec::new();
        while let Ok(chunk) =
            chunks.recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            bytes.extend(chunk);
        }
        String::from_utf8(bytes).expect("UTF-8 output")
    };
    (status, whole(stdout), whole(stderr))
}

/// What `from` gives until it closes, in chunks, read on a thread of its own.
fn chunks(mut from: impl std::io::Read + Send + 'static) -> Receiver<Vec<u8>> {
    let (sender, receiver) = mpsc::channel();
    thread::spawn(move || {
        let mut buffer = [0; 4096];
        while let Ok(read @ 1..) = from.read(&mut buffer) {
            if sender.send(buffer[..read].to_vec()).is_err() {
                break;
            }
        }
    });
    receiver
}

fn stderr_lines(stderr: ChildStderr) -> Receiver<String> {
    let (sender, receiver) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    receiver
}

/// `X-Twilio-Signature` for a form `POST` of `form` to `url`, made here from
/// Twilio's documented rule, not by the crate under test: Base64 of
/// HMAC-SHA1, keyed with the Auth Token, over the URL followed by every
/// parameter's name and value, sorted by name (and, for one name, by value).
pub fn twilio_signature(token: &str, url: &str, form: &str) -> String {
    use base64::Engine;
    use hmac::digest::KeyInit;
    use hmac::{Hmac, Mac};
    let mut params: Vec<(String, String)> = form_urlencoded::parse(form.as_bytes())
        .into_owned()
        .collect();
    params.sort();
    let mut mac = <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(token.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(url.as_bytes());
    for (name, value) in &params {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// A `POST /whatsapp` with a form body, signed as Twilio signs it for `url`
/// with `token`.
pub fn signed_post(token: &str, url: &str, form: &str) -> Vec<u8> {
    let signature = twilio_signature(token, url, form);
    format!(
        "POST /whatsapp HTTP/1.1\r\nHost: example.com\r\nX-Twilio-Signature: {signature}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
        form.len()
    )
    .into_bytes()
}

/// Writes why a test checked nothing where the person running the tests
/// sees it: `eprintln!` would be captured and shown only on failure.
pub fn skipped(test: &str, why: &str) {
    // In CI, a program the tests need is installed (.ci/run): its absence
    // is a failure, not a pass with nothing tested.
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{test}: {why}, and CI=true: CI must install it"
    );
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
}

/// `name` on `PATH`, or at one of `elsewhere` (nginx is in /usr/sbin, which
/// is not on every user's `PATH`).
pub fn program(name: &str, elsewhere: &[&str]) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .chain(elsewhere.iter().map(std::path::PathBuf::from))
        .find(|candidate| candidate.is_file())
}

/// A directory of its own under the system's temporary directory, removed
/// when dropped.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(what: &str) -> TempDir {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "whatsapp-webhook-{what}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create a temporary directory");
        TempDir(dir)
    }

    pub fn join(&self, name: &str) -> std::path::PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One request the fake Messages API received.
#[derive(Debug, Clone)]
pub struct ApiRequest {
    pub at: Instant,
    pub request_line: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl ApiRequest {
    /// The value of the header called `name` (ignoring case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(field, _)| field.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// A local stand-in for Twilio's Messages API, on 127.0.0.1 and a port of
/// its own: it records every request and answers each with the next of the
/// answers it was given (status, extra header, body), then `201` with a
/// message SID of its own. Speaks HTTP/1.1 over raw TCP.
pub struct FakeApi {
    pub url: String,
    requests: std::sync::Arc<std::sync::Mutex<Vec<ApiRequest>>>,
}

impl FakeApi {
    pub fn start(answers: Vec<ApiAnswer>) -> FakeApi {
        use std::sync::{Arc, Mutex};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the fake API");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::<ApiRequest>::new()));
        let answers = Arc::new(Mutex::new(std::collections::VecDeque::from(answers)));
        let recorded = Arc::clone(&requests);
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { break };
                let recorded = Arc::clone(&recorded);
                let answers = Arc::clone(&answers);
                thread::spawn(move || serve_api(stream, &recorded, &answers));
            }
        });
        FakeApi { url, requests }
    }

    /// The requests so far.
    pub fn requests(&self) -> Vec<ApiRequest> {
        self.requests.lock().unwrap().clone()
    }

    /// Waits until `count` requests have come, and returns them.
    pub fn wait_for(&self, count: usize) -> Vec<ApiRequest> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let requests = self.requests();
            if requests.len() >= count {
                return requests;
            }
            assert!(
                Instant::now() < deadline,
                "{} requests came to the fake API, not {count}: {requests:#?}",
                requests.len()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

/// An answer the fake Messages API gives: status, an extra header, body.
pub type ApiAnswer = (u16, Option<(&'static str, &'static str)>, &'static str);

type Answers = std::sync::Mutex<std::collections::VecDeque<ApiAnswer>>;

fn serve_api(stream: TcpStream, recorded: &std::sync::Mutex<Vec<ApiRequest>>, answers: &Answers) {
    let mut writer = stream.try_clone().expect("clone the stream");
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let at = Instant::now();
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end_matches(['\r', '\n']);
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                headers.push((name.trim().to_owned(), value.trim().to_owned()));
            }
        }
        let length: usize = headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("Content-Length"))
            .and_then(|(_, value)| value.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        if std::io::Read::read_exact(&mut reader, &mut body).is_err() {
            return;
        }
        let number = {
            let mut recorded = recorded.lock().unwrap();
            recorded.push(ApiRequest {
                at,
                request_line: request_line.trim_end().to_owned(),
                headers,
                body: String::from_utf8_lossy(&body).into_owned(),
            });
            recorded.len()
        };
        let answer = answers.lock().unwrap().pop_front();
        let created = format!(r#"{{"sid": "SM{number:032}", "status": "queued"}}"#);
        let (status, header, body) = match answer {
            Some((status, header, body)) => (status, header, body.to_owned()),
            None => (201, None, created),
        };
        let mut response = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        );
        if let Some((name, value)) = header {
            response.push_str(&format!("{name}: {value}\r\n"));
        }
        response.push_str("\r\n");
        response.push_str(&body);
        if writer.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

/// Installs the project's logger, in text at `info` whatever `RUST_LOG`
/// says, writing into a count of the bytes written (each line at once when
/// `immediate`); returns the count. A process has one logger.
pub fn counting_logger(immediate: bool) -> Arc<AtomicUsize> {
    let written = Arc::new(AtomicUsize::new(0));
    logging::init_to(
        logging::Format::Text,
        Some("info"),
        Box::new(Counted(Arc::clone(&written))),
        immediate,
    );
    written
}

struct Counted(Arc<AtomicUsize>);

impl Write for Counted {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.fetch_add(bytes.len(), Ordering::Relaxed);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
