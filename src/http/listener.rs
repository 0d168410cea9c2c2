//! The listening socket and the process's file-descriptor limit.
//!
//! tiny_http accepts connections itself and offers no read or write timeout.
//! On Linux (and the BSDs) an accepted socket inherits `SO_RCVTIMEO`,
//! `SO_SNDTIMEO` and `TCP_NODELAY` from the listening socket, so they are set
//! here, once: every connection then gives up on a client that sends nothing
//! for the timeout, or that leaves no room for an answer for
//! [`WRITE_TIMEOUT`]. The price is that `accept` itself times
//! out after as long without a new connection, which ends tiny_http's accept
//! thread; the [watchdog](crate::http::watchdog)'s probes keep it busy, and the
//! server starts a new accept thread whenever one ends.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

/// How many finished handshakes may wait for `accept`.
pub const BACKLOG: i32 = 1024;

/// How long writing an answer may wait for room in the socket's buffers.
/// Answers are a few hundred bytes: a client with a healthy connection never
/// makes a write wait, and one that does is not reading.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(1);

/// Binds `addr` with the socket options every connection inherits; reads
/// time out after `read_timeout`, writes after [`WRITE_TIMEOUT`] (or
/// `read_timeout`, if shorter).
///
/// # Errors
///
/// Fails when the socket cannot be created, configured or bound (for
/// example, the port is in use).
pub fn bind(addr: SocketAddr, read_timeout: Duration) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // Restarting the server must not wait for old connections' TIME_WAIT.
    socket.set_reuse_address(true)?;
    socket.set_read_timeout(Some(read_timeout))?;
    socket.set_write_timeout(Some(WRITE_TIMEOUT.min(read_timeout)))?;
    // Answers are one small write; Nagle's algorithm would only delay them.
    socket.set_tcp_nodelay(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

/// Raises the soft limit on open files to the hard limit, so that bursts of
/// connections do not exhaust it, and returns the new soft limit.
///
/// # Errors
///
/// Fails when the limits cannot be read or set.
pub fn raise_file_limit() -> io::Result<u64> {
    rlimit::increase_nofile_limit(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpStream;

    #[cfg(target_os = "linux")]
    #[test]
    fn accepted_connections_inherit_the_timeouts_and_nodelay() {
        let timeout = Duration::from_millis(1500);
        let listener = bind("127.0.0.1:0".parse().unwrap(), timeout).unwrap();
        let _client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        assert_eq!(accepted.read_timeout().unwrap(), Some(timeout));
        assert_eq!(accepted.write_timeout().unwrap(), Some(WRITE_TIMEOUT));
        assert!(accepted.nodelay().unwrap());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn accept_times_out_when_no_connection_comes() {
        let listener = bind("127.0.0.1:0".parse().unwrap(), Duration::from_millis(50)).unwrap();
        let error = listener.accept().unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::WouldBlock);
    }

    #[test]
    fn the_file_limit_is_at_least_what_it_was() {
        let before = rlimit::Resource::NOFILE.get().unwrap().0;
        assert!(raise_file_limit().unwrap() >= before);
    }
}
