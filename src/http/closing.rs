//! Connections that get no more bytes from this server.
//!
//! A refused request's answer says `Connection: close` and must be the last
//! bytes written on its connection; an answer the client did not read in
//! time leaves its connection in the middle of that answer. tiny_http has no
//! way to close a connection, and goes on reading requests from it. So such a
//! connection is held *closing*:
//!
//! - The writer of its latest request is kept, unwritten. tiny_http writes
//!   the answers of a connection strictly in order, so nothing can go out on
//!   it while that writer is held, not even an answer tiny_http writes itself
//!   (its `400` for a malformed request line). Holding the writer also keeps
//!   the socket open, so no new connection can come from the same client
//!   address and port meanwhile: a request from that address is from this
//!   connection, and from no other.
//! - Every later request from it is swallowed: never processed, never
//!   answered; its writer replaces the one held.
//! - The entry ends once the connection has sent no request for `linger`,
//!   longer than the read timeout after which tiny_http gives a silent
//!   connection up. The writer is then dropped and the socket closes.
//!
//! Nothing evicts an entry early: each one is an open socket, bounded like
//! every connection by the open-file limit.

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// The set of closing connections, keyed by peer address.
pub struct Closing {
    entries: Mutex<HashMap<SocketAddr, Entry>>,
    // Lets the common case, no closing connection at all, skip the lock.
    any: AtomicBool,
    linger: Duration,
}

struct Entry {
    /// Never written; dropped when the entry ends.
    writer: Box<dyn Write + Send>,
    until: Instant,
}

impl Closing {
    /// An empty set whose entries end after `linger` without a request.
    pub fn new(linger: Duration) -> Closing {
        Closing {
            entries: Mutex::new(HashMap::new()),
            any: AtomicBool::new(false),
            linger,
        }
    }

    /// Holds the connection from `peer` closing, with `writer`, the writer
    /// of its latest request, which is never written to again.
    pub fn hold(&self, peer: SocketAddr, writer: Box<dyn Write + Send>) {
        let entry = Entry {
            writer,
            until: Instant::now() + self.linger,
        };
        // The writer replaced goes after the lock is released: dropping the
        // last handle on a connection may flush what a timed-out write left.
        let replaced = {
            let mut entries = self.lock();
            self.any.store(true, Ordering::Release);
            entries.insert(peer, entry)
        };
        drop(replaced);
    }

    /// Whether the connection from `peer` is closing.
    pub fn holds(&self, peer: SocketAddr) -> bool {
        self.any.load(Ordering::Acquire) && self.lock().contains_key(&peer)
    }

    /// Keeps the connection from `peer` closing for another `linger`, if it
    /// is closing: it just did something (a body was discarded).
    pub fn touch(&self, peer: SocketAddr) {
        if !self.any.load(Ordering::Acquire) {
            return;
        }
        if let Some(entry) = self.lock().get_mut(&peer) {
            entry.until = Instant::now() + self.linger;
        }
    }

    /// Ends the entries whose connections have been silent for `linger`;
    /// returns how many remain.
    pub fn sweep(&self) -> usize {
        if !self.any.load(Ordering::Acquire) {
            return 0;
        }
        let now = Instant::now();
        let (ended, remaining) = {
            let mut entries = self.lock();
            let ended: Vec<SocketAddr> = entries
                .iter()
                .filter(|(_, entry)| entry.until <= now)
                .map(|(peer, _)| *peer)
                .collect();
            let ended: Vec<Entry> = ended
                .iter()
                .filter_map(|peer| entries.remove(peer))
                .collect();
            if entries.is_empty() {
                self.any.store(false, Ordering::Release);
            }
            (ended, entries.len())
        };
        drop(ended.into_iter().map(|entry| entry.writer));
        remaining
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<SocketAddr, Entry>> {
        // Every change to the map is a single insert or remove.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl std::fmt::Debug for Closing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Closing")
            .field("connections", &self.lock().len())
            .field("linger", &self.linger)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    fn peer(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    /// A writer that counts how many of its kind have been dropped.
    struct Counted(Arc<AtomicUsize>);

    impl Write for Counted {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            panic!("a held writer is never written to")
        }
        fn flush(&mut self) -> std::io::Result<()> {
            panic!("a held writer is never flushed")
        }
    }

    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_held_connection_is_known_until_it_has_been_silent_for_the_linger() {
        let dropped = Arc::new(AtomicUsize::new(0));
        let set = Closing::new(Duration::from_millis(50));
        assert!(!set.holds(peer(1)));
        set.hold(peer(1), Box::new(Counted(Arc::clone(&dropped))));
        assert!(set.holds(peer(1)));
        assert!(!set.holds(peer(2)));
        assert_eq!(set.sweep(), 1, "not silent long enough yet");
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(set.sweep(), 0);
        assert!(!set.holds(peer(1)));
        assert_eq!(dropped.load(Ordering::SeqCst), 1, "the writer is let go");
    }

    #[test]
    fn a_later_request_replaces_the_writer_and_extends_the_linger() {
        let dropped = Arc::new(AtomicUsize::new(0));
        let set = Closing::new(Duration::from_millis(80));
        set.hold(peer(1), Box::new(Counted(Arc::clone(&dropped))));
        std::thread::sleep(Duration::from_millis(50));
        set.hold(peer(1), Box::new(Counted(Arc::clone(&dropped))));
        assert_eq!(dropped.load(Ordering::SeqCst), 1, "the older writer goes");
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(set.sweep(), 1, "the linger restarted");
        set.touch(peer(1));
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(set.sweep(), 1, "touching restarts it too");
    }

    #[test]
    fn other_refusals_never_evict_an_entry() {
        let set = Closing::new(Duration::from_secs(60));
        set.hold(peer(1), Box::new(Vec::new()));
        for port in 2..6000 {
            set.hold(peer(port), Box::new(Vec::new()));
        }
        assert!(set.holds(peer(1)));
        assert_eq!(set.sweep(), 5999);
    }
}
