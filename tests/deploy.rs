//! The files in `deploy/`, run for real. nginx, with exactly the shipped
//! proxy snippet and upstream (but for its address), and Caddy, with the
//! shipped Caddyfile (but for its addresses), in front of the built binary:
//! Twilio's signed requests pass, and what tiny_http cannot survive is
//! stopped before or at the server. The shipped nginx site passes
//! `nginx -t`, and the systemd unit `systemd-analyze verify`.
//!
//! `.ci/run` installs nginx and Caddy. A test whose program is missing
//! writes `SKIPPED` and the reason to the terminal (past the harness's
//! capture) and checks nothing else.

mod support;

use std::fs;
use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use support::{
    Binary, DEFAULT_TWIML, PATIENCE, TWILIO_WHATSAPP_FORM, TempDir, connect, program,
    read_response, skipped,
};
use whatsapp_webhook::twilio::signature::{self, Secret};

const TOKEN: &str = "12345678901234567890123456789012";
const DEPLOY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy");

fn nginx() -> Option<PathBuf> {
    program("nginx", &["/usr/sbin/nginx", "/usr/local/nginx/sbin/nginx"])
}

fn caddy() -> Option<PathBuf> {
    program("caddy", &[])
}

/// The shipped site's `upstream` block, pointed at `server`.
fn shipped_upstream(server: SocketAddr) -> String {
    let site = fs::read_to_string(format!("{DEPLOY}/nginx/whatsapp-webhook.conf"))
        .expect("read the nginx site");
    let start = site
        .find("upstream whatsapp_webhook {")
        .expect("the site defines the upstream");
    let length = site[start..].find("\n}").expect("the upstream block ends") + 2;
    let block = &site[start..start + length];
    assert_eq!(
        block.matches("server 127.0.0.1:8767;").count(),
        1,
        "{block}"
    );
    block.replace("server 127.0.0.1:8767;", &format!("server {server};"))
}

/// A proxy (nginx or Caddy) on 127.0.0.1 and a port of its own; stopped
/// when dropped.
struct Proxy {
    child: Child,
    addr: SocketAddr,
    dir: TempDir,
}

impl Proxy {
    /// Runs the command `launch` makes (with a clean environment) for a
    /// configuration it writes in `dir`, listening on `addr`; waits until it
    /// accepts connections.
    fn start(dir: TempDir, launch: impl Fn(&TempDir, SocketAddr) -> Command) -> Proxy {
        // The port is free when picked but could be taken before the proxy
        // binds it: then the proxy exits, and another port is tried.
        for _ in 0..5 {
            let addr = TcpListener::bind("127.0.0.1:0")
                .and_then(|listener| listener.local_addr())
                .expect("a free port");
            let _ = fs::remove_file(dir.join("error.log"));
            let mut child = launch(&dir, addr)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .spawn()
                .expect("start the proxy");
            let deadline = Instant::now() + PATIENCE;
            let proxy = loop {
                if let Some(status) = child.try_wait().expect("wait for the proxy") {
                    let log = fs::read_to_string(dir.join("error.log")).unwrap_or_default();
                    assert!(
                        log.to_lowercase().contains("address already in use"),
                        "the proxy exited with {status}:\n{log}"
                    );
                    break None;
                }
                if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
                    break Some(addr);
                }
                assert!(Instant::now() < deadline, "the proxy did not start");
                thread::sleep(Duration::from_millis(20));
            };
            if let Some(addr) = proxy {
                return Proxy { child, addr, dir };
            }
        }
        panic!("no free port for the proxy in 5 tries");
    }

    /// nginx with the shipped proxy snippet and upstream, in front of
    /// `server`.
    fn nginx(nginx: &Path, server: SocketAddr) -> Proxy {
        Proxy::nginx_listening(nginx, server, "")
    }

    /// The same, with `parameters` (such as `http2`) on its `listen` line.
    fn nginx_listening(nginx: &Path, server: SocketAddr, parameters: &str) -> Proxy {
        Proxy::start(TempDir::new("nginx"), |dir, addr| {
            // The snippet is included as a site includes it.
            let http = format!(
                "{}\nserver {{\n    listen {addr} {parameters};\n    include {DEPLOY}/nginx/whatsapp-webhook-proxy.conf;\n}}",
                shipped_upstream(server)
            );
            fs::write(dir.join("nginx.conf"), nginx_conf(dir, &http)).expect("write nginx.conf");
            let mut command = Command::new(nginx);
            command
                .env_clear()
                .arg("-p")
                .arg(&dir.0)
                .arg("-c")
                .arg(dir.join("nginx.conf"))
                .arg("-e")
                .arg(dir.join("error.log"))
                .stderr(Stdio::null());
            command
        })
    }

    /// Caddy with the shipped Caddyfile, serving plain http on loopback in
    /// front of `server`.
    fn caddy(caddy: &Path, server: SocketAddr) -> Proxy {
        Proxy::start(TempDir::new("caddy"), |dir, addr| {
            let shipped =
                fs::read_to_string(format!("{DEPLOY}/Caddyfile")).expect("read Caddyfile");
            let site = "hooks.example.com {\n";
            let upstream = "reverse_proxy 127.0.0.1:8767 {\n";
            let global = "\n{\n";
            for part in [site, upstream, global] {
                assert_eq!(
                    shipped.matches(part).count(),
                    1,
                    "{part:?} in the Caddyfile"
                );
            }
            let config = shipped
                .replace(site, &format!("http://:{} {{\n", addr.port()))
                .replace(upstream, &format!("reverse_proxy {server} {{\n"))
                .replace(global, "\n{\n\tadmin off\n\tdefault_bind 127.0.0.1\n");
            fs::write(dir.join("Caddyfile"), config).expect("write the Caddyfile");
            let mut command = Command::new(caddy);
            command
                .env_clear()
                .args(["run", "--adapter", "caddyfile", "--config"])
                .arg(dir.join("Caddyfile"))
                .env("XDG_DATA_HOME", dir.join("data"))
                .env("XDG_CONFIG_HOME", dir.join("config"))
                .stderr(fs::File::create(dir.join("error.log")).expect("create the log"));
            command
        })
    }

    /// Sends `raw` through the proxy on a new connection and reads one
    /// answer.
    fn request(&self, raw: &[u8]) -> support::HttpResponse {
        let mut stream = connect(self.addr);
        stream.write_all(raw).expect("send request");
        read_response(&mut BufReader::new(stream), raw.starts_with(b"HEAD "))
    }

    /// Sends `raw` on a new connection and returns everything the proxy
    /// sends until it closes the connection.
    fn exchange(&self, raw: &[u8]) -> String {
        let mut stream = connect(self.addr);
        stream.write_all(raw).expect("send request");
        let mut received = Vec::new();
        stream
            .read_to_end(&mut received)
            .expect("the proxy closes the connection");
        String::from_utf8_lossy(&received).into_owned()
    }

    /// The status of the one answer to `raw`, on a connection the proxy
    /// then closes.
    fn status_of(&self, raw: &[u8]) -> u16 {
        let answer = self.exchange(raw);
        answer
            .strip_prefix("HTTP/1.1 ")
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("not an HTTP/1.1 answer: {answer:?}"))
    }

    fn error_log(&self) -> String {
        fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A whole nginx configuration that runs as this user, with its files in
/// `dir`, and `http` in its http block.
fn nginx_conf(dir: &TempDir, http: &str) -> String {
    let dir = dir.0.display();
    format!(
        "master_process off;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{ worker_connections 512; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
{http}
}}
"
    )
}

/// The server, with a token and every answer logged (`METHOD -> status`, at
/// `debug`), so that a test can tell which requests reached it.
fn server(env: &[(&str, &str)]) -> Binary {
    let mut all = vec![("TWILIO_AUTH_TOKEN", TOKEN), ("RUST_LOG", "debug")];
    all.extend_from_slice(env);
    Binary::start(&[], &all)
}

/// A Twilio `POST /whatsapp` sent with `host` in `Host`, signed for `url`.
fn signed_post(host: &str, url: &str) -> Vec<u8> {
    let signature = signature::sign(&Secret::new(TOKEN), url, TWILIO_WHATSAPP_FORM.as_bytes());
    format!(
        "POST /whatsapp HTTP/1.1\r\nHost: {host}\r\nUser-Agent: TwilioProxy/1.1\r\n\
         X-Twilio-Signature: {signature}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{}",
        TWILIO_WHATSAPP_FORM.len(),
        TWILIO_WHATSAPP_FORM
    )
    .into_bytes()
}

/// The lines the server logged for the requests it answered, up to and
/// including the `HEAD /healthz` this sends through the proxy as a marker.
fn answered_until_marker(server: &mut Binary, proxy: &Proxy) -> Vec<String> {
    let marker = proxy.request(b"HEAD /healthz HTTP/1.1\r\nHost: marker\r\n\r\n");
    assert_eq!(marker.status(), 200);
    server.wait_for("HEAD -> 200");
    server
        .seen
        .iter()
        .filter(|line| line.contains(" -> ") || line.contains("refused"))
        .cloned()
        .collect()
}

/// `check` through the proxy, to the proxy's own port, and a post signed
/// for a public host on another port both pass: the server rebuilds the URL
/// Twilio signed from Host (with the port) and X-Forwarded-Proto.
fn signed_requests_pass(server: &mut Binary, proxy: &Proxy) {
    let url = format!("http://{}/whatsapp", proxy.addr);
    let (status, report, errors) =
        support::run_binary(&["check", &url], &[("TWILIO_AUTH_TOKEN", TOKEN)]);
    assert_eq!(
        status.code(),
        Some(0),
        "{report}{errors}\n{}",
        proxy.error_log()
    );
    assert!(
        report.contains("the sender would receive:\n  \"What's app, doc?\"\n"),
        "{report}"
    );
    server.wait_for("incoming message from whatsapp:+");

    // As Twilio reaches the proxy over https on another port: the proxy
    // says `http` (its own scheme here), and a signature for that URL passes.
    let answer = proxy.request(&signed_post(
        "hooks.example.com:8443",
        "http://hooks.example.com:8443/whatsapp",
    ));
    answer.assert_twiml(DEFAULT_TWIML);
}

/// `/healthz` answers through the proxy; other paths are `404` at the
/// proxy and never reach the server.
fn only_the_servers_paths_pass(server: &mut Binary, proxy: &Proxy) {
    let health = proxy.request(b"GET /healthz HTTP/1.1\r\nHost: hooks.example.com\r\n\r\n");
    assert_eq!(health.status(), 200);
    assert_eq!(health.body_text(), "ok\n");
    for path in ["/", "/whatsapp/", "/index.html", "/healthz/x"] {
        let answer = proxy
            .request(format!("GET {path} HTTP/1.1\r\nHost: hooks.example.com\r\n\r\n").as_bytes());
        assert_eq!(answer.status(), 404, "{path}");
    }
    let answered = answered_until_marker(server, proxy);
    let gets = answered.iter().filter(|line| line.contains("GET -> "));
    assert_eq!(
        gets.count(),
        1,
        "only /healthz reached the server: {answered:#?}"
    );
}

/// The server with 64 descriptors: a few dozen `HTTP/2.0` request lines
/// sent to it directly make it exit (tests/edge.rs).
fn server_with_64_descriptors() -> Binary {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg("ulimit -n 64 && exec \"$0\" \"$@\"")
        .arg(Binary::path())
        .args(["--host", "127.0.0.1", "--port", "0"]);
    Binary::start_command(
        command,
        &[("TWILIO_AUTH_TOKEN", TOKEN), ("RUST_LOG", "debug")],
    )
}

/// `HTTP/2.0` request lines, on each of which tiny_http deadlocks a thread,
/// are answered `505` by the proxy: more of them than the server survives.
fn http2_request_lines_get_505(proxy: &Proxy) {
    for _ in 0..60 {
        let line = b"GET /whatsapp HTTP/2.0\r\nHost: hooks.example.com\r\n\r\n";
        assert_eq!(proxy.status_of(line), 505);
    }
}

/// Three `Upgrade` requests without a body (tiny_http would hand the server
/// the raw socket as their body), held open, are answered as unsigned
/// requests, and a signed request after them is answered too.
fn upgrades_are_answered(proxy: &Proxy) {
    let upgrades: Vec<TcpStream> = (0..3)
        .map(|_| {
            let mut stream = connect(proxy.addr);
            stream
                .write_all(
                    b"POST /whatsapp HTTP/1.1\r\nHost: hooks.example.com\r\n\
                      Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
                )
                .expect("send upgrade");
            stream
        })
        .collect();
    for stream in &upgrades {
        let answer = read_response(&mut BufReader::new(stream), false);
        assert_eq!(answer.status(), 403);
    }
    let answer = proxy.request(&signed_post(
        "hooks.example.com",
        "http://hooks.example.com/whatsapp",
    ));
    answer.assert_twiml(DEFAULT_TWIML);
}

#[test]
fn signed_requests_pass_through_nginx_without_public_url() {
    let Some(nginx) = nginx() else {
        return skipped("deploy: signed requests through nginx", "nginx not found");
    };
    let mut server = server(&[]);
    let proxy = Proxy::nginx(&nginx, server.addr);

    signed_requests_pass(&mut server, &proxy);

    // A client cannot choose the scheme the server checks: nginx sets
    // X-Forwarded-Proto itself.
    let mut spoofed = signed_post("hooks.example.com", "https://hooks.example.com/whatsapp");
    spoofed.splice(
        b"POST /whatsapp HTTP/1.1\r\n".len()..b"POST /whatsapp HTTP/1.1\r\n".len(),
        b"X-Forwarded-Proto: https\r\n".iter().copied(),
    );
    assert_eq!(proxy.request(&spoofed).status(), 403);
}

#[test]
fn signed_requests_pass_through_nginx_with_public_url() {
    let Some(nginx) = nginx() else {
        return skipped("deploy: signed requests with PUBLIC_URL", "nginx not found");
    };
    let mut server = server(&[("PUBLIC_URL", "https://hooks.example.com")]);
    let proxy = Proxy::nginx(&nginx, server.addr);

    // Twilio signs the https URL it was given; nginx passes plain http.
    let answer = proxy.request(&signed_post(
        "hooks.example.com",
        "https://hooks.example.com/whatsapp",
    ));
    answer.assert_twiml(DEFAULT_TWIML);
    server.wait_for("incoming message from whatsapp:+15551234567");

    let wrong = proxy.request(&signed_post(
        "hooks.example.com",
        "https://old-id.ngrok-free.app/whatsapp",
    ));
    assert_eq!(wrong.status(), 403);
}

#[test]
fn nginx_passes_the_servers_paths_and_nothing_else() {
    let Some(nginx) = nginx() else {
        return skipped("deploy: paths through nginx", "nginx not found");
    };
    let mut server = server(&[]);
    let proxy = Proxy::nginx(&nginx, server.addr);

    only_the_servers_paths_pass(&mut server, &proxy);

    // A delivery status, at the path the Sandbox's Status callback URL names.
    let form = "MessageSid=SM0123456789abcdef0123456789abcdef&MessageStatus=delivered\
                &To=whatsapp%3A%2B15551234567&AccountSid=AC0123456789abcdef0123456789abcdef";
    let signature = signature::sign(
        &Secret::new(TOKEN),
        "http://hooks.example.com/status",
        form.as_bytes(),
    );
    let status = proxy.request(
        format!(
            "POST /status HTTP/1.1\r\nHost: hooks.example.com\r\nX-Twilio-Signature: {signature}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
            form.len()
        )
        .as_bytes(),
    );
    assert_eq!(status.status(), 200, "{status:?}");
    assert_eq!(
        status.body_text(),
        r#"<?xml version="1.0" encoding="UTF-8"?><Response />"#
    );
}

#[test]
fn what_tiny_http_cannot_survive_is_stopped_at_nginx() {
    let Some(nginx) = nginx() else {
        return skipped("deploy: hostile requests through nginx", "nginx not found");
    };
    let mut server = server_with_64_descriptors();
    let proxy = Proxy::nginx(&nginx, server.addr);

    http2_request_lines_get_505(&proxy);

    // Request smuggling: a Content-Length and a Transfer-Encoding.
    let smuggled = proxy.exchange(
        b"POST /whatsapp HTTP/1.1\r\nHost: hooks.example.com\r\nContent-Length: 4\r\n\
          Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert!(smuggled.starts_with("HTTP/1.1 400 "), "{smuggled}");
    assert_eq!(smuggled.matches("HTTP/1.1 ").count(), 1, "{smuggled}");
    for encoding in ["gzip, chunked", "identity", "chunked, chunked"] {
        let status = proxy.status_of(
            format!(
                "POST /whatsapp HTTP/1.1\r\nHost: hooks.example.com\r\n\
                 Transfer-Encoding: {encoding}\r\n\r\n0\r\n\r\n"
            )
            .as_bytes(),
        );
        assert!(matches!(status, 400 | 501), "{encoding}: {status}");
    }

    // Headers longer than the snippet allows, and a body over the limit.
    let long_header = format!(
        "GET /healthz HTTP/1.1\r\nHost: hooks.example.com\r\nX-Long: {}\r\n\r\n",
        "a".repeat(9000)
    );
    assert_eq!(proxy.status_of(long_header.as_bytes()), 400);
    let long_target = format!(
        "GET /healthz?{} HTTP/1.1\r\nHost: hooks.example.com\r\n\r\n",
        "a".repeat(9000)
    );
    assert_eq!(proxy.status_of(long_target.as_bytes()), 414);
    let many_headers = format!(
        "GET /healthz HTTP/1.1\r\nHost: hooks.example.com\r\n{}\r\n",
        "X-Many: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n".repeat(1000)
    );
    assert_eq!(proxy.status_of(many_headers.as_bytes()), 400);
    let too_large = proxy.request(
        b"POST /whatsapp HTTP/1.1\r\nHost: hooks.example.com\r\n\
          Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 70000\r\n\r\n",
    );
    assert_eq!(too_large.status(), 413);

    // None of it reached the server, which is still answering.
    let answered = answered_until_marker(&mut server, &proxy);
    assert_eq!(answered.len(), 1, "{answered:#?}");

    // nginx passes neither Upgrade nor Connection on.
    upgrades_are_answered(&proxy);

    // A body nginx reads whole, chunked or not, reaches the server with a
    // Content-Length: the server refuses any Transfer-Encoding itself.
    let form = TWILIO_WHATSAPP_FORM;
    let signature = signature::sign(
        &Secret::new(TOKEN),
        "http://hooks.example.com/whatsapp",
        form.as_bytes(),
    );
    let chunked = proxy.request(
        format!(
            "POST /whatsapp HTTP/1.1\r\nHost: hooks.example.com\r\nX-Twilio-Signature: {signature}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n\
             {:x}\r\n{}\r\n{:x}\r\n{}\r\n0\r\n\r\n",
            100,
            &form[..100],
            form.len() - 100,
            &form[100..]
        )
        .as_bytes(),
    );
    chunked.assert_twiml(DEFAULT_TWIML);
    let log = proxy.error_log();
    assert!(!log.contains("[emerg]") && !log.contains("[crit]"), "{log}");
}

/// The status curl reports for `GET /healthz` over HTTP/2 (without TLS) at
/// `addr`, with a header `X-Long` of `length` letters; `None` when the
/// stream or connection was cut.
fn http2_status_with_header(curl: &Path, addr: SocketAddr, length: usize) -> Option<u16> {
    let output = Command::new(curl)
        .env_clear()
        .args(["--silent", "--http2-prior-knowledge", "--max-time", "5"])
        .args(["--output", "/dev/null", "--write-out", "%{http_code}"])
        .arg("--header")
        .arg(format!("X-Long: {}", "a".repeat(length)))
        .arg(format!("http://{addr}/healthz"))
        .output()
        .expect("run curl");
    let code: u16 = String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .expect("curl writes a status code");
    (output.status.success() && code != 0).then_some(code)
}

/// Over HTTP/2, nginx applies `large_client_header_buffers`'s 8 KiB to a
/// header field as compressed (HPACK's Huffman code takes at least 5 bits
/// a character), so a field passes up to 8192 × 8 / 5 = 13 107 bytes and
/// not one byte more: the bound docs/deployment.md states.
#[test]
fn over_http2_nginx_bounds_a_header_at_13107_bytes() {
    let Some(nginx) = nginx() else {
        return skipped("deploy: HTTP/2 header bound at nginx", "nginx not found");
    };
    let Some(curl) = program("curl", &[]) else {
        return skipped("deploy: HTTP/2 header bound at nginx", "curl not found");
    };
    let features = Command::new(&curl)
        .arg("--version")
        .output()
        .expect("run curl --version");
    if !String::from_utf8_lossy(&features.stdout).contains("HTTP2") {
        return skipped(
            "deploy: HTTP/2 header bound at nginx",
            "curl was built without HTTP/2",
        );
    }
    let server = server(&[]);
    let proxy = Proxy::nginx_listening(&nginx, server.addr, "http2");
    assert_eq!(http2_status_with_header(&curl, proxy.addr, 100), Some(200));
    assert_eq!(
        http2_status_with_header(&curl, proxy.addr, 13_107),
        Some(200)
    );
    assert_eq!(http2_status_with_header(&curl, proxy.addr, 13_108), None);
}

#[test]
fn the_shipped_nginx_site_passes_nginx_t() {
    let Some(nginx) = nginx() else {
        return skipped("deploy: nginx -t of the site", "nginx not found");
    };
    let Some(openssl) = program("openssl", &[]) else {
        return skipped("deploy: nginx -t of the site", "openssl not found");
    };
    // As installed: the site in the main configuration's http block, the
    // snippet under snippets/; only the certificate is a stand-in.
    let dir = TempDir::new("nginx-t");
    fs::create_dir(dir.join("snippets")).expect("create snippets/");
    fs::copy(
        format!("{DEPLOY}/nginx/whatsapp-webhook-proxy.conf"),
        dir.join("snippets/whatsapp-webhook-proxy.conf"),
    )
    .expect("copy the snippet");
    let made = Command::new(openssl)
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=hooks.example.com", "-keyout"])
        .arg(dir.join("privkey.pem"))
        .arg("-out")
        .arg(dir.join("fullchain.pem"))
        .stdin(Stdio::null())
        .output()
        .expect("run openssl");
    assert!(made.status.success(), "{made:?}");
    let site = fs::read_to_string(format!("{DEPLOY}/nginx/whatsapp-webhook.conf"))
        .expect("read the site")
        .replace(
            "/etc/letsencrypt/live/hooks.example.com/",
            &format!("{}/", dir.0.display()),
        );
    fs::write(dir.join("whatsapp-webhook.conf"), site).expect("write the site");
    let main = nginx_conf(&dir, "include whatsapp-webhook.conf;");
    fs::write(dir.join("nginx.conf"), main).expect("write nginx.conf");
    let tested = Command::new(nginx)
        .arg("-t")
        .arg("-p")
        .arg(&dir.0)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .arg("-e")
        .arg(dir.join("error.log"))
        .env_clear()
        .stdin(Stdio::null())
        .output()
        .expect("run nginx -t");
    let said = String::from_utf8_lossy(&tested.stderr);
    assert!(tested.status.success(), "{said}");
    assert!(said.contains("test is successful"), "{said}");
}

#[test]
fn the_systemd_unit_passes_systemd_analyze_verify() {
    let Some(analyze) = program("systemd-analyze", &[]) else {
        return skipped("deploy: the systemd unit", "systemd-analyze not found");
    };
    // The unit as shipped, with the binary where this build put it.
    let dir = TempDir::new("systemd");
    let unit = fs::read_to_string(format!("{DEPLOY}/systemd/whatsapp-webhook.service"))
        .expect("read the unit");
    assert_eq!(
        unit.matches("ExecStart=/usr/local/bin/whatsapp-webhook\n")
            .count(),
        1
    );
    let unit = unit.replace(
        "ExecStart=/usr/local/bin/whatsapp-webhook\n",
        &format!("ExecStart={}\n", Binary::path()),
    );
    let path = dir.join("whatsapp-webhook.service");
    fs::write(&path, unit).expect("write the unit");
    let verified = Command::new(analyze)
        .arg("verify")
        .arg(&path)
        .env_clear()
        .stdin(Stdio::null())
        .output()
        .expect("run systemd-analyze verify");
    let said = String::from_utf8_lossy(&verified.stderr);
    assert!(verified.status.success(), "{said}");
    // Unknown or malformed settings are warnings, not failures.
    let about_unit: Vec<&str> = said
        .lines()
        .filter(|line| line.contains("whatsapp-webhook.service"))
        .collect();
    assert!(about_unit.is_empty(), "{said}");
}

#[test]
fn signed_requests_and_health_checks_pass_through_caddy() {
    let Some(caddy) = caddy() else {
        return skipped("deploy: signed requests through Caddy", "caddy not found");
    };
    let mut server = server(&[]);
    let proxy = Proxy::caddy(&caddy, server.addr);

    signed_requests_pass(&mut server, &proxy);
    only_the_servers_paths_pass(&mut server, &proxy);
}

#[test]
fn what_tiny_http_cannot_survive_is_stopped_at_caddy_or_the_server() {
    let Some(caddy) = caddy() else {
        return skipped("deploy: hostile requests through Caddy", "caddy not found");
    };
    let mut server = server_with_64_descriptors();
    let proxy = Proxy::caddy(&caddy, server.addr);

    http2_request_lines_get_505(&proxy);

    // Caddy streams a chunked body on in chunks of its own framing: the
    // server refuses it (411), and tiny_http, reading on, meets Caddy's
    // first chunk size, which is no request. A request in the body never
    // reaches the server as one.
    let hidden = b"GET /healthz?hidden HTTP/1.1\r\nHost: hooks.example.com\r\n\r\n";
    let mut request = b"POST /whatsapp HTTP/1.1\r\nHost: hooks.example.com\r\n\
        Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n"
        .to_vec();
    request.extend_from_slice(format!("{:x}\r\n", hidden.len()).as_bytes());
    request.extend_from_slice(hidden);
    request.extend_from_slice(b"\r\n0\r\n\r\n");
    assert_eq!(proxy.request(&request).status(), 411);
    let answered = answered_until_marker(&mut server, &proxy);
    assert!(
        answered
            .iter()
            .any(|line| line.contains("refused POST /whatsapp")),
        "the server refused it: {answered:#?}"
    );
    assert!(
        !answered.iter().any(|line| line.contains("GET -> ")),
        "{answered:#?}"
    );

    // Caddy reads a Transfer-Encoding as Go does and streams the body on
    // chunked: the server refuses that, and the request behind it is
    // answered in turn, so Caddy and the server agree on where each ends.
    let mut stream = connect(proxy.addr);
    stream
        .write_all(
            b"POST /whatsapp HTTP/1.1\r\nHost: hooks.example.com\r\nContent-Length: 4\r\n\
              Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n\
              GET /healthz HTTP/1.1\r\nHost: hooks.example.com\r\n\r\n",
        )
        .expect("send");
    let mut reader = BufReader::new(stream);
    assert_eq!(read_response(&mut reader, false).status(), 411);
    assert_eq!(read_response(&mut reader, false).body_text(), "ok\n");

    let long_header = format!(
        "GET /healthz HTTP/1.1\r\nHost: hooks.example.com\r\nX-Long: {}\r\n\r\n",
        "a".repeat(30_000)
    );
    assert_eq!(proxy.status_of(long_header.as_bytes()), 431);

    // Caddy passes Upgrade requests on; the server answers them at once
    // without reading from the connection.
    upgrades_are_answered(&proxy);
}
