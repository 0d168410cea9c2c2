//! Sending `check`'s request with ureq, as Twilio would: one deadline for
//! the whole exchange, redirects followed like a browser follows them, at
//! most [`MAX_ANSWER_BYTES`] of the answer read. A request that gets no
//! answer is turned into the error Twilio would log.

use std::io;
use std::net::ToSocketAddrs;
use std::time::{Duration, Instant};

use ureq::Agent;
use ureq::http::Response;

use crate::check::request::Request;
use crate::twilio::verdict::{MAX_ANSWER_BYTES, Refusal};

/// The most redirects followed, as many as a browser follows.
pub const MAX_REDIRECTS: usize = 10;

/// What came back, or did not.
#[derive(Debug)]
pub struct Exchange {
    /// The answer, or the error Twilio would log for getting none.
    pub answer: Result<Answered, Refusal>,
    /// The redirects followed: each status and the URL it sent to.
    pub redirects: Vec<(u16, String)>,
    /// The time from the first byte sent to the last byte read.
    pub elapsed: Duration,
}

/// An answer, as read.
#[derive(Debug)]
pub struct Answered {
    /// The status code.
    pub status: u16,
    /// The `Content-Type` header, if any.
    pub content_type: Option<String>,
    /// The body, or its first [`MAX_ANSWER_BYTES`] when it is longer.
    pub body: Vec<u8>,
    /// Whether the body is longer than [`MAX_ANSWER_BYTES`].
    pub too_large: bool,
    /// Whether the body came in chunks, without a `Content-Length`.
    pub chunked: bool,
    /// The code of an error page from ngrok (its `ngrok-error-code`
    /// header), if the answer is one.
    pub ngrok_error: Option<String>,
    /// Whether the answer says the reply goes out later, through the
    /// Messages API (this server's [`REPLY_LATER_HEADER`]).
    ///
    /// [`REPLY_LATER_HEADER`]: crate::answer::REPLY_LATER_HEADER
    pub reply_later: bool,
}

/// Sends `request`, following redirects, and reads the answer; gives up
/// after `timeout` in all.
pub fn send(request: &Request, timeout: Duration) -> Exchange {
    let agent: Agent = Agent::config_builder()
        .http_status_as_error(false)
        // Redirects are followed below, signed again for each URL.
        .max_redirects(0)
        // Twilio's own headers are set on each request.
        .user_agent(ureq::config::AutoHeaderValue::None)
        .accept(ureq::config::AutoHeaderValue::None)
        .build()
        .into();
    let start = Instant::now();
    let mut request = request.clone();
    let mut redirects = Vec::new();
    let answer = loop {
        let left = timeout.saturating_sub(start.elapsed());
        let mut response = match call(&agent, &request, left) {
            Ok(response) => response,
            Err(error) => {
                let closed = matches!(&error, ureq::Error::Io(_));
                let mut refusal = unanswered(error, timeout);
                if closed && refusal.code == Some(11200) && speaks_plain_http(&request.url) {
                    refusal = Refusal {
                        code: Some(11220),
                        problem: "the TLS handshake failed: the port answers plain HTTP".to_owned(),
                        fix: "the port does not speak HTTPS: use an http:// URL for a plain \
                              HTTP server (ngrok's addresses speak both)"
                            .to_owned(),
                    };
                }
                break Err(refusal);
            }
        };
        let status = response.status().as_u16();
        let location = header(&response, "Location");
        if let (301 | 302 | 303 | 307 | 308, Some(location)) = (status, location) {
            if redirects.len() == MAX_REDIRECTS {
                break Err(Refusal {
                    code: Some(11200),
                    problem: format!("more than {MAX_REDIRECTS} redirects"),
                    fix: "configure the final URL in Twilio, and end the redirect loop".to_owned(),
                });
            }
            let next = resolve(&request.url, &location);
            redirects.push((status, next.clone()));
            request = request.redirected(status, next);
            continue;
        }
        break read(&mut response, timeout);
    };
    Exchange {
        answer,
        redirects,
        elapsed: start.elapsed(),
    }
}

fn call(
    agent: &Agent,
    request: &Request,
    left: Duration,
) -> Result<Response<ureq::Body>, ureq::Error> {
    // A host name that does not resolve is 11210 to Twilio: found here, and
    // not from how the client words its failure.
    if let Some((host, port)) = host_and_port(&request.url) {
        if (host.as_str(), port).to_socket_addrs().is_err() {
            return Err(ureq::Error::HostNotFound);
        }
    }
    macro_rules! with_headers {
        ($builder:expr) => {{
            let mut builder = $builder.config().timeout_global(Some(left)).build();
            for (name, value) in &request.headers {
                builder = builder.header(*name, value);
            }
            builder
        }};
    }
    match &request.body {
        Some(body) => with_headers!(agent.post(&request.url)).send(body.as_bytes()),
        None if request.post => with_headers!(agent.post(&request.url)).send_empty(),
        None => with_headers!(agent.get(&request.url)).call(),
    }
}

fn read(response: &mut Response<ureq::Body>, timeout: Duration) -> Result<Answered, Refusal> {
    let content_type = header(response, "Content-Type");
    let ngrok_error = header(response, "ngrok-error-code");
    let reply_later = header(response, crate::answer::REPLY_LATER_HEADER.0).is_some();
    let chunked = header(response, "Transfer-Encoding")
        .is_some_and(|coding| coding.to_ascii_lowercase().contains("chunked"));
    let limit = MAX_ANSWER_BYTES as u64;
    let (body, too_large) = match response
        .body_mut()
        .with_config()
        .limit(limit + 1)
        .read_to_vec()
    {
        Ok(body) => (body, false),
        Err(ureq::Error::BodyExceedsLimit(_)) => (Vec::new(), true),
        Err(error) => return Err(unanswered(error, timeout)),
    };
    Ok(Answered {
        status: response.status().as_u16(),
        content_type,
        too_large: too_large || body.len() > MAX_ANSWER_BYTES,
        body,
        chunked,
        ngrok_error,
        reply_later,
    })
}

/// Whether `url` is an `https://` URL whose port answers plain HTTP: a
/// server that does not speak TLS may wait for a line end and close, which
/// looks to the TLS client like any closed connection.
fn speaks_plain_http(url: &str) -> bool {
    if !url.starts_with("https://") {
        return false;
    }
    let Some(addr) = host_and_port(url)
        .and_then(|(host, port)| (host.as_str(), port).to_socket_addrs().ok()?.next())
    else {
        return false;
    };
    let patience = Duration::from_secs(2);
    let asked = (|| {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect_timeout(&addr, patience)?;
        stream.set_read_timeout(Some(patience))?;
        stream.write_all(b"HEAD / HTTP/1.0\r\n\r\n")?;
        let mut start = [0u8; 5];
        stream.read_exact(&mut start)?;
        Ok::<_, io::Error>(start)
    })();
    asked.is_ok_and(|start| &start == b"HTTP/")
}

/// The host (without an IPv6 literal's brackets) and port of `url`.
fn host_and_port(url: &str) -> Option<(String, u16)> {
    let uri = ureq::http::Uri::try_from(url).ok()?;
    let host = uri.host()?.trim_start_matches('[').trim_end_matches(']');
    let port = uri
        .port_u16()
        .unwrap_or(if uri.scheme_str() == Some("https") {
            443
        } else {
            80
        });
    Some((host.to_owned(), port))
}

fn header(response: &Response<ureq::Body>, name: &str) -> Option<String> {
    let value = response.headers().get(name)?;
    Some(String::from_utf8_lossy(value.as_bytes()).into_owned())
}

/// The URL a `Location` header names, relative to `base`.
fn resolve(base: &str, location: &str) -> String {
    let location = location.trim();
    if location.contains("://") {
        return location.to_owned();
    }
    let (scheme, rest) = base.split_once("://").unwrap_or(("http", base));
    if let Some(network_path) = location.strip_prefix("//") {
        return format!("{scheme}://{network_path}");
    }
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    if location.starts_with('/') {
        return format!("{scheme}://{authority}{location}");
    }
    let path = path.split('?').next().unwrap_or_default();
    let directory = match path.rfind('/') {
        Some(slash) => &path[..=slash],
        None => "/",
    };
    format!("{scheme}://{authority}{directory}{location}")
}

/// The error Twilio would log for a request that got no usable answer.
fn unanswered(error: ureq::Error, timeout: Duration) -> Refusal {
    use ureq::Error;

    let refusal = |code, problem: String, fix: &str| Refusal {
        code: Some(code),
        problem,
        fix: fix.to_owned(),
    };
    let running = "make sure the server (and ngrok, if the URL is ngrok's) is running, and that \
                   the URL's host and port are the ones it listens on";
    // TLS failures come wrapped in I/O errors.
    if let Error::Io(io) = &error {
        if let Some(tls) = tls_error(io) {
            return certificate_or_handshake(tls.clone(), &io.to_string());
        }
    }
    match error {
        Error::HostNotFound => refusal(
            11210,
            "the URL's host name cannot be resolved".to_owned(),
            "check the host name; ngrok's free addresses change when ngrok restarts: copy the \
             new one from ngrok's screen",
        ),
        Error::Io(error) => match error.kind() {
            io::ErrorKind::ConnectionRefused => refusal(
                11205,
                "the connection was refused: nothing listens at that address and port".to_owned(),
                running,
            ),
            io::ErrorKind::TimedOut => timed_out(timeout),
            io::ErrorKind::NetworkUnreachable
            | io::ErrorKind::HostUnreachable
            | io::ErrorKind::AddrNotAvailable => {
                refusal(11205, format!("the connection failed: {error}"), running)
            }
            _ => refusal(
                11200,
                format!("the connection failed before a complete answer: {error}"),
                "look at the server's log: it closed the connection without answering",
            ),
        },
        Error::Timeout(ureq::Timeout::Resolve | ureq::Timeout::Connect)
        | Error::ConnectionFailed => refusal(
            11205,
            "the connection could not be set up".to_owned(),
            running,
        ),
        Error::Timeout(_) => timed_out(timeout),
        Error::Rustls(tls) => {
            let said = tls.to_string();
            certificate_or_handshake(tls, &said)
        }
        Error::Tls(_) => refusal(
            11220,
            format!("the TLS handshake failed: {error}"),
            "check that the port speaks HTTPS (an http:// URL for a plain HTTP server)",
        ),
        other => refusal(
            11200,
            format!("no valid HTTP answer: {other}"),
            "look at the server's log, and at what sits between it and the URL (proxy, ngrok)",
        ),
    }
}

/// The TLS error an I/O error wraps, if it wraps one.
fn tls_error(error: &io::Error) -> Option<&rustls::Error> {
    error.get_ref()?.downcast_ref::<rustls::Error>()
}

/// The error Twilio logs for a TLS failure: which certificate problem
/// (11235, 11236, 11237), or a failed handshake (11220).
fn certificate_or_handshake(tls: rustls::Error, said: &str) -> Refusal {
    use rustls::CertificateError as Why;
    let refusal = |code, problem: String, fix: &str| Refusal {
        code: Some(code),
        problem,
        fix: fix.to_owned(),
    };
    let certificate_fix = "serve a certificate from a public authority for the URL's host name, \
                           with its intermediate certificates (ngrok's addresses have one)";
    match tls {
        rustls::Error::InvalidCertificate(certificate) => {
            let code = match certificate {
                Why::NotValidForName | Why::NotValidForNameContext { .. } => 11235,
                Why::Expired | Why::ExpiredContext { .. } => 11236,
                // Self-signed, a missing intermediate, a CA's own certificate
                // served as the server's: no path to a trusted authority.
                Why::UnknownIssuer | Why::BadSignature => 11237,
                Why::Other(ref other) if other.to_string().contains("CaUsedAsEndEntity") => 11237,
                _ => 11220,
            };
            refusal(
                code,
                format!("the server's certificate is not valid: {said}"),
                certificate_fix,
            )
        }
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => refusal(
            11220,
            format!("the TLS handshake failed: {said}"),
            "the port does not speak HTTPS: use an http:// URL for a plain HTTP server (ngrok's \
             addresses speak both)",
        ),
        _ => refusal(
            11220,
            format!("the TLS handshake failed: {said}"),
            "check that the port speaks HTTPS (an http:// URL for a plain HTTP server)",
        ),
    }
}

fn timed_out(timeout: Duration) -> Refusal {
    Refusal {
        code: Some(11200),
        problem: format!("no complete answer within {} s", timeout.as_secs()),
        fix: "answer at once: Twilio gives up after 15 seconds; do slow work after answering, \
              and send it with the REST API"
            .to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_are_resolved_like_a_browser_resolves_them() {
        let base = "https://e.com:8443/hooks/whatsapp?x=1";
        for (location, resolved) in [
            ("http://other.com/a", "http://other.com/a"),
            ("//other.com/a", "https://other.com/a"),
            ("/whatsapp/", "https://e.com:8443/whatsapp/"),
            ("next?y=2", "https://e.com:8443/hooks/next?y=2"),
            (" /x ", "https://e.com:8443/x"),
        ] {
            assert_eq!(resolve(base, location), resolved, "{location}");
        }
        assert_eq!(resolve("http://e.com", "a"), "http://e.com/a");
        assert_eq!(resolve("http://e.com?q=/x", "/a"), "http://e.com/a");
    }
}
