//! The connections to the server's port as the kernel lists them, read only
//! when something rare must be decided: whether a stop can end without
//! waiting for a request still on its way, and why no connection could be
//! answered before the server gives up.
//!
//! tiny_http accepts and reads connections itself and tells nothing about
//! them; the kernel does. On Linux, `/proc/net/tcp` and `/proc/net/tcp6`
//! list every TCP socket of the network namespace with its state and the
//! bytes waiting to be read. Elsewhere nothing is known ([`connections`]
//! returns `None`), and the callers assume the worst.

use std::fmt;

/// The connections to one local port, by what they are doing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Connections {
    /// Accepted, open both ways, with nothing waiting to be read: a client
    /// still connected, and this server reading whatever it sends.
    pub live: usize,
    /// Accepted, open both ways, with bytes the server has not read: no
    /// thread is reading the connection yet (tiny_http has queued it behind
    /// busy threads, or lost it).
    pub unread: usize,
    /// Accepted, closed by the client, still held open by the server: no
    /// thread has read the end of the connection (tiny_http has lost it, or
    /// is about to notice).
    pub abandoned: usize,
    /// Not accepted yet: waiting in the listening socket's queue, holding
    /// none of this process's descriptors.
    pub queued: usize,
}

impl Connections {
    /// The connections this process has accepted and holds.
    pub fn held(&self) -> usize {
        self.live + self.unread + self.abandoned
    }

    /// The connections held whose clients are still connected, and may
    /// still send a request.
    pub fn connected(&self) -> usize {
        self.live + self.unread
    }
}

impl fmt::Display for Connections {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} connections held: {} with their clients still connected ({} of them with bytes \
             no thread has read), {} closed by their clients but never let go ({} more wait to \
             be accepted)",
            self.held(),
            self.connected(),
            self.unread,
            self.abandoned,
            self.queued
        )
    }
}

/// The connections accepted on local `port`, or `None` where the kernel's
/// list cannot be read.
pub fn connections(port: u16) -> Option<Connections> {
    if !cfg!(target_os = "linux") {
        return None;
    }
    let mut found = None;
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        // tcp6 is missing when IPv6 is off; tcp alone then tells everything.
        if let Ok(text) = std::fs::read_to_string(table) {
            let counted = found.get_or_insert_with(Connections::default);
            count(&text, port, counted);
        }
    }
    found
}

/// Adds the connections to `port` listed in `table` (the text of
/// `/proc/net/tcp` or `/proc/net/tcp6`) to `counted`.
fn count(table: &str, port: u16, counted: &mut Connections) {
    for line in table.lines().skip(1) {
        // sl local_address rem_address st tx_queue:rx_queue tr:tm->when
        // retrnsmt uid timeout inode ...
        let fields: Vec<&str> = line.split_whitespace().take(10).collect();
        let [_, local, _, state, queues, _, _, _, _, inode] = fields[..] else {
            continue;
        };
        let local_port = local
            .rsplit_once(':')
            .and_then(|(_, hex)| u16::from_str_radix(hex, 16).ok());
        if local_port != Some(port) {
            continue;
        }
        let unread = queues
            .split_once(':')
            .and_then(|(_, receive)| u64::from_str_radix(receive, 16).ok())
            .is_some_and(|bytes| bytes > 0);
        // A connection not yet accepted has no file, so no inode.
        let accepted = inode != "0";
        match state {
            // ESTABLISHED, SYN_RECV, CLOSE_WAIT in the listening queue.
            "01" | "03" | "08" if !accepted => counted.queued += 1,
            "01" if unread => counted.unread += 1,
            "01" => counted.live += 1,
            "08" => counted.abandoned += 1,
            // LISTEN, and what is closing or closed on this side.
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:223F 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: 0100007F:223F 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0 20 4 30 10 -1
   2: 0100007F:223F 0100007F:9C41 01 00000000:0000001A 00:00000000 00000000     0        0 3 1 0 20 4 30 10 -1
   3: 0100007F:223F 0100007F:9C42 08 00000000:00000000 00:00000000 00000000     0        0 4 1 0 20 4 30 10 -1
   4: 0100007F:223F 0100007F:9C43 06 00000000:00000000 03:00000000 00000000     0        0 0 3 0 0 0 0 0 0
   5: 0100007F:9C44 0100007F:223F 01 00000000:00000000 00:00000000 00000000     0        0 5 1 0 20 4 30 10 -1
   6: 0100007F:223F 0100007F:9C45 01 00000000:00000002 00:00000000 00000000     0        0 0 1 0 20 4 30 10 -1
";

    #[test]
    fn connections_to_the_port_are_counted_by_state_and_unread_bytes() {
        let mut counted = Connections::default();
        count(TABLE, 0x223F, &mut counted);
        assert_eq!(
            counted,
            Connections {
                live: 1,
                unread: 1,
                abandoned: 1,
                queued: 1,
            },
            "the listener, a TIME_WAIT and a client's own socket are not counted"
        );
        assert_eq!(counted.held(), 3);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_kernel_lists_a_connection_accepted_here() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert_eq!(connections(port), Some(Connections::default()));
        let client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        assert_eq!(connections(port).map(|c| c.queued), Some(1));
        let (accepted, _) = listener.accept().unwrap();
        assert_eq!(connections(port).map(|c| c.live), Some(1));
        drop(client);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while connections(port).map(|c| c.abandoned) != Some(1) {
            assert!(std::time::Instant::now() < deadline, "no CLOSE_WAIT seen");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        drop(accepted);
    }
}
