//! The HTTP server: binds the socket, runs the request loop, answers each
//! request. This is the only module that touches sockets.
//!
//! One thread runs the loop: it takes each request tiny_http has parsed,
//! routes it, and writes the answer. Every answer body is built before the
//! loop starts; a request only costs parsing its parameters and one log line.

use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Mutex, PoisonError};

use log::{debug, error, info, warn};
use tiny_http::{Header, Request, Response, StatusCode};

use crate::config::Config;
use crate::inbound::{self, BodyError, Escaped, Inbound, MAX_BODY_BYTES};
use crate::replies::Replies;
use crate::routes::{self, Route, WEBHOOK_PATH};
use crate::signature::{
    self, AUTH_TOKEN_VAR, Keys, Payload, SETTINGS_HEADER, SHARED_KEY_VAR, SIGNATURE_HEADER, Verdict,
};
use crate::watchdog::Watchdog;

/// A bound server, ready to [`run`](Server::run).
pub struct Server {
    shared: Arc<Shared>,
    app: App,
    local_addr: SocketAddr,
    // Our own handle on the listening socket: if tiny_http's accept thread
    // ends, the port stays open instead of refusing connections.
    _listener: TcpListener,
}

/// What the request loop, the watchdog and [`Handle`]s share.
struct Shared {
    http: tiny_http::Server,
    stop: Mutex<Option<Stop>>,
}

/// Why the request loop should end.
enum Stop {
    Requested,
    ListenerDead(String),
}

impl Shared {
    /// Records why the loop should end (the first reason wins) and wakes it.
    fn stop(&self, why: Stop) {
        self.stop
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_insert(why);
        self.http.unblock();
    }

    fn take_stop(&self) -> Option<Stop> {
        self.stop
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

/// Stops a running server from another thread.
#[derive(Clone)]
pub struct Handle {
    shared: Arc<Shared>,
}

impl Handle {
    /// Asks the request loop to end after the request in hand.
    pub fn stop(&self) {
        self.shared.stop(Stop::Requested);
    }
}

impl Server {
    /// Binds the listening socket and prepares every answer.
    ///
    /// # Errors
    ///
    /// Fails when the address cannot be bound, for example because the port
    /// is already in use.
    pub fn bind(config: &Config) -> Result<Server, ServerError> {
        let addr = SocketAddr::new(config.host, config.port);
        let listener =
            TcpListener::bind(addr).map_err(|source| ServerError::Bind { addr, source })?;
        let local_addr = listener.local_addr().map_err(ServerError::Setup)?;
        let for_tiny_http = listener.try_clone().map_err(ServerError::Setup)?;
        let http = tiny_http::Server::from_listener(for_tiny_http, None)
            .map_err(|error| ServerError::Setup(io::Error::other(error)))?;
        log_settings(config);
        Ok(Server {
            shared: Arc::new(Shared {
                http,
                stop: Mutex::new(None),
            }),
            app: App::new(config),
            local_addr,
            _listener: listener,
        })
    }

    /// The address the server listens on, with the real port when port `0`
    /// was asked for.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A handle that can stop the server once it runs.
    pub fn handle(&self) -> Handle {
        Handle {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Answers requests until [`Handle::stop`] is called.
    ///
    /// # Errors
    ///
    /// Fails when the listener stops accepting connections (tiny_http's
    /// accept thread ended, for example because the process ran out of file
    /// descriptors).
    pub fn run(self) -> Result<(), ServerError> {
        log_start(self.local_addr);
        let watchdog = Watchdog::spawn(self.local_addr, {
            let shared = Arc::clone(&self.shared);
            move |reason| shared.stop(Stop::ListenerDead(reason))
        })
        .map_err(ServerError::Setup)?;

        let mut body = Vec::with_capacity(MAX_BODY_BYTES + 1);
        let outcome = loop {
            match self.shared.http.recv() {
                Ok(request) => {
                    let answered = panic::catch_unwind(AssertUnwindSafe(|| {
                        self.app.answer(request, &mut body);
                    }));
                    if answered.is_err() {
                        // The request was dropped while unwinding, which
                        // sent it a 500; the loop goes on.
                        error!("BUG: answering a request panicked");
                    }
                }
                Err(recv_error) => match self.shared.take_stop() {
                    Some(Stop::Requested) => break Ok(()),
                    Some(Stop::ListenerDead(reason)) => {
                        break Err(ServerError::ListenerDead(reason));
                    }
                    None => break Err(ServerError::ListenerDead(recv_error.to_string())),
                },
            }
        };
        watchdog.stop();
        outcome
    }
}

/// Logs what the configuration means for the messages to come.
fn log_settings(config: &Config) {
    let replies = std::iter::once(("the reply", &config.reply)).chain(
        config
            .rules
            .iter()
            .map(|rule| ("a rule's reply", rule.reply())),
    );
    for (which, reply) in replies {
        if reply.removed() > 0 {
            warn!(
                "removed {} characters that XML forbids from {which}: \"{}\"",
                reply.removed(),
                Escaped(reply.text())
            );
        }
    }
    if !config.rules.is_empty() {
        let keywords: Vec<String> = config
            .rules
            .iter()
            .map(|rule| format!("\"{}\"", Escaped(rule.keyword())))
            .collect();
        info!("keyword rules: {}", keywords.join(", "));
    }
    if config.reply.is_silent() {
        info!("the default reply is empty: messages no rule answers are logged, not answered");
    }
    log_signature_checking(config);
}

fn log_start(addr: SocketAddr) {
    info!("listening on http://{addr}{WEBHOOK_PATH}");
    let ngrok_target = if addr.ip().is_loopback() || addr.ip().is_unspecified() {
        addr.port().to_string()
    } else {
        addr.to_string()
    };
    info!(
        "next: run `ngrok http {ngrok_target}`, then in the Twilio Console open Messaging > \
         Try it out > Send a WhatsApp message > Sandbox settings and paste \
         https://<id>.ngrok-free.app{WEBHOOK_PATH} into \"When a message comes in\" (method POST)"
    );
}

fn log_signature_checking(config: &Config) {
    if config.keys.is_empty() {
        warn!(
            "signature checking is off: anyone who finds this URL can post fake messages; \
             set {AUTH_TOKEN_VAR} to your account's Auth Token to turn it on"
        );
        return;
    }
    let mut secrets = Vec::new();
    for (var, list) in [
        (AUTH_TOKEN_VAR, &config.keys.auth_tokens),
        (SHARED_KEY_VAR, &config.keys.shared_keys),
    ] {
        match list.len() {
            0 => {}
            1 => secrets.push(var.to_owned()),
            n => secrets.push(format!("{var} ({n} values)")),
        }
    }
    let urls = match &config.public_url {
        Some(base) => format!("{base}{WEBHOOK_PATH}"),
        None => format!("X-Forwarded-Proto (default http) :// Host {WEBHOOK_PATH}"),
    };
    info!(
        "checking {SIGNATURE_HEADER} with {}; signed URL: {urls}",
        secrets.join(" and ")
    );
}

/// Everything the loop needs to answer a request, built once.
struct App {
    replies: Replies,
    keys: Keys,
    public_url: Option<String>,
    xml: Header,
    plain: Header,
    webhook_allow: Header,
    health_allow: Header,
}

impl App {
    fn new(config: &Config) -> App {
        App {
            replies: Replies::new(&config.reply, &config.rules),
            keys: config.keys.clone(),
            public_url: config.public_url.clone(),
            xml: header("Content-Type", "text/xml; charset=utf-8"),
            plain: header("Content-Type", "text/plain; charset=utf-8"),
            webhook_allow: header("Allow", routes::WEBHOOK_METHODS),
            health_allow: header("Allow", routes::HEALTH_METHODS),
        }
    }

    /// Answers one request; `body` is scratch space for reading its body.
    fn answer(&self, request: Request, body: &mut Vec<u8>) {
        let route = routes::route(request.method(), request.url());
        if request
            .body_length()
            .is_some_and(|len| len > MAX_BODY_BYTES)
        {
            return self.text(request, 413, "request body too large\n", None);
        }
        match route {
            Route::Webhook => self.webhook(request, body),
            Route::Health => self.text(request, 200, "ok\n", None),
            Route::NotFound => self.text(request, 404, "not found\n", None),
            Route::MethodNotAllowed { allow } => {
                let allow = if allow == routes::WEBHOOK_METHODS {
                    &self.webhook_allow
                } else {
                    &self.health_allow
                };
                self.text(request, 405, "method not allowed\n", Some(allow))
            }
        }
    }

    fn webhook(&self, mut request: Request, body: &mut Vec<u8>) {
        let checking = !self.keys.is_empty();
        let is_form = header_value(&request, "Content-Type").is_some_and(inbound::is_form);
        // Only a bodySHA256 in the URL makes a body that is not a form matter.
        let raw_body_signed = checking && !is_form && request.url().contains("bodySHA256");
        if is_form || raw_body_signed {
            match inbound::read_body(request.as_reader(), MAX_BODY_BYTES, body) {
                Ok(()) => {}
                Err(BodyError::TooLarge { .. }) => {
                    return self.text(request, 413, "request body too large\n", None);
                }
                Err(error @ BodyError::Io(_)) => {
                    debug!("{} {}: {error}", request.method(), WEBHOOK_PATH);
                    return self.text(request, 400, "cannot read the request body\n", None);
                }
            }
        }
        if checking {
            let payload = if is_form {
                Payload::Form(body)
            } else if raw_body_signed {
                Payload::Raw(body)
            } else {
                Payload::Nothing
            };
            if let Err(rejection) = self.check_signature(&request, payload) {
                warn!("rejected {} {WEBHOOK_PATH}: {rejection}", request.method());
                return self.text(request, 403, "invalid or missing Twilio signature\n", None);
            }
        }
        let document = {
            let (_, query) = routes::split_url(request.url());
            let inbound = Inbound::parse(query.as_bytes(), is_form.then_some(body.as_slice()));
            let choice = self.replies.choose(inbound.body.as_deref());
            let (from, text) = (inbound.sender(), inbound.text());
            match choice.keyword {
                None => info!("incoming message from {from}: {text}"),
                Some(_) => info!("incoming message from {from} ({choice}): {text}"),
            }
            choice.document
        };
        let response = Response::new(
            StatusCode(200),
            vec![self.xml.clone()],
            document,
            Some(document.len()),
            None,
        );
        send(request, response);
    }

    /// Checks `X-Twilio-Signature`; the error says why a request is refused
    /// and which URL was checked, never a secret or an expected signature.
    fn check_signature(&self, request: &Request, payload: Payload<'_>) -> Result<(), String> {
        let Some(url) = signature::request_url(
            self.public_url.as_deref(),
            header_value(request, "X-Forwarded-Proto"),
            header_value(request, "Host"),
            request.url(),
        ) else {
            return Err("no Host header to rebuild the URL from (set PUBLIC_URL)".to_owned());
        };
        let verdict = signature::check(
            &self.keys,
            &url,
            payload,
            header_value(request, SIGNATURE_HEADER),
            header_value(request, SETTINGS_HEADER),
        );
        match verdict {
            Verdict::Valid => Ok(()),
            Verdict::NoMatch => Err(format!(
                "{verdict} (checked URL {}; if Twilio called another URL, set PUBLIC_URL to its start)",
                Escaped(&url)
            )),
            _ => Err(format!("{verdict} (checked URL {})", Escaped(&url))),
        }
    }

    fn text(&self, request: Request, status: u16, text: &'static str, extra: Option<&Header>) {
        let mut headers = vec![self.plain.clone()];
        headers.extend(extra.cloned());
        let response = Response::new(
            StatusCode(status),
            headers,
            text.as_bytes(),
            Some(text.len()),
            None,
        );
        send(request, response);
    }
}

/// The value of the first header called `name`.
fn header_value<'a>(request: &'a Request, name: &'static str) -> Option<&'a str> {
    request
        .headers()
        .iter()
        .find(|h| h.field.equiv(name))
        .map(|h| h.value.as_str())
}

fn send(request: Request, response: Response<&[u8]>) {
    let method = request.method().clone();
    let status = response.status_code().0;
    match request.respond(response) {
        Ok(()) => debug!("{method} -> {status}"),
        Err(error) => debug!("{method} -> {status}, but the client did not get it: {error}"),
    }
}

fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("BUG: static headers are ASCII")
}

/// Why the server could not start or had to stop.
#[derive(Debug)]
#[non_exhaustive]
pub enum ServerError {
    /// The listening socket could not be bound.
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why binding failed.
        source: io::Error,
    },
    /// The server could not be set up after binding.
    Setup(io::Error),
    /// The listener stopped accepting connections.
    ListenerDead(String),
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerError::Bind { addr, source } if source.kind() == io::ErrorKind::AddrInUse => {
                write!(
                    f,
                    "cannot listen on {addr}: the port is already in use \
                 (stop the program using it, or choose another port with --port)"
                )
            }
            ServerError::Bind { addr, source } => write!(f, "cannot listen on {addr}: {source}"),
            ServerError::Setup(source) => write!(f, "cannot start the server: {source}"),
            ServerError::ListenerDead(reason) => {
                write!(f, "the server stopped accepting connections: {reason}")
            }
        }
    }
}

impl std::error::Error for ServerError {}
