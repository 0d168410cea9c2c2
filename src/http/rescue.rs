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
//! A new connection that arrives while no thread is idle gets a thread of its
//! own, and once its work is done, that thread takes the next queued
//! connection. So the [watchdog](crate::http::watchdog) looks for connections whose
//! request bytes have sat unread in the kernel for two checks in a row
//! (Linux's `/proc/net/tcp`), and opens one short connection for each: it is
//! answered `400` by tiny_http at once, and its thread goes on to serve a
//! waiting one.
//!
//! Reading that table costs milliseconds (the kernel walks all of its
//! connection hash table), so it is read only while it can matter: when a
//! connection has been accepted since the last check (the `PassiveOpens`
//! counter of `/proc/net/snmp`, a small file), or when the last reading found
//! unread connections.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// The most connections released at once.
pub const MAX_RELEASE: usize = 64;

/// How long a connection that stays waiting after a release is left before
/// it is counted again.
pub const RECOUNT: Duration = Duration::from_secs(1);

/// Finds connections left waiting, check after check.
#[derive(Debug)]
pub struct Detector {
    port: u16,
    table: &'static str,
    accepted: Option<u64>,
    unread: HashSet<String>,
    /// When a connection was last counted as waiting.
    counted: HashMap<String, Instant>,
}

impl Detector {
    /// A detector for connections to `listen_addr`'s port.
    pub fn new(listen_addr: SocketAddr) -> Detector {
        Detector {
            port: listen_addr.port(),
            // A dual-stack IPv6 socket lists IPv4 clients in tcp6 too.
            table: if listen_addr.is_ipv4() {
                "/proc/net/tcp"
            } else {
                "/proc/net/tcp6"
            },
            accepted: None,
            unread: HashSet::new(),
            counted: HashMap::new(),
        }
    }

    /// How many connections have been left waiting since the last check, for
    /// the caller to [`release`]. A connection that is still waiting is
    /// counted again only after [`RECOUNT`]: a release cannot help one that
    /// waits for another reason (a connection this server has parked, or one
    /// that pipelines requests while its answer is being written), and such a
    /// connection must not set off a stream of releases.
    pub fn check(&mut self) -> usize {
        let accepted = connections_accepted();
        let churn = accepted.is_none() || accepted != self.accepted;
        self.accepted = accepted;
        if !churn && self.unread.is_empty() {
            return 0;
        }
        let mut now_unread = HashSet::new();
        if let Ok(text) = std::fs::read_to_string(self.table) {
            collect_unread(&text, self.port, &mut now_unread);
        }
        let now = Instant::now();
        self.counted.retain(|remote, _| now_unread.contains(remote));
        let mut waiting = 0;
        for remote in now_unread.intersection(&self.unread) {
            let recounted = self
                .counted
                .get(remote)
                .is_none_or(|&last| now.duration_since(last) >= RECOUNT);
            if recounted {
                self.counted.insert(remote.clone(), now);
                waiting += 1;
            }
        }
        self.unread = now_unread;
        waiting
    }
}

/// How many TCP connections this network namespace has accepted, ever:
/// `PassiveOpens` in `/proc/net/snmp`, whose `Tcp:` lines are names, then
/// values.
fn connections_accepted() -> Option<u64> {
    parse_passive_opens(&std::fs::read_to_string("/proc/net/snmp").ok()?)
}

fn parse_passive_opens(snmp: &str) -> Option<u64> {
    let mut tcp = snmp.lines().filter(|line| line.starts_with("Tcp:"));
    let names = tcp.next()?.split_whitespace();
    let values = tcp.next()?.split_whitespace();
    names
        .zip(values)
        .find(|(name, _)| *name == "PassiveOpens")
        .and_then(|(_, value)| value.parse().ok())
}

/// Adds to `into` the remote address of every line of a `/proc/net/tcp`
/// table that is an established connection to local `port` whose receive
/// queue is not empty.
pub fn collect_unread(table: &str, port: u16, into: &mut HashSet<String>) {
    for line in table.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [_, local, remote, state, queues, ..] = fields[..] else {
            continue;
        };
        let local_port = local
            .rsplit_once(':')
            .and_then(|(_, hex)| u16::from_str_radix(hex, 16).ok());
        let unread = queues
            .split_once(':')
            .and_then(|(_, rx)| u64::from_str_radix(rx, 16).ok())
            .is_some_and(|rx| rx > 0);
        // State 01 is ESTABLISHED.
        if local_port == Some(port) && state == "01" && unread {
            into.insert(remote.to_owned());
        }
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
        "released {} of {count} connections left waiting in tiny_http's thread pool",
        opened.len()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:223F 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0
   1: 0100007F:223F 0100007F:D431 01 00000000:000002C4 00:00000000 00000000     0        0 2 1 0000000000000000 20 4 30 10 -1
   2: 0100007F:223F 0100007F:D432 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0000000000000000 20 4 30 10 -1
   3: 0100007F:D433 0100007F:223F 01 00000000:0000005E 00:00000000 00000000     0        0 4 1 0000000000000000 20 4 30 10 -1
   4: 0100007F:223F 0100007F:D434 08 00000000:00000010 00:00000000 00000000     0        0 5 1 0000000000000000 20 4 30 10 -1
";

    #[test]
    fn only_established_connections_to_the_port_with_unread_bytes_count() {
        let mut unread = HashSet::new();
        collect_unread(TABLE, 0x223F, &mut unread);
        assert_eq!(unread, HashSet::from(["0100007F:D431".to_owned()]));
    }

    #[test]
    fn passive_opens_are_read_from_the_tcp_lines_of_snmp() {
        let snmp = "Ip: Forwarding DefaultTTL\nIp: 1 64\n\
                    Tcp: RtoAlgorithm RtoMin ActiveOpens PassiveOpens AttemptFails\n\
                    Tcp: 1 200 31 4242 0\nUdp: InDatagrams\nUdp: 5\n";
        assert_eq!(parse_passive_opens(snmp), Some(4242));
        assert_eq!(parse_passive_opens("Tcp: A B\n"), None);
        #[cfg(target_os = "linux")]
        assert!(connections_accepted().is_some());
    }

    #[test]
    fn malformed_lines_are_skipped() {
        let mut unread = HashSet::new();
        collect_unread("header\ngarbage\n1: x\n", 8767, &mut unread);
        assert!(unread.is_empty());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_connection_unread_for_two_checks_is_found_in_the_real_table() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut detector = Detector::new(addr);
        let mut client = TcpStream::connect(addr).unwrap();
        let (_accepted, _) = listener.accept().unwrap();
        assert_eq!(detector.check(), 0);
        client.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
        // The first check that sees the bytes only remembers them.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while detector.unread.is_empty() && std::time::Instant::now() < deadline {
            assert_eq!(detector.check(), 0);
            detector.accepted = None; // as if connections had come
        }
        assert_eq!(detector.check(), 1);
        assert_eq!(detector.check(), 0, "not again at once");
        std::thread::sleep(RECOUNT);
        assert_eq!(detector.check(), 1, "again once it has waited for a while");
    }
}
