//! Messages seen before: Twilio may send the same message again (a retry,
//! a connection override), and a repeat is answered the same way but logged
//! as one.
//!
//! The memory is bounded: the last [`REMEMBERED`] `MessageSid`s, each for at
//! most [`FOR`]. A `MessageSid` is kept as a 64-bit hash, with room for all
//! of them made at start, so remembering one allocates nothing; two
//! different ids taken for the same is a chance of about one in 10^15 among
//! ten thousand.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How many message ids are remembered at most.
pub const REMEMBERED: usize = 10_000;

/// How long a message id is remembered at most.
pub const FOR: Duration = Duration::from_secs(3600);

/// Recently seen message ids.
#[derive(Debug)]
pub struct Repeats {
    seen: Mutex<Seen>,
    hasher: RandomState,
}

#[derive(Debug)]
struct Seen {
    /// When each hashed id was first seen.
    at: HashMap<u64, Instant>,
    /// The same ids, oldest first.
    order: VecDeque<(u64, Instant)>,
}

impl Repeats {
    /// Remembers nothing yet. Room for every id it will remember is made
    /// now (about 1 MB of address space, resident only as it fills), so
    /// that remembering one never allocates. The map gets room for twice
    /// as many: the ids it forgets leave tombstones, and the standard
    /// map, once out of room, cleans them up in place only when it is at
    /// most half full (otherwise it grows, once, by 400 KB: the soak test
    /// sees it).
    pub fn new() -> Repeats {
        Repeats {
            seen: Mutex::new(Seen {
                at: HashMap::with_capacity(2 * REMEMBERED),
                order: VecDeque::with_capacity(REMEMBERED),
            }),
            hasher: RandomState::new(),
        }
    }

    /// Notes a message with this id, and returns whether it was seen within
    /// the last hour (among the last [`REMEMBERED`]).
    pub fn seen_before(&self, message_sid: &[u8]) -> bool {
        self.check(message_sid, Instant::now())
    }

    fn check(&self, message_sid: &[u8], now: Instant) -> bool {
        let key = self.hasher.hash_one(message_sid);
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        while let Some(&(oldest, at)) = seen.order.front() {
            if seen.order.len() < REMEMBERED && now.duration_since(at) < FOR {
                break;
            }
            seen.order.pop_front();
            // A repeat does not move its id: the first sighting ages it.
            if seen.at.get(&oldest) == Some(&at) {
                seen.at.remove(&oldest);
            }
        }
        if seen.at.contains_key(&key) {
            return true;
        }
        seen.at.insert(key, now);
        seen.order.push_back((key, now));
        false
    }
}

impl Default for Repeats {
    fn default() -> Repeats {
        Repeats::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_id_is_a_repeat_the_second_time() {
        let repeats = Repeats::new();
        assert!(!repeats.seen_before(b"SM1"));
        assert!(repeats.seen_before(b"SM1"));
        assert!(!repeats.seen_before(b"SM2"));
        assert!(repeats.seen_before(b"SM1"));
    }

    #[test]
    fn an_id_is_forgotten_after_an_hour() {
        let repeats = Repeats::new();
        let start = Instant::now();
        assert!(!repeats.check(b"SM1", start));
        assert!(repeats.check(b"SM1", start + FOR - Duration::from_secs(1)));
        assert!(!repeats.check(b"SM1", start + FOR));
    }

    #[test]
    fn memory_is_bounded_to_the_latest_ids() {
        let repeats = Repeats::new();
        let now = Instant::now();
        for n in 0..=REMEMBERED {
            assert!(!repeats.check(format!("SM{n}").as_bytes(), now));
        }
        {
            let seen = repeats.seen.lock().unwrap();
            assert_eq!(seen.order.len(), REMEMBERED);
            assert_eq!(seen.at.len(), REMEMBERED);
        }
        assert!(!repeats.check(b"SM0", now), "the oldest was forgotten");
        assert!(repeats.check(format!("SM{REMEMBERED}").as_bytes(), now));
    }
}
