//! Clients that do not read their answers: their answers are written on a
//! thread of their own, so that no write to them ever makes the request loop
//! wait.
//!
//! An answer is one small write, which a client that reads never makes
//! wait. A client that sends requests and never reads the answers (a
//! pipelining attacker) fills its socket's buffers, and then every write to
//! it waits for the write timeout. Once a write to a client address has
//! timed out, that address gets a *lane*: a thread that writes its answers
//! in order while the loop goes on. A lane ends once no answer has come for
//! it for a while.
//!
//! Nothing is dropped because of an address alone: a new connection may
//! come from the same address and port as one that stopped reading (behind
//! a proxy on the same host, ports are reused all the time), and its
//! answers must go out. The lane learns which connection it faces from the
//! writes themselves. One address names at most one open connection, so
//! while a write to it is timing out, that connection is still open, and
//! every answer queued for the address until then is for it: those are
//! dropped unwritten. An answer queued later is written, and goes out at
//! once if it is for a new connection that reads.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use log::debug;

use crate::http::response::write_within;

/// An answer for a lane: the request's writer and the bytes to write.
pub struct Answer {
    /// The writer of the request answered.
    pub writer: Box<dyn Write + Send>,
    /// The whole answer.
    pub bytes: Vec<u8>,
}

/// The lanes of the client addresses a write has timed out to.
pub struct Slow {
    lanes: Mutex<HashMap<SocketAddr, Arc<Lane>>>,
    // Lets the common case, no lane at all, skip the lock.
    any: AtomicBool,
    /// How long a write may wait for the client.
    patience: Duration,
    /// How long a lane waits for another answer before it ends.
    linger: Duration,
    /// The most lanes at once.
    bound: usize,
}

#[derive(Default)]
struct Lane {
    queue: Mutex<VecDeque<Answer>>,
    added: Condvar,
}

impl Slow {
    /// No lanes yet. A write waits at most `patience` for the client; a lane
    /// ends after `linger` without an answer; at most `bound` lanes exist.
    pub fn new(patience: Duration, linger: Duration, bound: usize) -> Slow {
        Slow {
            lanes: Mutex::new(HashMap::new()),
            any: AtomicBool::new(false),
            patience,
            linger,
            bound,
        }
    }

    /// Whether `peer` has a lane: its answers should be [handed](Slow::hand)
    /// to it rather than written at once.
    pub fn has(&self, peer: SocketAddr) -> bool {
        self.any.load(Ordering::Acquire) && self.lock().contains_key(&peer)
    }

    /// Queues `answer` on the lane of `peer`, if it has one; otherwise gives
    /// it back, to be written at once.
    pub fn hand(&self, peer: SocketAddr, answer: Answer) -> Result<(), Answer> {
        if !self.any.load(Ordering::Acquire) {
            return Err(answer);
        }
        let lanes = self.lock();
        let Some(lane) = lanes.get(&peer) else {
            return Err(answer);
        };
        lock(&lane.queue).push_back(answer);
        lane.added.notify_one();
        Ok(())
    }

    /// Opens a lane for `peer`, to which a write has just timed out, unless
    /// it has one or the bound is reached; returns whether answers to `peer`
    /// now go through a lane.
    pub fn open(self: &Arc<Self>, peer: SocketAddr) -> bool {
        let mut lanes = self.lock();
        if lanes.contains_key(&peer) {
            return true;
        }
        if lanes.len() >= self.bound {
            debug!(
                "{peer} does not read its answers, and {} others do not either",
                lanes.len()
            );
            return false;
        }
        let lane = Arc::new(Lane::default());
        let slow = Arc::clone(self);
        let spawned = thread::Builder::new().name("slow-client".into()).spawn({
            let lane = Arc::clone(&lane);
            move || slow.write_out(peer, &lane)
        });
        if let Err(error) = spawned {
            debug!("cannot start a thread for {peer}, which does not read its answers: {error}");
            return false;
        }
        lanes.insert(peer, lane);
        self.any.store(true, Ordering::Release);
        debug!("{peer} does not read its answers: they are written on a thread of their own");
        true
    }

    /// How many lanes exist.
    pub fn lanes(&self) -> usize {
        self.lock().len()
    }

    /// A lane's thread: writes its answers in order until none has come for
    /// the linger.
    fn write_out(&self, peer: SocketAddr, lane: &Lane) {
        loop {
            let Some(mut answer) = self.next(peer, lane) else {
                return;
            };
            match write_within(&mut *answer.writer, &answer.bytes, self.patience) {
                Ok(()) => {}
                Err(error) if timed_out(&error) => {
                    // The connection is still open and still not reading:
                    // everything queued so far is for it.
                    let dropped = std::mem::take(&mut *lock(&lane.queue));
                    debug!(
                        "{peer} still does not read its answers: {} more not written",
                        dropped.len()
                    );
                }
                // The connection is gone; the next answer may be for a new one.
                Err(error) => debug!("an answer to {peer} was not delivered: {error}"),
            }
        }
    }

    /// The lane's next answer, or `None` once none has come for the linger
    /// (the lane is then closed).
    fn next(&self, peer: SocketAddr, lane: &Lane) -> Option<Answer> {
        let until = Instant::now() + self.linger;
        loop {
            {
                let mut queue = lock(&lane.queue);
                if let Some(answer) = queue.pop_front() {
                    return Some(answer);
                }
                let left = until.saturating_duration_since(Instant::now());
                if !left.is_zero() {
                    let (mut queue, _) = lane
                        .added
                        .wait_timeout(queue, left)
                        .unwrap_or_else(PoisonError::into_inner);
                    if let Some(answer) = queue.pop_front() {
                        return Some(answer);
                    }
                    continue;
                }
            }
            // Closed under the map's lock, so that no answer is handed to a
            // lane whose thread has ended.
            let mut lanes = self.lock();
            let mut queue = lock(&lane.queue);
            if let Some(answer) = queue.pop_front() {
                return Some(answer);
            }
            lanes.remove(&peer);
            if lanes.is_empty() {
                self.any.store(false, Ordering::Release);
            }
            return None;
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<SocketAddr, Arc<Lane>>> {
        lock(&self.lanes)
    }
}

impl std::fmt::Debug for Slow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slow")
            .field("lanes", &self.lanes())
            .field("patience", &self.patience)
            .finish_non_exhaustive()
    }
}

/// Whether a write failed because the client left no room in time.
pub fn timed_out(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every change under these locks is a single push, pop or insert.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    fn peer(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    /// A writer that reports each write, and fails it as told.
    struct Scripted {
        name: &'static str,
        outcome: Option<io::ErrorKind>,
        wrote: mpsc::Sender<&'static str>,
    }

    impl Write for Scripted {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            match self.outcome {
                Some(kind) => Err(kind.into()),
                None => {
                    self.wrote.send(self.name).unwrap();
                    Ok(buf.len())
                }
            }
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn answer(
        name: &'static str,
        outcome: Option<io::ErrorKind>,
        wrote: &mpsc::Sender<&'static str>,
    ) -> Answer {
        Answer {
            writer: Box::new(Scripted {
                name,
                outcome,
                wrote: wrote.clone(),
            }),
            bytes: b"HTTP/1.1 200 OK\r\n\r\n".to_vec(),
        }
    }

    #[test]
    fn without_a_lane_an_answer_is_given_back() {
        let slow = Arc::new(Slow::new(Duration::ZERO, Duration::from_secs(1), 4));
        let (wrote, _) = mpsc::channel();
        assert!(slow.hand(peer(1), answer("a", None, &wrote)).is_err());
        assert!(slow.open(peer(1)));
        assert!(slow.hand(peer(1), answer("a", None, &wrote)).is_ok());
        assert!(slow.hand(peer(2), answer("b", None, &wrote)).is_err());
    }

    #[test]
    fn answers_queued_after_a_timed_out_write_are_written() {
        let slow = Arc::new(Slow::new(Duration::ZERO, Duration::from_secs(5), 4));
        let (wrote, written) = mpsc::channel();
        // Hold the lane's queue while it fills, so that the timed-out write
        // comes first and the rest queue behind it.
        assert!(slow.open(peer(1)));
        let lane = Arc::clone(&slow.lock()[&peer(1)]);
        {
            let mut queue = lock(&lane.queue);
            queue.push_back(answer("stalled", Some(io::ErrorKind::WouldBlock), &wrote));
            queue.push_back(answer("same connection", None, &wrote));
        }
        lane.added.notify_one();
        // What comes after the timeout is written: a new connection's answer.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !lock(&lane.queue).is_empty() {
            assert!(Instant::now() < deadline, "the lane did not take its queue");
            thread::sleep(Duration::from_millis(5));
        }
        slow.hand(peer(1), answer("new connection", None, &wrote))
            .map_err(|_| ())
            .unwrap();
        assert_eq!(
            written.recv_timeout(Duration::from_secs(10)).unwrap(),
            "new connection"
        );
        assert!(
            written.try_recv().is_err(),
            "the stalled connection's answer was dropped"
        );
    }

    #[test]
    fn a_lane_ends_after_its_linger_and_the_bound_holds() {
        let slow = Arc::new(Slow::new(Duration::ZERO, Duration::from_millis(50), 2));
        assert!(slow.open(peer(1)));
        assert!(slow.open(peer(2)));
        assert!(!slow.open(peer(3)), "at the bound");
        let deadline = Instant::now() + Duration::from_secs(10);
        while slow.lanes() > 0 {
            assert!(Instant::now() < deadline, "lanes did not end");
            thread::sleep(Duration::from_millis(10));
        }
        let (wrote, _) = mpsc::channel();
        assert!(slow.hand(peer(1), answer("a", None, &wrote)).is_err());
    }
}
