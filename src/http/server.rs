//! The server: the request loop over tiny_http, and what keeps it answering
//! when clients are slow, hostile or too many.
//!
//! # Threads
//!
//! - **The request loop** (the thread that calls [`Server::run`]) takes each
//!   request tiny_http has parsed and answers it, unless answering could
//!   wait on the client. A request whose body tiny_http already holds, or
//!   that has none, is answered from memory: that is every request Twilio
//!   sends with a body up to 1 KiB.
//! - **Body workers** ([`BODY_WORKERS`] threads) take every request whose
//!   body is still on the socket: reading it, and even dropping the request
//!   (tiny_http then reads and discards the body), waits for the client. A
//!   client that stalls mid-body holds one worker until the timeout, and no
//!   one else.
//! - **tiny_http** reads each connection on a thread of its own. Every
//!   accepted socket inherits read and write timeouts from the listening
//!   socket ([`listener`]), so a connection idle
//!   mid-headers or between requests closes after the timeout.
//! - **The watchdog** ([`watchdog`](crate::http::watchdog)) proves every second that
//!   connections are still accepted. tiny_http's accept thread ends for good
//!   on its first accept error (running out of file descriptors, or the
//!   listening socket's timeout); whenever it ends, the loop starts a new
//!   tiny_http server on the same socket. The old one is drained by a thread
//!   of its own until its connections fall silent.
//!
//! # Refusals
//!
//! A request is refused before any of its body is read when its framing is
//! ambiguous ([`framing`]); its connection is then
//! [poisoned](crate::http::poison) and every later request on it refused too,
//! because tiny_http cannot close a connection. A body over the limit gets
//! `413` unread; tiny_http then discards it. To discard it tiny_http
//! allocates the whole announced length at once, so a request announcing more
//! than this process can allocate is *parked* instead, unanswered, for the
//! life of the process; if too many pile up, the server stops with an error
//! rather than run out of file descriptors.

use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use log::{debug, error, info, warn};
use tiny_http::Request;

use crate::answer::{Answer, Responses, Webhook};
use crate::config::Config;
use crate::http::body::MAX_BODY_BYTES;
use crate::http::framing::{self, Body, Refusal};
use crate::http::listener;
use crate::http::poison::{Poisoned, Taint};
use crate::http::watchdog::Watchdog;
use crate::logging::Escaped;
use crate::routes::{self, WEBHOOK_PATH};
use crate::twilio::signature::{AUTH_TOKEN_VAR, SHARED_KEY_VAR, SIGNATURE_HEADER};

/// How many threads read bodies that are still on the socket.
pub const BODY_WORKERS: usize = 16;

/// How often the watchdog probes, at most.
const PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// How long the server tries to listen again before it gives up and exits.
const RESTART_GIVE_UP: Duration = Duration::from_secs(60);

/// A bound server, ready to [`run`](Server::run).
pub struct Server {
    core: Arc<Core>,
    control: Arc<Control>,
    listener: TcpListener,
    local_addr: SocketAddr,
    timeout: Duration,
}

/// Stops a running server from another thread.
#[derive(Clone)]
pub struct Handle {
    control: Arc<Control>,
}

impl Handle {
    /// Asks the server to stop: requests already read are answered, then
    /// [`Server::run`] returns.
    pub fn stop(&self) {
        self.control.raise(Event::Stop);
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
        let file_limit = match listener::raise_file_limit() {
            Ok(limit) => {
                debug!("open file limit: {limit}");
                limit
            }
            Err(error) => {
                warn!("cannot raise the open file limit: {error}");
                1024
            }
        };
        let addr = SocketAddr::new(config.host, config.port);
        let listener = listener::bind(addr, config.timeout)
            .map_err(|source| ServerError::Bind { addr, source })?;
        let local_addr = listener.local_addr().map_err(ServerError::Setup)?;
        let http = tiny_http_on(&listener).map_err(ServerError::Setup)?;
        log_settings(config);
        let control = Arc::new(Control {
            current: Mutex::new(Arc::new(http)),
            event: Mutex::new(None),
            stopping: AtomicBool::new(false),
        });
        let (jobs, receiver) = mpsc::channel();
        let core = Arc::new(Core {
            webhook: Webhook::new(config),
            responses: Responses::new(),
            poisoned: Poisoned::new(config.timeout * 2 + Duration::from_secs(1)),
            jobs,
            receiver: Mutex::new(receiver),
            // Each parked request holds two descriptors; keep most for work.
            max_parked: usize::try_from(file_limit / 8)
                .unwrap_or(usize::MAX)
                .max(16),
            parked: AtomicUsize::new(0),
            threads: Mutex::new(Vec::new()),
            timeout: config.timeout,
            control: Arc::clone(&control),
        });
        Ok(Server {
            core,
            control,
            listener,
            local_addr,
            timeout: config.timeout,
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
            control: Arc::clone(&self.control),
        }
    }

    /// Answers requests until [`Handle::stop`] is called.
    ///
    /// # Errors
    ///
    /// Fails when threads cannot be started, or when too many requests
    /// announcing impossible bodies have been parked.
    pub fn run(self) -> Result<(), ServerError> {
        for number in 1..=BODY_WORKERS {
            let core = Arc::clone(&self.core);
            let worker = thread::Builder::new()
                .name(format!("body-{number}"))
                .spawn(move || core.work())
                .map_err(ServerError::Setup)?;
            self.core.keep(worker);
        }
        let watchdog = Watchdog::spawn(self.local_addr, PROBE_INTERVAL.min(self.timeout / 4), {
            let control = Arc::clone(&self.control);
            move |reason| control.raise(Event::ListenerDead(reason))
        })
        .map_err(ServerError::Setup)?;
        log_start(self.local_addr);

        let mut current = self.control.current();
        let mut scratch = Vec::with_capacity(MAX_BODY_BYTES + 1);
        let mut restarts = Backoff::default();
        let outcome = loop {
            match current.recv() {
                Ok(request) => self.core.dispatch(request, &mut scratch),
                Err(recv_error) => match self.control.take() {
                    Some(Event::Stop) => break Ok(()),
                    Some(Event::Fatal(reason)) => break Err(ServerError::Fatal(reason)),
                    Some(Event::ListenerDead(reason)) => {
                        current = self.restart(current, &reason, &mut restarts);
                    }
                    None => current = self.restart(current, &recv_error.to_string(), &mut restarts),
                },
            }
        };
        watchdog.stop();
        // Requests tiny_http has already read are answered, not dropped.
        while let Ok(Some(request)) = current.try_recv() {
            self.core.dispatch(request, &mut scratch);
        }
        self.core.finish(self.timeout + Duration::from_secs(1));
        outcome
    }

    /// Starts a new tiny_http server on the listening socket after `old`'s
    /// accept thread ended, and leaves `old` to a drain thread. Returns `old`
    /// if the server is asked to stop first.
    fn restart(
        &self,
        old: Arc<tiny_http::Server>,
        reason: &str,
        backoff: &mut Backoff,
    ) -> Arc<tiny_http::Server> {
        warn!("the listener stopped accepting connections ({reason}); listening again");
        let since = Instant::now();
        let new = loop {
            backoff.wait();
            if self.control.stopping() {
                return old;
            }
            match tiny_http_on(&self.listener) {
                Ok(http) => break Arc::new(http),
                // Most likely still out of file descriptors: wait for
                // connections to close, but not forever.
                Err(error) if since.elapsed() > RESTART_GIVE_UP => {
                    self.control.raise(Event::Fatal(format!(
                        "cannot listen again for {}s: {error}",
                        RESTART_GIVE_UP.as_secs()
                    )));
                    return old;
                }
                Err(error) => debug!("cannot listen again yet: {error}"),
            }
        };
        *lock(&self.control.current) = Arc::clone(&new);
        let core = Arc::clone(&self.core);
        let drain_idle = self.timeout * 2 + Duration::from_secs(1);
        match thread::Builder::new()
            .name("drain".into())
            .spawn(move || core.drain(&old, drain_idle))
        {
            Ok(thread) => self.core.keep(thread),
            Err(error) => error!("cannot start a thread to drain the old listener: {error}"),
        }
        new
    }
}

/// A tiny_http server accepting on (a duplicate of) `listener`.
fn tiny_http_on(listener: &TcpListener) -> io::Result<tiny_http::Server> {
    tiny_http::Server::from_listener(listener.try_clone()?, None).map_err(io::Error::other)
}

/// The delay before each attempt to listen again: none at first, then
/// growing from 50 ms to 1 s while attempts keep failing or accept threads
/// keep ending quickly (the process is out of file descriptors).
#[derive(Debug, Default)]
struct Backoff {
    last: Option<Instant>,
    delay: Duration,
}

impl Backoff {
    fn wait(&mut self) {
        let now = Instant::now();
        let quick = self
            .last
            .is_some_and(|last| now.duration_since(last) < Duration::from_secs(5));
        self.delay = if quick {
            (self.delay * 2).clamp(Duration::from_millis(50), Duration::from_secs(1))
        } else {
            Duration::ZERO
        };
        thread::sleep(self.delay);
        self.last = Some(Instant::now());
    }
}

/// The current tiny_http server and why the loop should wake up.
struct Control {
    current: Mutex<Arc<tiny_http::Server>>,
    event: Mutex<Option<Event>>,
    stopping: AtomicBool,
}

#[derive(Debug)]
enum Event {
    Stop,
    Fatal(String),
    ListenerDead(String),
}

impl Control {
    /// Records `event` and wakes the request loop. A stop outranks a dead
    /// listener; the first stop wins.
    fn raise(&self, event: Event) {
        {
            let mut slot = lock(&self.event);
            let replace = matches!(
                (&*slot, &event),
                (None, _) | (Some(Event::ListenerDead(_)), Event::Stop | Event::Fatal(_))
            );
            if matches!(event, Event::Stop | Event::Fatal(_)) {
                self.stopping.store(true, Ordering::Release);
            }
            if replace {
                *slot = Some(event);
            }
        }
        lock(&self.current).unblock();
    }

    fn take(&self) -> Option<Event> {
        lock(&self.event).take()
    }

    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    fn current(&self) -> Arc<tiny_http::Server> {
        Arc::clone(&lock(&self.current))
    }
}

/// What answering needs, shared by the loop, the body workers and drain
/// threads.
struct Core {
    webhook: Webhook,
    responses: Responses,
    poisoned: Poisoned,
    /// Work for the body workers; `None` ends one.
    jobs: Sender<Option<Job>>,
    receiver: Mutex<Receiver<Option<Job>>>,
    max_parked: usize,
    parked: AtomicUsize,
    threads: Mutex<Vec<JoinHandle<()>>>,
    timeout: Duration,
    control: Arc<Control>,
}

/// Work for a body worker: a request whose body is still on the socket (or
/// whose client does not read), to answer or to refuse.
struct Job {
    request: Request,
    refusal: Option<Refusal>,
    length: u64,
}

impl Core {
    /// Answers a request, or hands it to a body worker if answering could
    /// wait on the client. `scratch` is the caller's body buffer.
    fn dispatch(&self, mut request: Request, scratch: &mut Vec<u8>) {
        let framing = framing::judge(
            request
                .headers()
                .iter()
                .map(|h| (h.field.as_str().as_str(), h.value.as_str())),
            MAX_BODY_BYTES as u64,
        );
        let taint = request
            .remote_addr()
            .and_then(|peer| self.poisoned.get(*peer));
        let refusal = match taint {
            Some(Taint::Refused) => Some(Refusal::POISONED),
            _ => framing.refusal,
        };
        // Writing to a client that does not read its answers may wait.
        let body = match (framing.body, taint) {
            (Body::Ready, Some(Taint::Unread)) => Body::Waiting { length: 0 },
            (body, _) => body,
        };
        match (body, refusal) {
            (Body::Ready, Some(refusal)) => self.refuse(request, refusal),
            (Body::Ready, None) => self.guarded(|| {
                let answer = self.webhook.answer(&mut request, scratch, None);
                self.send(request, answer);
            }),
            (Body::Waiting { length }, refusal) => {
                let job = Job {
                    request,
                    refusal,
                    length,
                };
                if let Err(mpsc::SendError(Some(job))) = self.jobs.send(Some(job)) {
                    // Cannot happen while `self` holds the receiver; if it
                    // did, answering here is better than losing the request.
                    self.run_job(job, scratch);
                }
            }
        }
    }

    /// A body worker's loop.
    fn work(&self) {
        let mut scratch = Vec::with_capacity(MAX_BODY_BYTES + 1);
        loop {
            // Waiting for a job while holding the lock lets exactly one idle
            // worker wait on the channel; the others wait for the lock.
            let job = lock(&self.receiver).recv();
            match job {
                Ok(Some(job)) => self.run_job(job, &mut scratch),
                Ok(None) | Err(_) => return,
            }
        }
    }

    fn run_job(&self, job: Job, scratch: &mut Vec<u8>) {
        let Job {
            mut request,
            refusal,
            length,
        } = job;
        match refusal {
            // Nothing of the body has been read: discarding it means
            // allocating all of it.
            Some(refusal) if length > 0 && !can_discard(length) => {
                self.park(request, refusal, length);
            }
            Some(refusal) => self.refuse(request, refusal),
            None => self.guarded(|| {
                let deadline = Instant::now() + self.timeout;
                let answer = self.webhook.answer(&mut request, scratch, Some(deadline));
                self.send(request, answer);
            }),
        }
    }

    /// Serves a retired tiny_http server's remaining requests until none has
    /// come for `idle`, or the server stops.
    fn drain(&self, old: &tiny_http::Server, idle: Duration) {
        let mut scratch = Vec::new();
        let tick = Duration::from_millis(200);
        let mut quiet = Duration::ZERO;
        while quiet < idle {
            match old.recv_timeout(tick) {
                Ok(Some(request)) => {
                    quiet = Duration::ZERO;
                    self.dispatch(request, &mut scratch);
                }
                Ok(None) | Err(_) if self.control.stopping() => return,
                Ok(None) | Err(_) => quiet += tick,
            }
        }
        debug!("drained an old listener");
    }

    fn refuse(&self, request: Request, refusal: Refusal) {
        let peer = request.remote_addr().copied();
        let what = format!(
            "{} {} from {}",
            request.method(),
            Escaped(routes::split_url(request.url()).0),
            peer.map_or_else(|| "?".to_owned(), |peer| peer.to_string())
        );
        let reason = refusal.reason.trim_end();
        if refusal == Refusal::POISONED {
            debug!("refused {what}: {reason}");
        } else {
            warn!("refused {what}: {reason}");
        }
        if let (true, Some(peer)) = (refusal.poisons, peer) {
            self.poisoned.add(peer, Taint::Refused);
        }
        self.send(request, Answer::text(refusal.status, refusal.reason));
    }

    /// Keeps a request that cannot be dropped, ever: tiny_http would try to
    /// allocate its whole announced body, and abort the process. Its
    /// connection stays open, unanswered, until the process ends.
    fn park(&self, request: Request, refusal: Refusal, length: u64) {
        std::mem::forget(request);
        let count = self.parked.fetch_add(1, Ordering::Relaxed) + 1;
        warn!(
            "parked a request announcing {length} bytes ({}): tiny_http cannot discard a body \
             it cannot allocate; {count} parked for the life of the process",
            refusal.reason.trim_end()
        );
        if count >= self.max_parked {
            self.control.raise(Event::Fatal(format!(
                "{count} requests announcing bodies larger than this process can allocate \
                 are parked; stopping before they exhaust its file descriptors \
                 (put a proxy that limits bodies in front)"
            )));
        }
    }

    fn send(&self, request: Request, answer: Answer<'_>) {
        let method = request.method().clone();
        let status = answer.status;
        let peer = request.remote_addr().copied();
        match request.respond(self.responses.response(answer)) {
            Ok(()) => debug!("{method} -> {status}"),
            Err(error) => {
                debug!("{method} -> {status}, but the client did not get it: {error}");
                let unread = matches!(
                    error.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                );
                if let (true, Some(peer)) = (unread, peer) {
                    debug!(
                        "{peer} does not read its answers: its next requests go to body workers"
                    );
                    self.poisoned.add(peer, Taint::Unread);
                }
            }
        }
    }

    /// Runs one request's handling; a panic in it is a bug, but must not end
    /// the thread that serves everyone else. The request, dropped while
    /// unwinding, answers `500`.
    fn guarded(&self, handle: impl FnOnce()) {
        if panic::catch_unwind(AssertUnwindSafe(handle)).is_err() {
            error!("BUG: answering a request panicked");
        }
    }

    fn keep(&self, thread: JoinHandle<()>) {
        let mut threads = lock(&self.threads);
        threads.retain(|thread| !thread.is_finished());
        threads.push(thread);
    }

    /// Stops the body workers once the requests they hold are answered, and
    /// waits up to `grace` for them and for drain threads.
    fn finish(&self, grace: Duration) {
        for _ in 0..BODY_WORKERS {
            // The receiver lives as long as `self`.
            let _ = self.jobs.send(None);
        }
        let deadline = Instant::now() + grace;
        let threads = std::mem::take(&mut *lock(&self.threads));
        for thread in threads {
            while !thread.is_finished() && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(10));
            }
            if thread.is_finished() {
                let _ = thread.join();
            }
        }
    }
}

/// Whether tiny_http can discard `remaining` unread body bytes: it allocates
/// them all at once, and a failed allocation aborts the process. Twice the
/// amount must be available, for a margin.
fn can_discard(remaining: u64) -> bool {
    remaining
        .checked_mul(2)
        .and_then(|bytes| usize::try_from(bytes).ok())
        .is_some_and(|bytes| Vec::<u8>::new().try_reserve_exact(bytes).is_ok())
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks leaves consistent data.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
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
    if config.keys.is_empty() {
        warn!(
            "signature checking is off: anyone who finds this URL can post fake messages; \
             set {AUTH_TOKEN_VAR} to your account's Auth Token to turn it on"
        );
    } else {
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
    /// The server had to stop.
    Fatal(String),
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
            ServerError::Fatal(reason) => f.write_str(reason),
        }
    }
}

impl std::error::Error for ServerError {}
