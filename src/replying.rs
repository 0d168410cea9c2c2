//! Replying: runs a [`Handler`] for each message on reply workers, once
//! per `MessageSid`, and answers every request in time.
//!
//! The request loop never waits for a handler. For a message that must run
//! it, [`Replying::answer`] gives a [`Later`], to which the edge gives what
//! writes the answer ([`Later::then`]): a worker delivers the reply's TwiML
//! when the handler returns, or the clock delivers the fallback when the
//! time limit passes first.
//!
//! A `MessageSid` gets one run. Twilio may post a message again (a retry,
//! or a fallback request): a repeat that comes while the run goes on waits
//! for it; one that comes after gets the answer the run gave. What a run
//! gave is remembered for an hour, for the last [`REMEMBERED`] messages and
//! at most [`REMEMBERED_BYTES`] of answers.

use std::cmp::Reverse;
use std::collections::hash_map::RandomState;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::hash::BuildHasher;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::thread;
use std::time::{Duration, Instant};

use log::{debug, warn};

use crate::handler::{Failure, Handler, Message};
use crate::logging::Escaped;

/// How many answered messages are remembered at most.
pub const REMEMBERED: usize = 10_000;

/// How many bytes of answers are remembered at most.
pub const REMEMBERED_BYTES: usize = 16 * 1024 * 1024;

/// How long an answered message is remembered at most.
pub const FOR: Duration = Duration::from_secs(3600);

/// The settings of the runs.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// How many handlers run at once.
    pub workers: usize,
    /// How long after a message arrives its handler may still run; a run
    /// that has not started by then does not.
    pub timeout: Duration,
    /// How long after a message arrives Twilio gets an answer: the reply if
    /// the handler has given it, the fallback otherwise.
    pub answer_within: Duration,
}

/// The handler, its workers and the runs.
pub struct Replying {
    shared: Arc<Shared>,
}

struct Shared {
    handler: Arc<dyn Handler>,
    /// The TwiML sent when a handler fails or is late.
    fallback: Arc<[u8]>,
    limits: Limits,
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
    /// Runs `handler` on `limits.workers` threads; `fallback` is the TwiML
    /// of the reply a message gets when its handler fails or is late.
    ///
    /// # Errors
    ///
    /// Fails when the threads cannot be started.
    pub fn start(
        handler: Arc<dyn Handler>,
        fallback: Vec<u8>,
        limits: Limits,
    ) -> std::io::Result<Replying> {
        let shared = Arc::new(Shared {
            handler,
            fallback: fallback.into(),
            limits,
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
                None => (runs.insert(sid, now), true),
            }
        };
        let pending = {
            let mut state = lock(&run.state);
            if let RunState::Done(twiml) = &*state {
                debug!("{} answered as its first run did", Escaped(&run.sid));
                return Ok(Arc::clone(twiml));
            }
            let pending = Arc::new(Pending {
                state: Mutex::new(Delivery::Waiting(None)),
                deadline: now + shared.limits.answer_within,
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

    /// Waits until every request waiting for an answer has had one, or
    /// `deadline`; returns how many still wait.
    pub fn finish(&self, deadline: Instant) -> usize {
        let shared = &self.shared;
        let mut guard = lock(&shared.answered_lock);
        loop {
            let waiting = shared.waiting.load(Ordering::Acquire);
            let left = deadline.saturating_duration_since(Instant::now());
            if waiting == 0 || left.is_zero() {
                return waiting;
            }
            guard = shared
                .answered
                .wait_timeout(guard, left.min(Duration::from_millis(100)))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
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
            reply.unwrap_or_else(|_| Err(Failure::new("the handler panicked")))
        };
        let twiml: Arc<[u8]> = match outcome {
            Ok(reply) => {
                debug!(
                    "{} replied in {} ms",
                    Escaped(&run.sid),
                    started.elapsed().as_millis()
                );
                reply.render().into()
            }
            Err(failure) => {
                warn!("{} got the fallback reply: {failure}", Escaped(&run.sid));
                Arc::clone(&self.fallback)
            }
        };
        lock(&self.runs).answered(twiml.len());
        let waiting = {
            let mut state = lock(&run.state);
            match std::mem::replace(&mut *state, RunState::Done(Arc::clone(&twiml))) {
                RunState::Running(waiting) => waiting,
                RunState::Done(_) => Vec::new(),
            }
        };
        for pending in waiting {
            pending.deliver(Arc::clone(&twiml));
        }
    }

    /// The clock's loop: delivers the fallback to each request whose
    /// deadline passes before its answer comes.
    fn tick(&self) {
        loop {
            let due = self.clock.next_due();
            for pending in due {
                if pending.is_waiting() {
                    debug!("an answer is late: the fallback goes out in time");
                    pending.deliver(Arc::clone(&self.fallback));
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
    /// Calls `deliver` with the TwiML, at once if it is there already, or
    /// later on the thread that has it (a reply worker, or the clock with
    /// the fallback at the deadline).
    pub fn then(self, deliver: impl FnOnce(Arc<[u8]>) + Send + 'static) {
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

type Deliver = Box<dyn FnOnce(Arc<[u8]>) + Send>;

/// A request waiting for its answer.
struct Pending {
    state: Mutex<Delivery>,
    deadline: Instant,
    shared: Weak<Shared>,
}

enum Delivery {
    /// No answer yet; what to call with it, once the edge has said.
    Waiting(Option<Deliver>),
    /// The answer came before the edge said what to do with it.
    Ready(Arc<[u8]>),
    /// Answered.
    Delivered,
}

impl Pending {
    fn is_waiting(&self) -> bool {
        matches!(*lock(&self.state), Delivery::Waiting(_))
    }

    /// Delivers `answer`, unless an answer was delivered already.
    fn deliver(&self, answer: Arc<[u8]>) {
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
                        return;
                    }
                },
                Delivery::Ready(_) | Delivery::Delivered => return,
            }
        };
        deliver(answer);
        self.counted();
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
}

enum RunState {
    /// The handler runs; these requests wait for its answer.
    Running(Vec<Arc<Pending>>),
    /// The answer the run gave.
    Done(Arc<[u8]>),
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

    fn insert(&mut self, sid: &[u8], now: Instant) -> Arc<Run> {
        let key = self.hasher.hash_one(sid);
        let run = Arc::new(Run {
            sid: String::from_utf8_lossy(sid).into_owned(),
            state: Mutex::new(RunState::Running(Vec::new())),
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
                if let RunState::Done(twiml) = &*lock(&run.state) {
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

    const FALLBACK: &[u8] = b"<Response><Message>sorry</Message></Response>";

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
                later.then(move |answer| sender.send(answer.to_vec()).unwrap());
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
        let replying = Replying::start(Arc::new(handler), FALLBACK.to_vec(), limits(10)).unwrap();
        let first = answered(replying.answer(b"SM1", message("a")));
        let again = answered(replying.answer(b"SM1", message("b")));
        assert_eq!(first, again);
        assert!(String::from_utf8(first).unwrap().contains("run for a"));
        let other = answered(replying.answer(b"SM2", message("c")));
        assert!(String::from_utf8(other).unwrap().contains("run for c"));
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        // Counted as answered once written, just after the test reads it.
        assert_eq!(replying.finish(Instant::now() + Duration::from_secs(10)), 0);
    }

    #[test]
    fn a_repeat_during_the_run_waits_for_it_and_a_late_run_is_answered_with_the_fallback() {
        let (release, gate) = mpsc::channel::<()>();
        let gate = Mutex::new(gate);
        let handler = move |_: &Message| {
            let _ = lock(&gate).recv();
            Reply::text("done")
        };
        let replying = Replying::start(Arc::new(handler), FALLBACK.to_vec(), limits(2)).unwrap();
        let first = replying.answer(b"SM1", message("a"));
        let repeat = replying.answer(b"SM1", message("a"));
        // Neither is answered until the deadline: both get the fallback.
        assert_eq!(answered(first), FALLBACK);
        assert_eq!(answered(repeat), FALLBACK);
        release.send(()).unwrap();
        // The run's late answer is what later repeats get.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let later = answered(replying.answer(b"SM1", message("a")));
            if later != FALLBACK || Instant::now() > deadline {
                assert!(String::from_utf8(later).unwrap().contains("done"));
                break;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn a_failing_or_panicking_handler_gets_the_fallback() {
        let handler = |message: &Message| match message.body.as_deref() {
            Some("panic") => panic!("in a test"),
            _ => Reply::text("ok"),
        };
        let replying = Replying::start(Arc::new(handler), FALLBACK.to_vec(), limits(10)).unwrap();
        assert_eq!(
            answered(replying.answer(b"SM1", message("panic"))),
            FALLBACK
        );
        assert_ne!(answered(replying.answer(b"SM2", message("x"))), FALLBACK);
    }

    #[test]
    fn remembered_runs_are_bounded() {
        let mut runs = Runs::new();
        let now = Instant::now();
        for n in 0..=REMEMBERED {
            runs.forget_old(now);
            runs.insert(format!("SM{n}").as_bytes(), now);
        }
        runs.forget_old(now);
        assert!(runs.order.len() < REMEMBERED);
        assert!(runs.get(b"SM0").is_none());
        runs.forget_old(now + FOR);
        assert!(runs.order.is_empty());
    }
}
