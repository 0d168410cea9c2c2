//! Body readers: a thread for every request whose body is still on the
//! socket, so that a body that stalls keeps no one else waiting.
//!
//! Reading such a body, or even dropping its request (tiny_http then reads
//! and discards the rest), waits for the client. The request loop never
//! does either: it hands the request to [`Readers::start`], which runs the
//! work on a thread of its own. A fixed pool would let a few stalled bodies
//! hold every thread while the requests behind them wait.
//!
//! Each read waits at most the socket's read timeout, and a body must arrive
//! whole within the body deadline, so a stalled body ends by itself. Until
//! then it holds a thread and two descriptors, so the number of bodies being
//! read at once is bounded: when the bound is reached, the **oldest** read
//! is told to stop ([`Cancel`]), and gives up after its current read; the
//! newest request is always started.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

/// Tells a body read to give up early: the bound on bodies being read was
/// reached, and this one is the oldest.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// Whether the read should give up.
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    fn set(&self) {
        self.0.store(true, Ordering::Release);
    }
}

/// The threads reading bodies, and the bound on how many read at once.
#[derive(Debug)]
pub struct Readers {
    bound: usize,
    state: Mutex<State>,
    /// Signalled whenever a thread ends.
    ended: Condvar,
}

#[derive(Debug, Default)]
struct State {
    /// Threads running, reading or not.
    running: usize,
    /// The reads that may be told to stop, oldest first.
    reading: VecDeque<(u64, Cancel)>,
    next_id: u64,
}

impl Readers {
    /// Readers of which at most `bound` (at least 1) read at once before the
    /// oldest is told to stop.
    pub fn new(bound: usize) -> Readers {
        Readers {
            bound: bound.max(1),
            state: Mutex::new(State::default()),
            ended: Condvar::new(),
        }
    }

    /// The most bodies read at once.
    pub fn bound(&self) -> usize {
        self.bound
    }

    /// Runs `work` on a thread of its own, with the [`Cancel`] it must look
    /// at after every read; tells the oldest read to stop if `bound` are
    /// already reading. Returns how many were told to stop (0 or 1).
    ///
    /// # Errors
    ///
    /// Fails when no thread can be started; `work` is then dropped unrun,
    /// and the caller still has what it needs to answer.
    pub fn start<F>(self: &Arc<Self>, work: F) -> io::Result<usize>
    where
        F: FnOnce(&Cancel) + Send + 'static,
    {
        let cancel = Cancel::default();
        let (id, dropped) = {
            let mut state = self.lock();
            let dropped = if state.reading.len() >= self.bound {
                state.reading.pop_front().map(|(_, oldest)| oldest.set())
            } else {
                None
            };
            let id = state.next_id;
            state.next_id += 1;
            state.reading.push_back((id, cancel.clone()));
            state.running += 1;
            (id, usize::from(dropped.is_some()))
        };
        let readers = Arc::clone(self);
        let spawned = thread::Builder::new().name("body".into()).spawn(move || {
            // Counted as ended even when `work` panics (the panic hook has
            // logged it), so that a stop never waits for it.
            let _end = End {
                readers: &readers,
                id,
            };
            work(&cancel);
        });
        match spawned {
            Ok(_) => Ok(dropped),
            Err(error) => {
                self.end(id);
                Err(error)
            }
        }
    }

    /// How many threads are running.
    pub fn running(&self) -> usize {
        self.lock().running
    }

    /// Waits until no thread runs, or `deadline` passes; returns how many
    /// still run.
    pub fn wait_until_idle(&self, deadline: Instant) -> usize {
        let mut state = self.lock();
        while state.running > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            state = self
                .ended
                .wait_timeout(state, left.min(Duration::from_millis(100)))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        state.running
    }

    fn end(&self, id: u64) {
        let mut state = self.lock();
        state.running -= 1;
        state.reading.retain(|(reading, _)| *reading != id);
        self.ended.notify_all();
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every change to the state is complete before the lock is released.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Marks a reader's thread as ended when its work returns or unwinds.
struct End<'a> {
    readers: &'a Readers,
    id: u64,
}

impl Drop for End<'_> {
    fn drop(&mut self) {
        self.readers.end(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn work_runs_on_threads_of_its_own_and_is_waited_for() {
        let readers = Arc::new(Readers::new(8));
        let (done, finished) = mpsc::channel();
        let (go, wait) = mpsc::channel::<()>();
        let wait = Arc::new(Mutex::new(wait));
        for _ in 0..3 {
            let done = done.clone();
            let wait = Arc::clone(&wait);
            readers
                .start(move |_| {
                    let _ = wait.lock().unwrap().recv();
                    done.send(()).unwrap();
                })
                .unwrap();
        }
        assert_eq!(readers.running(), 3);
        assert_eq!(readers.wait_until_idle(Instant::now()), 3);
        for _ in 0..3 {
            go.send(()).unwrap();
        }
        for _ in 0..3 {
            finished.recv().unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        assert_eq!(readers.wait_until_idle(deadline), 0);
    }

    #[test]
    fn at_the_bound_the_oldest_read_is_told_to_stop_and_the_newest_starts() {
        let readers = Arc::new(Readers::new(2));
        let (seen, cancels) = mpsc::channel();
        let hold = Arc::new(Mutex::new(()));
        let held = hold.lock().unwrap();
        let mut told = Vec::new();
        for number in 0..4 {
            let seen = seen.clone();
            let hold = Arc::clone(&hold);
            told.push(
                readers
                    .start(move |cancel| {
                        seen.send((number, cancel.clone())).unwrap();
                        drop(hold.lock());
                    })
                    .unwrap(),
            );
        }
        assert_eq!(told, [0, 0, 1, 1]);
        let mut cancels: Vec<(i32, Cancel)> = cancels.iter().take(4).collect();
        cancels.sort_by_key(|(number, _)| *number);
        let stopped: Vec<bool> = cancels.iter().map(|(_, cancel)| cancel.is_set()).collect();
        assert_eq!(stopped, [true, true, false, false]);
        drop(held);
        assert_eq!(
            readers.wait_until_idle(Instant::now() + Duration::from_secs(10)),
            0
        );
    }

    #[test]
    fn a_panicking_reader_still_counts_as_ended() {
        let readers = Arc::new(Readers::new(1));
        readers.start(|_| panic!("in a test")).unwrap();
        assert_eq!(
            readers.wait_until_idle(Instant::now() + Duration::from_secs(10)),
            0
        );
        assert!(readers.lock().reading.is_empty());
    }
}
