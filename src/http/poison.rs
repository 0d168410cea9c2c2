//! Poisoned connections, of two kinds:
//!
//! - [`Taint::Refused`]: after a request whose framing was refused, where the
//!   next request on that connection starts is unknown, so every later
//!   request on it is refused too.
//! - [`Taint::Unread`]: the client did not read an answer in time (writing it
//!   timed out), so writing the next one may wait too; its later requests go
//!   where waiting harms no one else.
//!
//! tiny_http gives no way to close a connection from the request loop, so a
//! connection is known by its peer address, which no other connection can
//! share while it is open. An entry lasts until its connection has been
//! silent for twice the read timeout (by then tiny_http has closed it), and
//! at most [`MAX_ENTRIES`] are kept.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The most connections remembered at once; the oldest go first.
pub const MAX_ENTRIES: usize = 4096;

/// Why a connection is poisoned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Taint {
    /// The client does not read its answers.
    Unread,
    /// A request's framing was refused; this outranks [`Taint::Unread`].
    Refused,
}

/// The set of poisoned connections.
#[derive(Debug)]
pub struct Poisoned {
    entries: Mutex<HashMap<SocketAddr, (Taint, Instant)>>,
    // Lets the common case, no poisoned connection at all, skip the lock.
    any: AtomicBool,
    ttl: Duration,
}

impl Poisoned {
    /// An empty set whose entries expire after `ttl` without a request.
    pub fn new(ttl: Duration) -> Poisoned {
        Poisoned {
            entries: Mutex::new(HashMap::new()),
            any: AtomicBool::new(false),
            ttl,
        }
    }

    /// Marks the connection from `peer` as poisoned by `taint` (a stronger
    /// taint it already has stays).
    pub fn add(&self, peer: SocketAddr, taint: Taint) {
        let now = Instant::now();
        let mut entries = self.lock();
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, (_, last)| now.duration_since(*last) < self.ttl);
        }
        if entries.len() >= MAX_ENTRIES {
            let oldest = entries
                .iter()
                .min_by_key(|(_, (_, last))| *last)
                .map(|(peer, _)| *peer);
            if let Some(oldest) = oldest {
                entries.remove(&oldest);
            }
        }
        let entry = entries.entry(peer).or_insert((taint, now));
        *entry = (entry.0.max(taint), now);
        self.any.store(true, Ordering::Release);
    }

    /// How the connection from `peer` is poisoned, if it is; a hit keeps it
    /// so.
    pub fn get(&self, peer: SocketAddr) -> Option<Taint> {
        if !self.any.load(Ordering::Acquire) {
            return None;
        }
        let now = Instant::now();
        let mut entries = self.lock();
        let hit = match entries.get_mut(&peer) {
            Some((taint, last)) if now.duration_since(*last) < self.ttl => {
                *last = now;
                Some(*taint)
            }
            Some(_) => {
                entries.remove(&peer);
                None
            }
            None => None,
        };
        if entries.is_empty() {
            self.any.store(false, Ordering::Release);
        }
        hit
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, (Taint, Instant)>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn a_poisoned_peer_stays_poisoned_while_it_keeps_sending() {
        let set = Poisoned::new(Duration::from_secs(60));
        assert_eq!(set.get(peer(1)), None);
        set.add(peer(1), Taint::Refused);
        assert_eq!(set.get(peer(1)), Some(Taint::Refused));
        assert_eq!(set.get(peer(1)), Some(Taint::Refused));
        assert_eq!(set.get(peer(2)), None);
    }

    #[test]
    fn a_refusal_outranks_an_unread_answer() {
        let set = Poisoned::new(Duration::from_secs(60));
        set.add(peer(1), Taint::Unread);
        assert_eq!(set.get(peer(1)), Some(Taint::Unread));
        set.add(peer(1), Taint::Refused);
        set.add(peer(1), Taint::Unread);
        assert_eq!(set.get(peer(1)), Some(Taint::Refused));
    }

    #[test]
    fn entries_expire_after_the_ttl() {
        let set = Poisoned::new(Duration::ZERO);
        set.add(peer(1), Taint::Refused);
        assert_eq!(set.get(peer(1)), None);
        assert!(!set.any.load(Ordering::Acquire));
    }

    #[test]
    fn the_set_never_grows_past_its_bound() {
        let set = Poisoned::new(Duration::from_secs(60));
        for port in 0..=MAX_ENTRIES as u16 {
            set.add(peer(port), Taint::Refused);
        }
        assert_eq!(set.lock().len(), MAX_ENTRIES);
        assert!(
            set.get(peer(MAX_ENTRIES as u16)).is_some(),
            "the newest entry is kept"
        );
    }
}
