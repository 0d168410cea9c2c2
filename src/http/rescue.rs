//! Rescuing connections that tiny_http's thread pool has left waiting.
//!
//! tiny_http 0.12 hands each new connection to a thread pool that counts a
//! woken thread as idle until that thread has run again. During a burst of new
//! connections it therefore queues several of them for the same few threads;
//! each of those threads then serves one connection for as long as that
//! connection lasts, and the others wait, with their requests unread, until
//! some pool thread is free again. Sixteen connections opened at once to a
//! fresh server: four served, twelve waiting.
//!
//! A new connection that arrives while no pool thread is idle gets a thread
//! of its own, and once that connection is done, the thread takes the next
//! queued one. So while new connections come, the
//! [watchdog](crate::http::watchdog) opens short connections of its own
//! ([`Releases`] says how many): tiny_http answers each with `400` at
//! once, and the thread that answered goes on to serve a waiting connection
//! if there is one. If none waits, an idle pool thread answers the short
//! connection and nothing else happens.
//!
//! New connections are noticed from the requests the loop sees: [`Recent`]
//! remembers the last few client addresses, and one it has not seen counts
//! as an arrival. Each arrival is owed a few short connections, opened over
//! the next ticks, and a few more go out on every tick until no connection
//! has arrived for a read timeout: connections that never send a whole
//! request (a client that stalls mid-headers) are never noticed, and may
//! have been queued with the others. No table of the system's is read, so
//! this works on any system, and costs nothing while no connection
//! arrives.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// The most short connections opened at one check.
pub const MAX_RELEASE: usize = 16;

/// Short connections owed for each new connection: a burst of connections
/// that send requests may have brought connections that never do (a client
/// stalling mid-headers), queued with them and never noticed.
pub const PER_ARRIVAL: usize = 8;

/// The short connections opened at every check while connections have
/// arrived within the last read timeout.
pub const WHILE_BUSY: usize = 2;

/// How many short connections to open, check after check.
#[derive(Debug, Default)]
pub struct Releases {
    /// Short connections owed for arrivals, opened [`MAX_RELEASE`] at a
    /// time.
    owed: usize,
}

impl Releases {
    /// How many short connections to open at this check, after `arrived`
    /// new connections since the last one, `busy` while connections have
    /// arrived within the last read timeout: [`PER_ARRIVAL`] for each
    /// arrival, spread over the checks to come, and [`WHILE_BUSY`] more;
    /// none at all while nothing arrives.
    pub fn next(&mut self, arrived: usize, busy: bool) -> usize {
        self.owed = self
            .owed
            .saturating_add(arrived.saturating_mul(PER_ARRIVAL));
        let extra = if busy { WHILE_BUSY } else { 0 };
        let now = self.owed.saturating_add(extra).min(MAX_RELEASE);
        self.owed = self.owed.saturating_sub(now);
        now
    }
}

/// How many sets of [`WAYS`] client addresses [`Recent`] remembers.
const SETS: usize = 64;

/// How many client addresses share a set.
const WAYS: usize = 4;

/// The client addresses one thread has seen lately, to tell new connections
/// from requests on known ones: a small cache where each address can sit in
/// one of four places, so that keep-alive connections always find
/// themselves again. A new address, or one pushed out by many others,
/// counts as new.
#[derive(Debug)]
pub struct Recent {
    sets: [[Option<SocketAddr>; WAYS]; SETS],
    /// The way each set replaces next.
    next: [u8; SETS],
}

impl Recent {
    /// Remembers nothing yet.
    pub fn new() -> Recent {
        Recent {
            sets: [[None; WAYS]; SETS],
            next: [0; SETS],
        }
    }

    /// Notes a request from `peer`, and counts it in `arrivals` if `peer` is
    /// new.
    pub fn note(&mut self, peer: SocketAddr, arrivals: &AtomicUsize) {
        // Clients on one host differ by port: spread ports over the sets.
        let set = usize::from(peer.port()).wrapping_mul(0x9E37) % SETS;
        if self.sets[set].contains(&Some(peer)) {
            return;
        }
        let way = usize::from(self.next[set]);
        self.sets[set][way] = Some(peer);
        self.next[set] = u8::try_from((way + 1) % WAYS).unwrap_or(0);
        arrivals.fetch_add(1, Ordering::Relaxed);
    }
}

impl Default for Recent {
    fn default() -> Recent {
        Recent::new()
    }
}

/// Opens `count` (at most [`MAX_RELEASE`]) short connections to `target`,
/// each sending an empty request line, and closes them.
pub fn release(target: SocketAddr, count: usize) {
    let opened: Vec<TcpStream> = (0..count.min(MAX_RELEASE))
        .filter_map(|_| TcpStream::connect_timeout(&target, Duration::from_millis(500)).ok())
        .filter_map(|mut stream| stream.write_all(b"\r\n").ok().map(|()| stream))
        .collect();
    log::debug!(
        "opened {} short connections to free connections tiny_http's thread pool may have \
         left waiting",
        opened.len()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn a_known_connection_is_not_an_arrival_and_a_new_one_is() {
        let arrivals = AtomicUsize::new(0);
        let mut recent = Recent::new();
        for port in 40000..40016 {
            recent.note(peer(port), &arrivals);
        }
        assert_eq!(arrivals.load(Ordering::Relaxed), 16);
        for _ in 0..100 {
            for port in 40000..40016 {
                recent.note(peer(port), &arrivals);
            }
        }
        assert_eq!(
            arrivals.load(Ordering::Relaxed),
            16,
            "sixteen keep-alive connections all stay known"
        );
        recent.note(peer(40016), &arrivals);
        assert_eq!(arrivals.load(Ordering::Relaxed), 17);
    }

    #[test]
    fn up_to_four_connections_whose_ports_share_a_set_all_stay_known() {
        let arrivals = AtomicUsize::new(0);
        let mut recent = Recent::new();
        // Ports 64 apart fall into the same set.
        let ports = [40000, 40064, 40128, 40192];
        for _ in 0..10 {
            for port in ports {
                recent.note(peer(port), &arrivals);
            }
        }
        assert_eq!(arrivals.load(Ordering::Relaxed), 4);
    }

    #[test]
    fn releases_follow_arrivals_and_stop_when_nothing_arrives() {
        let mut releases = Releases::default();
        assert_eq!(releases.next(0, false), 0, "an idle server opens nothing");
        assert_eq!(releases.next(1, true), PER_ARRIVAL + WHILE_BUSY);
        assert_eq!(releases.next(0, true), WHILE_BUSY);
        // Twenty arrivals are owed 160, opened 16 at a time.
        let opened: Vec<usize> = std::iter::once(releases.next(20, false))
            .chain((0..10).map(|_| releases.next(0, false)))
            .collect();
        assert_eq!(opened, [16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 0]);
        assert_eq!(releases.next(0, false), 0);
    }

    #[test]
    fn a_release_opens_short_connections_that_send_an_empty_line() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let target = listener.local_addr().unwrap();
        release(target, 3);
        for _ in 0..3 {
            let (mut stream, _) = listener.accept().unwrap();
            let mut line = Vec::new();
            std::io::Read::read_to_end(&mut stream, &mut line).unwrap();
            assert_eq!(line, b"\r\n");
        }
    }
}
