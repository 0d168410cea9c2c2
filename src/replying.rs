//! Replying: runs a [`Handler`] for each message on reply workers, once
//! per `MessageSid`, and answers every request in time.
//!
//! The request loop never waits for a handler. For a message that must run
//! it, [`Replying::answer`] gives a [`Later`], to which the edge gives what
//! writes the answer ([`Later::then`]): a worker delivers the reply's TwiML
//! when the handler returns, or the clock delivers, when the answer's
//! deadline passes first, the fallback; or, with credentials for the
//! Messages API, no message ([`Delivered::ReplyLater`]): the handler runs
//! on until its time limit, and the worker sends its reply (or the
//! fallback) through the Messages API ([`later`](crate::later)) when no
//! request for the message is still waiting to carry it.
//!
//! A `MessageSid` gets one run, and one set of sends. Twilio may post a
//! message again (a retry, or a fallback request): a repeat that comes
//! while the run goes on waits for it; one that comes after gets the answer
//! the run gave (no message, when the reply went out through the Messages
//! API). What a run gave is remembered for an hour, for the last
//! [`REMEMBERED`] messages and at most [`REMEMBERED_BYTES`] of answers.

use std::cmp::Reverse;
use std::collections::hash_map::RandomState;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::hash::BuildHasher;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::thread;
use std::time::{Duration, Instant};

use log::{debug, warn};

use crate::handler::{Failure, Handler, Message, Reply};
use crate::later::Sender;
use crate::logging::Escaped;

/// How many answered messages are remembered at most.
pub const REMEMBERED: usize = 10_000;

/// How many bytes of answers are remembered at most.
pub const REMEMBERED_BYTES: usize = 16 * 1024 * 1024;

/// How long an answered message is remembered at most.
pub const FOR: Duration = Duration::from_secs(3600);

/// At a stop, how long handlers still running may go on, and their replies
/// be sent, at most.
pub const STOP_LIMIT: Duration = Duration::from_secs(20);

/// The settings of the runs.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// How many handlers run at once.
    pub workers: usize,
    /// How long after a message arrives its handler may still run; a run
    /// that has not started by then does not.
    pub timeout: Duration,
    /// How long after a message arrives Twilio gets an answer: the reply if
    /// the handler has given it; otherwise the fallback, or, with a sender,
    /// no message (the reply then goes out through the Messages API).
    pub answer_within: Duration,
}

/// What a request waiting for its answer gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivered {
    /// This TwiML.
    Twiml(Arc<[u8]>),
    /// No message now: the reply goes out later, through the Messages API.
    ReplyLater,
}

/// The handler, its workers and the runs.
pub struct Replying {
    shared: Arc<Shared>,
}

struct Shared {
    handler: Arc<dyn Handler>,
    /// The reply when a handler fails or is late, and its TwiML.
    fallback: Reply,
    fallback_twiml: Arc<[u8]>,
    /// `<Response />`, for a repeat whose reply went out already.
    empty: Arc<[u8]>,
    /// What sends a reply that comes after the answer, if anything does.
    sender: Option<Arc<Sender>>,
    limits: Limits,
    /// Runs queued, running, or sending.
    busy: AtomicUsize,
    jobs: Mutex<VecDeque<Job>>,
    job_added: Condvar,
    runs: Mutex<Runs>,
    clock: Clock,
    /// Requests waiting for an answer.
    waiting: AtomicUsize,
    answered: Condvar,
    answered_lock: Mutex<()>,
}

/// A run of the handler for one message.
struct Job {
    run: Arc<Run>,
    message: Message,
    arrived: Instant,
}

impl Replying {
    /// Runs `handler` on `limits.workers` threads; `fallback` is the reply
    /// a message gets when its handler fails or is late; `sender`, if any,
    /// sends a reply that comes after the answer.
    ///
    /// # Errors
    ///
    /// Fails when the threads cannot be started.
    pub fn start(
        handler: Arc<dyn Handler>,
        fallback: Reply,
        limits: Limits,
        sender: Option<Arc<Sender>>,
    ) -> std::io::Result<Replying> {
        let shared = Arc::new(Shared {
            handler,
            fallback_twiml: fallback.render().into(),
            fallback,
            empty: Reply::none().render().into(),
            sender,
            limits,
            busy: AtomicUsize::new(0),
            jobs: Mutex::new(VecDeque::new()),
            job_added: Condvar::new(),
            runs: Mutex::new(Runs::new()),
            clock: Clock::default(),
            waiting: AtomicUsize::new(0),
            answered: Condvar::new(),
            answered_lock: Mutex::new(()),
        });
        for number in 1..=limits.workers.max(1) {
            let worker = Arc::clone(&shared);
            thread::Builder::new()
                .name(format!("reply-{number}"))
                .spawn(move || worker.work())?;
        }
        let clock = Arc::clone(&shared);
        thread::Builder::new()
            .name("reply-clock".into())
            .spawn(move || clock.tick())?;
        Ok(Replying { shared })
    }

    /// The TwiML that answers `message`, whose `MessageSid` is `sid`: what
    /// its run gave, if it has run; otherwise TwiML to come, from the run
    /// (started now, or already going on) or the fallback at the deadline.
    pub fn answer(&self, sid: &[u8], message: Message) -> Result<Arc<[u8]>, Later> {
        let shared = &self.shared;
        let now = Instant::now();
        let (run, start) = {
            let mut runs = lock(&shared.runs);
            runs.forget_old(now);
            match runs.get(sid) {
                Some(run) => (run, false),
                None => (runs.insert(sid, now, now + shared.limits.timeout), true),
            }
        };
        let pending = {
            let mut state = lock(&run.state);
            if let RunState::Done { twiml, via_api } = &*state {
                if *via_api {
                    debug!(
                        "{} was answered through the Messages API already: no message now",
                        Escaped(&run.sid)
                    );
                    return Ok(Arc::clone(&shared.empty));
                }
                debug!("{} answered as its first run did", Escaped(&run.sid));
                return Ok(Arc::clone(twiml));
            }
            let pending = Arc::new(Pending {
                state: Mutex::new(Delivery::Waiting(None)),
                deadline: now + shared.limits.answer_within,
                run: Arc::clone(&run),
                shared: Arc::downgrade(shared),
            });
            shared.waiting.fetch_add(1, Ordering::AcqRel);
            if let RunState::Running(waiting) = &mut *state {
                waiting.push(Arc::clone(&pending));
            }
            pending
        };
        shared.clock.add(&pending);
        if start {
            shared.busy.fetch_add(1, Ordering::AcqRel);
            lock(&shared.jobs).push_back(Job {
                run,
                message,
                arrived: now,
            });
            shared.job_added.notify_one();
        } else {
            debug!(
                "{} is being answered already: this request waits for that run",
                Escaped(&run.sid)
            );
        }
        Err(Later(pending))
    }

    /// Waits until every request waiting for an answer has had one and,
    /// with a sender, every run has ended and sent its reply; or until
    /// `deadline`. Returns how many requests still wait, and how many runs
    /// have not ended or sent.
    pub fn finish(&self, deadline: Instant) -> (usize, usize) {
        let shared = &self.shared;
        let mut guard = lock(&shared.answered_lock);
        loop {
            let waiting = shared.waiting.load(Ordering::Acquire);
            let busy = if shared.sender.is_some() {
                shared.busy.load(Ordering::Acquire)
            } else {
                0
            };
            let left = deadline.saturating_duration_since(Instant::now());
            if (waiting == 0 && busy == 0) || left.is_zero() {
                return (waiting, busy);
            }
            guard = shared
                .answered
                .wait_timeout(guard, left.min(Duration::from_millis(100)))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// The sender of later replies, if there is one.
    pub fn sender(&self) -> Option<&Sender> {
        self.shared.sender.as_deref()
    }
}

impl std::fmt::Debug for Replying {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replying")
            .field("limits", &self.shared.limits)
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// A worker's loop: takes the next job, runs the handler, delivers.
    fn work(&self) {
        loop {
            let job = {
                let mut jobs = lock(&self.jobs);
                loop {
                    match jobs.pop_front() {
                        Some(job) => break job,
                        None => {
                            jobs = self
                                .job_added
                                .wait(jobs)
                                .unwrap_or_else(PoisonError::into_inner);
                        }
                    }
                }
            };
            self.run(job);
        }
    }

    fn run(&self, job: Job) {
        let Job {
            run,
            message,
            arrived,
        } = job;
        let give_up_at = arrived + self.limits.timeout;
        let started = Instant::now();
        let outcome = if started >= give_up_at {
            Err(Failure::new(format!(
                "it waited {:.1}s for a reply worker, past the time limit, and did not run \
                 ({} workers were busy)",
                started.duration_since(arrived).as_secs_f64(),
                self.limits.workers
            )))
        } else {
            let reply = panic::catch_unwind(AssertUnwindSafe(|| {
                self.handler.reply(&message, give_up_at)
            }));
            match reply.unwrap_or_else(|_| Err(Failure::new("the handler panicked"))) {
                // A function cannot be stopped: what it gives too late is
                // no longer wanted.
                Ok(_) if Instant::now() > give_up_at => Err(Failure::new(format!(
                    "it replied after its time limit ({:.1}s), too late to be sent",
                    self.limits.timeout.as_secs_f64()
                ))),
                outcome => outcome,
            }
        };
        let reply = match outcome {
            Ok(reply) => {
                debug!(
                    "{} replied in {} ms",
                    Escaped(&run.sid),
                    started.elapsed().as_millis()
                );
                reply
            }
            Err(failure) => {
                warn!("{} got the fallback reply: {failure}", Escaped(&run.sid));
                self.fallback.clone()
            }
        };
        let twiml: Arc<[u8]> = reply.render().into();
        lock(&self.runs).answered(twiml.len());
        let waiting = {
            let mut state = lock(&run.state);
            let done = RunState::Done {
                twiml: Arc::clone(&twiml),
                via_api: false,
            };
            match std::mem::replace(&mut *state, done) {
                RunState::Running(waiting) => waiting,
                RunState::Done { .. } => Vec::new(),
            }
        };
        // A request still waiting carries the reply: Twilio sends it.
        let carried = waiting
            .iter()
            .filter(|pending| pending.deliver(Delivered::Twiml(Arc::clone(&twiml))))
            .count();
        let sender = self.sender.as_ref().filter(|_| carried == 0);
        if let Some(sender) = sender.filter(|_| run.answered_later.load(Ordering::Acquire)) {
            if let RunState::Done { via_api, .. } = &mut *lock(&run.state) {
                *via_api = true;
            }
            if reply.is_none() {
                debug!("{} has no reply to send later", Escaped(&run.sid));
            } else {
                sender.send(&message, &reply);
            }
        }
        self.busy.fetch_sub(1, Ordering::AcqRel);
        let _guard = lock(&self.answered_lock);
        self.answered.notify_all();
    }

    /// The clock's loop: answers each request whose deadline passes before
    /// its answer comes: no message, when a sender will send the reply
    /// later (the handler still has time); the fallback otherwise.
    fn tick(&self) {
        loop {
            let due = self.clock.next_due();
            for pending in due {
                if !pending.is_waiting() {
                    continue;
                }
                if self.sender.is_some() && Instant::now() < pending.run.give_up_at {
                    debug!(
                        "{} is not answered yet: no message now, the reply goes out later",
                        Escaped(&pending.run.sid)
                    );
                    // Marked before the delivery, so that a run ending now
                    // never misses it.
                    pending.run.answered_later.store(true, Ordering::Release);
                    pending.deliver(Delivered::ReplyLater);
                } else {
                    debug!(
                        "{} is not answered yet: the fallback goes out in time",
                        Escaped(&pending.run.sid)
                    );
                    pending.deliver(Delivered::Twiml(Arc::clone(&self.fallback_twiml)));
                }
            }
        }
    }

    fn delivered(&self) {
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        let _guard = lock(&self.answered_lock);
        self.answered.notify_all();
    }
}

/// TwiML to come: the edge says, with [`Later::then`], what to do with it
/// once it is there.
pub struct Later(Arc<Pending>);

impl Later {
    /// Calls `deliver` with the answer, at once if it is there already, or
    /// later on the thread that has it (a reply worker, or the clock at the
    /// deadline).
    pub fn then(self, deliver: impl FnOnce(Delivered) + Send + 'static) {
        let ready = {
            let mut state = lock(&self.0.state);
            match std::mem::replace(&mut *state, Delivery::Delivered) {
                Delivery::Waiting(_) => {
                    *state = Delivery::Waiting(Some(Box::new(deliver)));
                    return;
                }
                Delivery::Ready(answer) => answer,
                Delivery::Delivered => return,
            }
        };
        deliver(ready);
    }

    /// When the answer goes out at the latest.
    pub fn deadline(&self) -> Instant {
        self.0.deadline
    }
}

impl std::fmt::Debug for Later {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Later")
            .field("deadline", &self.0.deadline)
            .finish_non_exhaustive()
    }
}

impl PartialEq for Later {
    fn eq(&self, other: &Later) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Later {}

type Deliver = Box<dyn FnOnce(Delivered) + Send>;

/// A request waiting for its answer.
struct Pending {
    state: Mutex<Delivery>,
    deadline: Instant,
    /// The run whose answer it waits for.
    run: Arc<Run>,
    shared: Weak<Shared>,
}

enum Delivery {
    /// No answer yet; what to call with it, once the edge has said.
    Waiting(Option<Deliver>),
    /// The answer came before the edge said what to do with it.
    Ready(Delivered),
    /// Answered.
    Delivered,
}

impl Pending {
    fn is_waiting(&self) -> bool {
        matches!(*lock(&self.state), Delivery::Waiting(_))
    }

    /// Delivers `answer`, unless an answer was delivered already; returns
    /// whether this one was.
    fn deliver(&self, answer: Delivered) -> bool {
        let deliver = {
            let mut state = lock(&self.state);
            match &mut *state {
                Delivery::Waiting(deliver) => match deliver.take() {
                    Some(deliver) => {
                        *state = Delivery::Delivered;
                        deliver
                    }
                    None => {
                        *state = Delivery::Ready(answer);
                        drop(state);
                        self.counted();
                        return true;
                    }
                },
                Delivery::Ready(_) | Delivery::Delivered => return false,
            }
        };
        deliver(answer);
        self.counted();
        true
    }

    fn counted(&self) {
        if let Some(shared) = self.shared.upgrade() {
            shared.delivered();
        }
    }
}

/// The deadlines of the requests waiting, earliest first.
#[derive(Default)]
struct Clock {
    deadlines: Mutex<BinaryHeap<(Reverse<Instant>, Ticket)>>,
    added: Condvar,
}

/// A waiting request in the clock's heap; ordered by its place in line
/// only, so that the heap needs no order on requests.
struct Ticket(u64, Weak<Pending>);

impl PartialEq for Ticket {
    fn eq(&self, other: &Ticket) -> bool {
        self.0 == other.0
    }
}
impl Eq for Ticket {}
impl PartialOrd for Ticket {
    fn partial_cmp(&self, other: &Ticket) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ticket {
    fn cmp(&self, other: &Ticket) -> std::cmp::Ordering {
        other.0.cmp(&self.0)
    }
}

impl Clock {
    fn add(&self, pending: &Arc<Pending>) {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let number = NEXT.fetch_add(1, Ordering::Relaxed) as u64;
        lock(&self.deadlines).push((
            Reverse(pending.deadline),
            Ticket(number, Arc::downgrade(pending)),
        ));
        self.added.notify_one();
    }

    /// Waits for the earliest deadline, and returns every request due.
    fn next_due(&self) -> Vec<Arc<Pending>> {
        let mut deadlines = lock(&self.deadlines);
        loop {
            let now = Instant::now();
            let mut due = Vec::new();
            while deadlines
                .peek()
                .is_some_and(|(Reverse(deadline), _)| *deadline <= now)
            {
                if let Some((_, Ticket(_, pending))) = deadlines.pop() {
                    due.extend(pending.upgrade());
                }
            }
            if !due.is_empty() {
                return due;
            }
            let wait = deadlines
                .peek()
                .map_or(Duration::from_secs(3600), |(Reverse(deadline), _)| {
                    deadline.saturating_duration_since(now)
                });
            deadlines = self
                .added
                .wait_timeout(deadlines, wait)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// The runs of recent messages, by `MessageSid`.
struct Runs {
    by_sid: HashMap<u64, Arc<Run>>,
    /// The same runs, oldest first.
    order: VecDeque<(u64, Instant)>,
    bytes: usize,
    hasher: RandomState,
}

struct Run {
    sid: String,
    state: Mutex<RunState>,
    /// When the handler's time limit passes.
    give_up_at: Instant,
    /// Whether a request for the message was answered with no message,
    /// its reply to go out later.
    answered_later: AtomicBool,
}

enum RunState {
    /// The handler runs; these requests wait for its answer.
    Running(Vec<Arc<Pending>>),
    /// The answer the run gave, and whether it went out through the
    /// Messages API.
    Done { twiml: Arc<[u8]>, via_api: bool },
}

impl Runs {
    fn new() -> Runs {
        Runs {
            by_sid: HashMap::new(),
            order: VecDeque::new(),
            bytes: 0,
            hasher: RandomState::new(),
        }
    }

    fn get(&self, sid: &[u8]) -> Option<Arc<Run>> {
        self.by_sid.get(&self.hasher.hash_one(sid)).cloned()
    }

    fn insert(&mut self, sid: &[u8], now: Instant, give_up_at: Instant) -> Arc<Run> {
        let key = self.hasher.hash_one(sid);
        let run = Arc::new(Run {
            sid: String::from_utf8_lossy(sid).into_owned(),
            state: Mutex::new(RunState::Running(Vec::new())),
            give_up_at,
            answered_later: AtomicBool::new(false),
        });
        self.by_sid.insert(key, Arc::clone(&run));
        self.order.push_back((key, now));
        run
    }

    fn answered(&mut self, bytes: usize) {
        self.bytes += bytes;
    }

    /// Forgets the oldest runs while there are too many, too old, or their
    /// answers take too much room.
    fn forget_old(&mut self, now: Instant) {
        while let Some(&(key, at)) = self.order.front() {
            let over = self.order.len() >= REMEMBERED
                || self.bytes > REMEMBERED_BYTES
                || now.duration_since(at) >= FOR;
            if !over {
                break;
            }
            self.order.pop_front();
            if let Some(run) = self.by_sid.remove(&key) {
                if let RunState::Done { twiml, .. } = &*lock(&run.state) {
                    self.bytes = self.bytes.saturating_sub(twiml.len());
                }
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every change under these locks is whole before the lock is released.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handler::Reply;
    use std::sync::mpsc;

    const FALLBACK: &[u8] =
        b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Message>sorry</Message></Response>";

    fn fallback() -> Reply {
        Reply::text("sorry")
    }

    fn limits(seconds: u64) -> Limits {
        Limits {
            workers: 2,
            timeout: Duration::from_secs(seconds),
            answer_within: Duration::from_secs(seconds),
        }
    }

    /// The answer a request gets, waiting for it if it comes later.
    fn answered(answer: Result<Arc<[u8]>, Later>) -> Vec<u8> {
        match answer {
            Err(later) => {
                let (sender, receiver) = mpsc::channel();
                later.then(move |answer| match answer {
                    Delivered::Twiml(twiml) => sender.send(twiml.to_vec()).unwrap(),
                    Delivered::ReplyLater => sender.send(b"later".to_vec()).unwrap(),
                });
                receiver.recv_timeout(Duration::from_secs(20)).unwrap()
            }
            Ok(twiml) => twiml.to_vec(),
        }
    }

    fn message(body: &str) -> Message {
        Message {
            body: Some(body.to_owned()),
            ..Message::default()
        }
    }

    #[test]
    fn a_message_runs_once_and_a_repeat_gets_the_same_answer() {
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&runs);
        let handler = move |message: &Message| {
            counted.fetch_add(1, Ordering::SeqCst);
            Reply::text(format!("run for {}", message.body.as_deref().unwrap_or("")))
        };
        let replying = Replying::start(Arc::new(handler), fallback(), limits(10), None).unwrap();
        let debug = format!("{replying:?}");
        assert!(
            debug.starts_with("Replying { limits: Limits { workers: 2"),
            "{debug}"
        );
        let first = answered(replying.answer(b"SM1", message("a")));
        let again = answered(replying.answer(b"SM1", message("b")));
        assert_eq!(first, again);
        assert!(String::from_utf8(first).unwrap().contains("run for a"));
        let other = answered(replying.answer(b"SM2", message("c")));
        assert!(String::from_utf8(other).unwrap().contains("run for c"));
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        // Counted as answered once written, just after the test reads it.
        assert_eq!(
            replying.finish(Instant::now() + Duration::from_secs(10)),
            (0, 0)
        );
    }

    /// What the run of `sid` gave, once it has ended.
    fn ended(replying: &Replying, sid: &[u8]) -> Vec<u8> {
        let run = lock(&replying.shared.runs).get(sid).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let RunState::Done { twiml, .. } = &*lock(&run.state) {
                return twiml.to_vec();
            }
            assert!(Instant::now() < deadline, "the run did not end");
            thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn a_repeat_during_the_run_waits_for_it_and_both_get_the_fallback_when_it_is_late() {
        let (release, gate) = mpsc::channel::<()>();
        let gate = Mutex::new(gate);
        let handler = move |_: &Message| {
            let _ = lock(&gate).recv();
            Reply::text("done")
        };
        let replying = Replying::start(Arc::new(handler), fallback(), limits(2), None).unwrap();
        let first = replying.answer(b"SM1", message("a"));
        let repeat = replying.answer(b"SM1", message("a"));
        // Neither is answered until the deadline: both get the fallback.
        assert_eq!(answered(first), FALLBACK);
        assert_eq!(answered(repeat), FALLBACK);
        release.send(()).unwrap();
        // What the handler gave past its time limit is dropped: the run
        // ends with the fallback, which later repeats get.
        assert_eq!(ended(&replying, b"SM1"), FALLBACK);
        assert_eq!(answered(replying.answer(b"SM1", message("a"))), FALLBACK);
    }

    #[test]
    fn a_reply_within_the_time_limit_is_what_later_repeats_get() {
        let handler = |_: &Message| Reply::text("done");
        let replying = Replying::start(Arc::new(handler), fallback(), limits(10), None).unwrap();
        let first = answered(replying.answer(b"SM1", message("a")));
        assert_ne!(first, FALLBACK);
        assert_eq!(ended(&replying, b"SM1"), first);
        assert_eq!(answered(replying.answer(b"SM1", message("a"))), first);
    }

    #[test]
    fn a_failing_or_panicking_handler_gets_the_fallback() {
        let handler = |message: &Message| match message.body.as_deref() {
            Some("panic") => panic!("in a test"),
            _ => Reply::text("ok"),
        };
        let replying = Replying::start(Arc::new(handler), fallback(), limits(10), None).unwrap();
        assert_eq!(
            answered(replying.answer(b"SM1", message("panic"))),
            FALLBACK
        );
        assert_ne!(answered(replying.answer(b"SM2", message("x"))), FALLBACK);
    }

    #[test]
    fn without_a_sender_a_run_not_done_in_time_gets_the_fallback() {
        let handler = |_: &Message| {
            thread::sleep(Duration::from_millis(300));
            Reply::text("late")
        };
        let limits = Limits {
            answer_within: Duration::from_millis(50),
            ..limits(10)
        };
        let replying = Replying::start(Arc::new(handler), fallback(), limits, None).unwrap();
        let (Err(first), Err(second)) = (
            replying.answer(b"SM1", message("a")),
            replying.answer(b"SM2", message("b")),
        ) else {
            panic!("answered before the handler ran");
        };
        assert!(first == first && first != second);
        assert!(format!("{first:?}").starts_with("Later { deadline: "));
        assert_eq!(answered(Err(first)), FALLBACK);
        assert_eq!(answered(Err(second)), FALLBACK);
    }

    #[test]
    fn remembered_runs_are_bounded() {
        let mut runs = Runs::new();
        let now = Instant::now();
        for n in 0..=REMEMBERED {
            runs.forget_old(now);
            runs.insert(format!("SM{n}").as_bytes(), now, now + FOR);
        }
        runs.forget_old(now);
        assert!(runs.order.len() < REMEMBERED);
        assert!(runs.get(b"SM0").is_none());
        runs.forget_old(now + FOR);
        assert!(runs.order.is_empty());
        // And by the bytes of their answers: the oldest go first.
        let done = |runs: &mut Runs, sid: &[u8], bytes: usize| {
            let run = runs.insert(sid, now, now + FOR);
            *lock(&run.state) = RunState::Done {
                twiml: vec![b' '; bytes].into(),
                via_api: false,
            };
            runs.answered(bytes);
        };
        done(&mut runs, b"SM1", REMEMBERED_BYTES - 1);
        done(&mut runs, b"SM2", 1);
        runs.forget_old(now);
        assert!(runs.get(b"SM1").is_some(), "at the bound, all kept");
        done(&mut runs, b"SM3", 1);
        runs.forget_old(now);
        assert!(runs.get(b"SM1").is_none() && runs.get(b"SM2").is_some());
        assert_eq!(runs.bytes, 2);
    }
}
