//! The server: the request loop over tiny_http, and what keeps it answering
//! when clients are slow, hostile or too many.
//!
//! # Threads
//!
//! - **The request loop** (the thread that calls [`Server::run`]) takes each
//!   request tiny_http has parsed. It never reads from a client: a request
//!   whose body tiny_http already holds, or that has none, is answered from
//!   memory (every request Twilio sends with a body up to 1 KiB); any other
//!   goes to a body [reader](crate::http::readers).
//! - **Body readers** take every request whose body is still on the socket,
//!   or is the socket itself (`Connection: upgrade`), each on a thread of
//!   its own: reading it, and even dropping the request (tiny_http then
//!   reads and discards the body), waits for the client. A body must arrive
//!   whole within the timeout; a stalled one delays only itself, and when
//!   too many are being read at once the oldest is dropped.
//! - **tiny_http** reads each connection on a thread of its own. Every
//!   accepted socket inherits read and write timeouts from the listening
//!   socket ([`listener`]), so a connection idle mid-headers or between
//!   requests closes after the timeout.
//! - **[Slow clients](crate::http::slow)**: a client address to which a write
//!   has timed out gets its answers written on a thread of its own, so that
//!   a client that does not read never makes the loop wait.
//! - **The [watchdog](crate::http::watchdog)** proves every second that
//!   connections are still accepted. tiny_http's accept thread ends for good
//!   on its first accept error (running out of file descriptors, or the
//!   listening socket's timeout); whenever it ends, the loop starts a new
//!   tiny_http server on the same socket, while it goes on answering the old
//!   one's connections; a thread then drains the old one until its
//!   connections fall silent. If no connection at all can be answered for
//!   six times the timeout, the server stops with an error that says what
//!   holds the connections, so that a supervisor can start it again.
//!
//! # Answers
//!
//! The app says what to answer ([`Answer`]); this module writes it whole
//! through the request's own writer ([`response`](crate::http::response)):
//! tiny_http's `respond` is never used.
//!
//! # Refusals
//!
//! A request is refused before any of its body is read when its framing is
//! ambiguous or its body too large ([`framing`]). A refusal says
//! `Connection: close`, and then the connection is let go at once: tiny_http
//! has no call that closes a connection, so it reads on until the client
//! closes, as a client told `close` does, or falls silent for the timeout.
//! Whatever the client sent after the refused request is read as requests
//! and answered (bytes that are not a request get tiny_http's own `400`): a
//! proxy re-frames every request and closes its connection after the
//! refusal, and a request from a new connection is never mistaken for one
//! from an old connection that had the same address and port.
//!
//! tiny_http reads and discards a refused request's body before its answer
//! can be written, and to do so allocates the whole announced length at
//! once; a request announcing more than this process can allocate is
//! therefore *parked* instead, unanswered, for the life of the process; if
//! too many pile up, the server stops with an error rather than run out of
//! file descriptors.
//!
//! # Stopping
//!
//! [`Handle::stop`] stops accepting connections at once (the listening
//! socket is shut, so new ones are refused by the system), answers every
//! request that arrives on the connections already accepted with
//! `Connection: close`, waits for bodies still arriving (within the
//! timeout), and then [`Server::run`] returns.

use std::fmt;
use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use log::{debug, error, info, warn};
use tiny_http::{HTTPVersion, Method, Request};

use crate::answer::{Answer, Webhook};
use crate::config::Config;
use crate::handler::Handler;
use crate::http::body::{self, BodyError, MAX_BODY_BYTES};
use crate::http::framing::{self, Body, Refusal};
use crate::http::incoming::Incoming;
use crate::http::listener::{self, WRITE_TIMEOUT};
use crate::http::readers::{Cancel, Readers};
use crate::http::rescue::Recent;
use crate::http::response::Out;
use crate::http::slow::{self, Slow};
use crate::http::sockets::{self, Connections};
use crate::http::watchdog::{Duties, Report, Watchdog};
use crate::logging::Escaped;
use crate::replying::Delivered;
use crate::routes::WEBHOOK_PATH;

/// How often the watchdog probes, at most.
const PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// How many timeouts without a single answered probe before the server
/// gives up: by then idle connections have long been closed, and whatever
/// still holds the descriptors is not letting go.
const GIVE_UP_TIMEOUTS: u32 = 6;

/// At a stop, how long without a request before the loop looks whether a
/// connection may still bring one.
const STOP_QUIET: Duration = Duration::from_millis(200);

/// The answer when answering panicked.
const BUG: Answer<'static> = Answer::text(500, "internal server error\n");

/// A bound server, ready to [`run`](Server::run).
pub struct Server {
    config: Config,
    /// The bound on bodies being read and on clients with lanes.
    waiting_bound: usize,
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
    /// Asks the server to stop: connections are no longer accepted, requests
    /// on those already accepted are answered, then [`Server::run`] returns.
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
        let control = Arc::new(Control {
            current: Mutex::new(Arc::new(http)),
            event: Mutex::new(None),
            stopping: AtomicBool::new(false),
        });
        // A connection waiting on a body, or with answers no one reads, holds
        // two descriptors and a thread or two: keep most descriptors for work.
        let waiting_bound = usize::try_from(file_limit / 8)
            .unwrap_or(usize::MAX)
            .clamp(16, 1024);
        Ok(Server {
            config: config.clone(),
            waiting_bound,
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

    /// Answers requests until [`Handle::stop`] is called, with the replies
    /// the configuration gives: keyword rules, then the reply program or
    /// the fixed reply.
    ///
    /// # Errors
    ///
    /// Fails when threads cannot be started, when too many requests
    /// announcing impossible bodies have been parked, or when no connection
    /// could be answered for six times the timeout.
    pub fn run(self) -> Result<(), ServerError> {
        let webhook = Webhook::new(&self.bound_config());
        self.serve(webhook)
    }

    /// Like [`run`](Server::run), with `handler` answering every message no
    /// keyword rule does, instead of the configured reply or reply
    /// program: a function of the message, such as
    /// `|message: &Message| Reply::text("Hi!")`. It runs on reply workers
    /// (`reply_workers` of the configuration), never on the request loop,
    /// within `reply_timeout`; a message whose handler is late gets
    /// `reply_fallback`.
    ///
    /// # Errors
    ///
    /// As [`run`](Server::run).
    pub fn run_with(self, handler: impl Handler) -> Result<(), ServerError> {
        let webhook = Webhook::with_handler(&self.bound_config(), Box::new(handler));
        self.serve(webhook)
    }

    /// The configuration, with the port actually bound (`0` asks for any).
    fn bound_config(&self) -> Config {
        Config {
            port: self.local_addr.port(),
            ..self.config.clone()
        }
    }

    fn serve(self, webhook: Webhook) -> Result<(), ServerError> {
        let core = Arc::new(Core {
            webhook,
            readers: Arc::new(Readers::new(self.waiting_bound)),
            slow: Arc::new(Slow::new(
                WRITE_TIMEOUT,
                self.timeout + Duration::from_secs(1),
                self.waiting_bound,
            )),
            arrivals: Arc::new(AtomicUsize::new(0)),
            max_parked: self.waiting_bound,
            parked: AtomicUsize::new(0),
            threads: Mutex::new(Vec::new()),
            timeout: self.timeout,
            control: Arc::clone(&self.control),
        });
        let duties = Duties {
            arrivals: Arc::clone(&core.arrivals),
            after_arrivals: self.timeout,
            give_up: self.timeout * GIVE_UP_TIMEOUTS,
        };
        let watchdog = Watchdog::spawn(
            self.local_addr,
            PROBE_INTERVAL.min(self.timeout / 4),
            duties,
            {
                let control = Arc::clone(&self.control);
                move |report| control.raise(Event::Watchdog(report))
            },
        )
        .map_err(ServerError::Setup)?;
        log_start(self.local_addr);
        core.webhook.look_for_tunnels();

        let mut local = Local::default();
        let mut current = self.control.current();
        let mut listener = Backoff::default();
        let outcome = loop {
            let received = if listener.down() {
                current.recv_timeout(listener.until_next())
            } else {
                current.recv().map(Some)
            };
            match received {
                Ok(Some(request)) => {
                    core.dispatch(request, &mut local);
                    continue;
                }
                Ok(None) => {}
                // tiny_http's accept thread ended; it says why.
                Err(error) if !self.control.pending() => listener_stopped(&mut listener, &error),
                Err(_) => {}
            }
            match self.control.take() {
                Some(Event::Stop) => break Ok(()),
                Some(Event::Fatal(reason)) => break Err(ServerError::Fatal(reason)),
                Some(Event::Watchdog(Report::ServiceLost {
                    silent,
                    last_failure,
                })) => {
                    break Err(ServerError::Fatal(format!(
                        "no connection could be answered for {}s (last probe: {last_failure}); \
                         {}; exiting so that a supervisor can start the server again",
                        silent.as_secs(),
                        why_no_answer(sockets::connections(self.local_addr.port())),
                    )));
                }
                Some(Event::Watchdog(Report::ListenerDead(reason))) => {
                    listener_stopped(&mut listener, &reason);
                }
                None => {}
            }
            if listener.due() {
                match tiny_http_on(&self.listener) {
                    Ok(http) => {
                        current = self.replace(&core, current, http);
                        listener.listening();
                        // An event raised while the old server was current
                        // woke the old server, not the loop.
                        if self.control.pending() {
                            self.control.wake();
                        }
                    }
                    // Most likely still out of file descriptors: try again
                    // later; the watchdog decides when to give up.
                    Err(error) => {
                        debug!("cannot listen again yet: {error}");
                        listener.wait_longer();
                    }
                }
            }
        };
        let stop_began = Instant::now();
        watchdog.stop();
        // New connections are refused by the system from now on; tiny_http's
        // accept thread ends with an error, which the loop no longer heeds.
        if let Err(error) = socket2::SockRef::from(&self.listener).shutdown(Shutdown::Read) {
            debug!("cannot stop listening: {error}");
        }
        let deadline = Instant::now() + self.timeout + Duration::from_secs(1);
        if outcome.is_ok() {
            core.answer_the_last(&current, &mut local, self.local_addr.port(), deadline);
        }
        core.finish(deadline, stop_began);
        crate::logging::flush();
        outcome
    }

    /// Makes `http` the current tiny_http server and leaves `old` to a drain
    /// thread; returns the new one.
    fn replace(
        &self,
        core: &Arc<Core>,
        old: Arc<tiny_http::Server>,
        http: tiny_http::Server,
    ) -> Arc<tiny_http::Server> {
        let new = Arc::new(http);
        *lock(&self.control.current) = Arc::clone(&new);
        let drain = Arc::clone(core);
        let drain_idle = self.timeout * 2 + Duration::from_secs(1);
        match thread::Builder::new()
            .name("drain".into())
            .spawn(move || drain.drain(&old, drain_idle))
        {
            Ok(thread) => core.keep(thread),
            Err(error) => error!("cannot start a thread to drain the old listener: {error}"),
        }
        new
    }
}

/// Notes that tiny_http's accept thread ended, for `reason`.
fn listener_stopped(listener: &mut Backoff, reason: &dyn fmt::Display) {
    if listener.stopped() {
        warn!("the listener stopped accepting connections ({reason}); listening again");
    } else {
        debug!("the listener stopped accepting connections again ({reason})");
    }
}

/// What holds the connections when none can be answered, from what the
/// kernel lists: clients still connected will let go when they stop (or
/// when the process restarts); connections their clients closed long ago
/// and no thread let go are lost to tiny_http for good.
fn why_no_answer(connections: Option<Connections>) -> String {
    let Some(connections) = connections else {
        return "the connections holding the descriptors cannot be listed on this system"
            .to_owned();
    };
    let cause = if connections.held() == 0 {
        "none is held, so the descriptors are held by something else in this process"
    } else if connections.connected() > connections.abandoned {
        "most descriptors are held by live connections: clients that keep connections open \
         and send slowly (a slow-client attack; a proxy that reads whole requests keeps them \
         away, see docs/design.md)"
    } else {
        "most descriptors are held by connections tiny_http has lost and will never give back \
         (such as HTTP/2.0 request lines; a proxy in front keeps them away, see docs/design.md)"
    };
    format!("{connections}: {cause}")
}

/// A tiny_http server accepting on (a duplicate of) `listener`.
fn tiny_http_on(listener: &TcpListener) -> io::Result<tiny_http::Server> {
    tiny_http::Server::from_listener(listener.try_clone()?, None).map_err(io::Error::other)
}

/// When to try to listen again: at once the first time; then, while
/// attempts keep failing or new accept threads keep ending within seconds
/// (the process is out of file descriptors), after 50 ms, doubling up to 1 s.
#[derive(Debug)]
struct Backoff {
    /// Set while the listener is down: when to try next.
    next: Option<Instant>,
    delay: Duration,
    /// When the last new accept thread started.
    started: Option<Instant>,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff {
            next: None,
            delay: FIRST_DELAY,
            started: None,
        }
    }
}

/// The first delay before listening again after a quick failure.
const FIRST_DELAY: Duration = Duration::from_millis(50);

impl Backoff {
    /// The listener stopped; returns whether this is news (the last accept
    /// thread had lasted), rather than one more failure in a streak.
    fn stopped(&mut self) -> bool {
        if self.next.is_some() {
            return false;
        }
        let streak = self
            .started
            .is_some_and(|started| started.elapsed() < Duration::from_secs(5));
        if streak {
            self.wait_longer();
        } else {
            self.delay = FIRST_DELAY;
            self.next = Some(Instant::now());
        }
        !streak
    }

    fn down(&self) -> bool {
        self.next.is_some()
    }

    fn due(&self) -> bool {
        self.next.is_some_and(|next| Instant::now() >= next)
    }

    fn until_next(&self) -> Duration {
        self.next.map_or(Duration::ZERO, |next| {
            next.saturating_duration_since(Instant::now())
        })
    }

    fn wait_longer(&mut self) {
        self.next = Some(Instant::now() + self.delay);
        self.delay = (self.delay * 2).min(Duration::from_secs(1));
    }

    fn listening(&mut self) {
        self.next = None;
        self.started = Some(Instant::now());
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
    Watchdog(Report),
}

impl Event {
    /// Events that end the loop outrank those that do not.
    fn ends(&self) -> bool {
        matches!(
            self,
            Event::Stop | Event::Fatal(_) | Event::Watchdog(Report::ServiceLost { .. })
        )
    }
}

impl Control {
    /// Records `event` and wakes the request loop. An event that ends the
    /// loop outranks one that does not; the first of those wins.
    fn raise(&self, event: Event) {
        let wake = {
            let mut slot = lock(&self.event);
            if matches!(event, Event::Stop) {
                self.stopping.store(true, Ordering::Release);
            }
            let wake = slot.is_none();
            if slot
                .as_ref()
                .is_none_or(|held| !held.ends() && event.ends())
            {
                *slot = Some(event);
            }
            wake
        };
        // A pending event has already woken the loop.
        if wake {
            self.wake();
        }
    }

    fn wake(&self) {
        lock(&self.current).unblock();
    }

    fn pending(&self) -> bool {
        lock(&self.event).is_some()
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

/// What answering needs, shared by the loop, the body readers and drain
/// threads.
struct Core {
    webhook: Webhook,
    readers: Arc<Readers>,
    slow: Arc<Slow>,
    /// New connections noticed since the watchdog last looked.
    arrivals: Arc<AtomicUsize>,
    max_parked: usize,
    parked: AtomicUsize,
    threads: Mutex<Vec<JoinHandle<()>>>,
    timeout: Duration,
    control: Arc<Control>,
}

/// What a thread that takes requests from tiny_http needs: buffers for the
/// body and the answer, and the clients it has seen lately.
#[derive(Debug)]
struct Local {
    body: Vec<u8>,
    out: Out,
    recent: Recent,
}

impl Default for Local {
    fn default() -> Local {
        Local {
            body: Vec::with_capacity(MAX_BODY_BYTES + 1),
            out: Out::default(),
            recent: Recent::new(),
        }
    }
}

/// What to do with a request whose body may keep its reader waiting.
#[derive(Debug, Clone, Copy)]
enum Work {
    /// Read the body, then answer.
    Serve {
        /// Say `Connection: close`.
        close: bool,
    },
    /// Answer a refusal (tiny_http discards the body first).
    Refuse(Refusal),
}

impl Core {
    /// Answers a request, or hands it to a body reader if getting at its
    /// body could wait on the client.
    fn dispatch(self: &Arc<Self>, request: Request, local: &mut Local) {
        let peer = request.remote_addr().copied();
        let framing = framing::judge(
            request
                .headers()
                .iter()
                .map(|h| (h.field.as_str().as_str(), h.value.as_str())),
            *request.http_version() == HTTPVersion(1, 0),
            MAX_BODY_BYTES as u64,
        );
        let work = match framing.refusal {
            Some(refusal) => Work::Refuse(refusal),
            None => Work::Serve {
                close: framing.last || self.control.stopping(),
            },
        };
        if let (Some(peer), Work::Serve { .. }) = (peer, work) {
            local.recent.note(peer, &self.arrivals);
        }
        if framing.body.may_wait() {
            return self.read_elsewhere(request, peer, framing.body, work);
        }
        match work {
            Work::Serve { close } => self.serve(
                request,
                peer,
                framing.body,
                close,
                None,
                &mut local.body,
                &mut local.out,
            ),
            Work::Refuse(refusal) => self.refuse(request, peer, refusal, &mut local.out),
        }
    }

    /// Hands a request whose body is still on the socket to a reader of its
    /// own.
    fn read_elsewhere(
        self: &Arc<Self>,
        request: Request,
        peer: Option<SocketAddr>,
        body: Body,
        work: Work,
    ) {
        // The request moves into the reader's work; if no thread can be
        // started, it comes back to be answered here, the only choice left.
        let job = Arc::new(Mutex::new(Some(request)));
        let core = Arc::clone(self);
        let handed = Arc::clone(&job);
        let started = self.readers.start(move |cancel| {
            if let Some(request) = lock(&handed).take() {
                core.read_and_answer(request, peer, body, work, cancel);
            }
        });
        match started {
            Ok(0) => {}
            Ok(_) => debug!(
                "{} request bodies are still arriving: the oldest is dropped",
                self.readers.bound()
            ),
            Err(error) => {
                warn!("cannot start a thread to read a request body: {error}; reading it here");
                if let Some(request) = lock(&job).take() {
                    self.read_and_answer(request, peer, body, work, &Cancel::default());
                }
            }
        }
    }

    /// A body reader's work: reads the body within the timeout and answers,
    /// or answers a refusal.
    fn read_and_answer(
        &self,
        request: Request,
        peer: Option<SocketAddr>,
        body: Body,
        work: Work,
        cancel: &Cancel,
    ) {
        let mut out = Out::default();
        // Dropping a request whose body is still on the socket makes
        // tiny_http allocate the rest of the body at once.
        let discards = matches!(body, Body::Waiting { .. }) && !matches!(work, Work::Serve { .. });
        if discards && !can_discard(body.length()) {
            return self.park(request, work, body.length());
        }
        match work {
            Work::Serve { close } => {
                let deadline = Instant::now() + self.timeout;
                let mut buffer = Vec::new();
                self.serve(
                    request,
                    peer,
                    body,
                    close,
                    Some((deadline, cancel)),
                    &mut buffer,
                    &mut out,
                );
            }
            Work::Refuse(refusal) => self.refuse(request, peer, refusal, &mut out),
        }
    }

    /// Reads the body (within `waiting`'s deadline, and until told to stop,
    /// when it is still on the socket), asks the app for the answer, and
    /// sends it.
    #[allow(clippy::too_many_arguments)] // one request's parts, and buffers
    fn serve(
        &self,
        mut request: Request,
        peer: Option<SocketAddr>,
        body: Body,
        close: bool,
        waiting: Option<(Instant, &Cancel)>,
        buffer: &mut Vec<u8>,
        out: &mut Out,
    ) {
        buffer.clear();
        let length = usize::try_from(body.length()).unwrap_or(usize::MAX);
        if length > 0 {
            let (deadline, cancel) = waiting.unzip();
            let read = body::read_body(
                request.as_reader(),
                Some(length),
                MAX_BODY_BYTES,
                deadline,
                cancel.map(|cancel| move || cancel.is_set()),
                buffer,
            );
            if let Err(error) = read {
                debug!("{} {}: {error}", method(&request), path(&request));
                let refusal = match error {
                    BodyError::TooLarge { .. } => Refusal::TooLarge,
                    BodyError::TimedOut => Refusal::BodyTimedOut,
                    BodyError::Dropped => Refusal::BodyDropped,
                    BodyError::Short { .. } => Refusal::BodyShort,
                    BodyError::Io(_) => Refusal::BodyUnreadable,
                };
                return self.refuse(request, peer, refusal, out);
            }
        }
        let incoming = Incoming::new(&request, buffer);
        // A panic is a bug, but must not end the thread that serves
        // everyone else; the panic hook has logged it.
        let answer =
            panic::catch_unwind(AssertUnwindSafe(|| self.webhook.answer(&incoming))).unwrap_or(BUG);
        self.send(request, peer, answer, close, out);
    }

    /// Answers `refusal` with `Connection: close`, and lets the connection
    /// go.
    fn refuse(&self, request: Request, peer: Option<SocketAddr>, refusal: Refusal, out: &mut Out) {
        warn!(
            "refused {} {} from {}: {}",
            method(&request),
            path(&request),
            peer.map_or_else(|| "?".to_owned(), |peer| peer.to_string()),
            refusal.reason().trim_end()
        );
        let answer = Answer::text(refusal.status(), refusal.reason());
        self.send(request, peer, answer, true, out);
    }

    /// Writes an answer: at once, or on the lane of a client that does not
    /// read its answers, or, for an answer to come, once it has come (on
    /// the thread that has it). A client that leaves no room for it in time
    /// gets a lane for the answers to come.
    fn send(
        &self,
        request: Request,
        peer: Option<SocketAddr>,
        answer: Answer<'_>,
        close: bool,
        out: &mut Out,
    ) {
        // A standard method's clone allocates nothing.
        let method = request.method().clone();
        let head_only = method == Method::Head;
        let writer = request.into_writer();
        let to = To {
            writer,
            peer,
            method,
            head_only,
            close,
        };
        match answer {
            Answer::Later(later) => {
                let slow = Arc::clone(&self.slow);
                later.then(move |delivered| {
                    let answer = match &delivered {
                        Delivered::Twiml(twiml) => Answer::Twiml(std::borrow::Cow::Borrowed(twiml)),
                        Delivered::ReplyLater => Answer::ReplyLater,
                    };
                    to.write(&answer, &slow, &mut Out::default());
                });
            }
            answer => to.write(&answer, &self.slow, out),
        }
    }

    /// Serves a retired tiny_http server's remaining requests until none has
    /// come for `idle`, or the server stops.
    fn drain(self: &Arc<Self>, old: &tiny_http::Server, idle: Duration) {
        let mut local = Local::default();
        let tick = Duration::from_millis(200);
        let mut quiet = Duration::ZERO;
        while quiet < idle {
            match old.recv_timeout(tick) {
                Ok(Some(request)) => {
                    quiet = Duration::ZERO;
                    self.dispatch(request, &mut local);
                }
                Ok(None) | Err(_) if self.control.stopping() => return,
                Ok(None) | Err(_) => quiet += tick,
            }
        }
        debug!("drained an old listener");
    }

    /// At a stop, once no new connection is accepted: answers what arrives
    /// on the connections already open, with `Connection: close`, until
    /// none of them can still bring a request, or `deadline`.
    fn answer_the_last(
        self: &Arc<Self>,
        current: &tiny_http::Server,
        local: &mut Local,
        port: u16,
        deadline: Instant,
    ) {
        let began = Instant::now();
        let mut last = began;
        let mut answered = 0_usize;
        while Instant::now() < deadline {
            // Nothing but a request counts as activity: the accept thread
            // ending (the listener was shut) or a late wake-up does not.
            if let Ok(Some(request)) = current.recv_timeout(STOP_QUIET / 4) {
                answered += 1;
                last = Instant::now();
                self.dispatch(request, local);
                continue;
            }
            if last.elapsed() < STOP_QUIET {
                continue;
            }
            // The watchdog, which writes out gathered lines, has stopped.
            crate::logging::flush();
            // A connection still open may be bringing a request (its head or
            // small body still arriving), or be idle; only the kernel knows
            // that it is there. Without its list, wait out the timeout.
            let may_bring_more = match sockets::connections(port) {
                Some(open) => open.connected() > 0,
                None => began.elapsed() < self.timeout,
            };
            if !may_bring_more {
                break;
            }
        }
        debug!("answered {answered} requests that arrived as the server stopped");
    }

    /// Keeps a request that cannot be dropped, ever: tiny_http would try to
    /// allocate its whole announced body, and abort the process. Its
    /// connection stays open, unanswered, until the process ends.
    fn park(&self, request: Request, work: Work, length: u64) {
        std::mem::forget(request);
        let count = self.parked.fetch_add(1, Ordering::Relaxed) + 1;
        let why = match work {
            Work::Refuse(refusal) => refusal.reason().trim_end(),
            Work::Serve { .. } => "its body could not be read",
        };
        warn!(
            "parked a request announcing {length} bytes ({why}): tiny_http cannot discard a body \
             it cannot allocate; {count} parked for the life of the process"
        );
        if count >= self.max_parked {
            self.control.raise(Event::Fatal(format!(
                "{count} requests announcing bodies larger than this process can allocate \
                 are parked; stopping before they exhaust its file descriptors \
                 (put a proxy that limits bodies in front)"
            )));
        }
    }

    fn keep(&self, thread: JoinHandle<()>) {
        let mut threads = lock(&self.threads);
        threads.retain(|thread| !thread.is_finished());
        threads.push(thread);
    }

    /// Waits until `deadline` for the body readers and drain threads, and
    /// for the replies still to come as long as the app says (the stop
    /// began at `began`).
    fn finish(&self, deadline: Instant, began: Instant) {
        let reading = self.readers.wait_until_idle(deadline);
        if reading > 0 {
            debug!("{reading} request bodies were still arriving when the server stopped");
        }
        self.webhook.finish(began);
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

/// Where an answer goes: the request's writer, and how to write it.
struct To {
    writer: Box<dyn std::io::Write + Send>,
    peer: Option<SocketAddr>,
    method: Method,
    head_only: bool,
    close: bool,
}

impl To {
    fn write(mut self, answer: &Answer<'_>, slow: &Arc<Slow>, out: &mut Out) {
        let To {
            head_only, close, ..
        } = self;
        let status = answer.status();
        let shown = Escaped(self.method.as_str());
        let Some(peer) = self.peer else {
            if let Err(error) = out.write(&mut self.writer, answer, head_only, close, WRITE_TIMEOUT)
            {
                debug!("{shown} -> {status}, but the client did not get it: {error}");
            }
            return;
        };
        if slow.has(peer) {
            let bytes = out.render(answer, head_only, close).to_vec();
            match slow.hand(
                peer,
                slow::Answer {
                    writer: self.writer,
                    bytes,
                },
            ) {
                Ok(()) => return,
                // The lane ended meanwhile: the client reads again.
                Err(back) => self.writer = back.writer,
            }
        }
        match out.write(&mut self.writer, answer, head_only, close, WRITE_TIMEOUT) {
            Ok(()) => debug!("{shown} -> {status}"),
            Err(error) if slow::timed_out(&error) => {
                debug!("{shown} -> {status}, but {peer} did not read it in time");
                drop(self.writer);
                slow.open(peer);
            }
            Err(error) => debug!("{shown} -> {status}, but the client did not get it: {error}"),
        }
    }
}

/// The method of a request, for a log line: a client chooses it.
fn method(request: &Request) -> Escaped<'_> {
    Escaped(request.method().as_str())
}

/// The path of a request, for a log line.
fn path(request: &Request) -> Escaped<'_> {
    Escaped(crate::routes::split_url(request.url()).0)
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
    // Whoever waits for the server to be up waits for these lines.
    crate::logging::flush();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_give_up_line_names_what_holds_the_connections() {
        let live = Connections {
            live: 900,
            unread: 3,
            abandoned: 2,
            queued: 7,
        };
        let said = why_no_answer(Some(live));
        assert!(
            said.starts_with("905 connections held: 903 with their clients still connected"),
            "{said}"
        );
        assert!(said.contains("live connections: clients that keep connections open"));
        let leaked = Connections {
            live: 1,
            unread: 2,
            abandoned: 40,
            queued: 0,
        };
        assert!(why_no_answer(Some(leaked)).contains("connections tiny_http has lost"));
        assert!(why_no_answer(Some(Connections::default())).contains("none is held"));
        assert!(why_no_answer(None).contains("cannot be listed"));
    }
}
