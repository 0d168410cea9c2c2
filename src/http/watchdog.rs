//! The watchdog: proves, once a second, that connections are still accepted.
//!
//! tiny_http accepts connections on a thread of its own, and that thread ends
//! for good on the first accept error. Sometimes it reports the error to the
//! request loop; sometimes (when a file-descriptor limit is hit between
//! `accept` and the `dup` that follows) it panics and reports nothing, and
//! the server would sit silent with new connections piling up in the
//! listen queue.
//!
//! The watchdog connects to the server and sends an empty request line, which
//! tiny_http's connection thread answers on its own with `400 Bad Request`:
//! an answer proves that the accept thread and a connection thread ran,
//! without touching the request loop or its log. Two failed probes in a row
//! are reported through a callback, and probing goes on. A probe that cannot
//! even start (this process is out of file descriptors itself) proves nothing
//! either way and is not counted.
//!
//! The probes also keep `accept` busy: the listening socket's read timeout
//! (see [`listener`](crate::http::listener)) would otherwise end the accept thread
//! after that long without a connection.
//!
//! Between probes, every [`RESCUE_CHECK`], the watchdog also releases
//! connections tiny_http's thread pool left waiting (see [`rescue`]).

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::http::rescue;

/// How often connections left waiting in tiny_http's pool are looked for.
pub const RESCUE_CHECK: Duration = Duration::from_millis(250);

/// How long a probe waits for each step (connect, answer).
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Consecutive failed probes before the listener is declared dead.
const FAILURES_BEFORE_REPORT: u32 = 2;

/// A running watchdog; [`Watchdog::stop`] ends it.
#[derive(Debug)]
pub struct Watchdog {
    stop: Arc<StopSignal>,
    thread: JoinHandle<()>,
}

impl Watchdog {
    /// Starts probing the server listening on `listen_addr` every
    /// `interval` (an unspecified address such as `0.0.0.0` is probed through
    /// loopback), and releasing connections left waiting in its thread pool.
    /// `on_dead` is called, with the reason, each time the listener fails two
    /// probes in a row.
    ///
    /// # Errors
    ///
    /// Fails when the thread cannot be started.
    pub fn spawn<F>(listen_addr: SocketAddr, interval: Duration, on_dead: F) -> io::Result<Watchdog>
    where
        F: Fn(String) + Send + 'static,
    {
        let stop = Arc::new(StopSignal::default());
        let target = probe_target(listen_addr);
        let thread = thread::Builder::new().name("watchdog".into()).spawn({
            let stop = Arc::clone(&stop);
            move || watch(target, interval, &stop, on_dead)
        })?;
        Ok(Watchdog { stop, thread })
    }

    /// Stops the watchdog and waits for its thread to end.
    pub fn stop(self) {
        self.stop.raise();
        // A panic in the watchdog thread has already been reported by the
        // panic hook; there is nothing more to do with it here.
        let _ = self.thread.join();
    }
}

fn watch<F: Fn(String)>(target: SocketAddr, interval: Duration, stop: &StopSignal, on_dead: F) {
    let mut failures = 0;
    let mut last_probe = Instant::now();
    let mut detector = rescue::Detector::new(target);
    while !stop.wait(RESCUE_CHECK.min(interval)) {
        let waiting = detector.check();
        if waiting > 0 {
            rescue::release(target, waiting);
        }
        if last_probe.elapsed() < interval {
            continue;
        }
        last_probe = Instant::now();
        match probe(target, PROBE_TIMEOUT) {
            Probe::Answered => failures = 0,
            Probe::Inconclusive(error) => {
                log::debug!("watchdog: cannot probe {target}: {error}");
            }
            Probe::Failed(reason) => {
                failures += 1;
                log::debug!("watchdog: probe {failures} of {target} failed: {reason}");
                if failures >= FAILURES_BEFORE_REPORT {
                    failures = 0;
                    on_dead(reason);
                }
            }
        }
    }
}

/// The outcome of one probe.
#[derive(Debug)]
pub enum Probe {
    /// The server accepted the connection and answered.
    Answered,
    /// The connection was made but not answered, or refused.
    Failed(String),
    /// The probe could not start, for a reason on this side.
    Inconclusive(io::Error),
}

/// Connects to `target`, sends an empty request line and waits for an HTTP
/// status line.
pub fn probe(target: SocketAddr, timeout: Duration) -> Probe {
    let mut stream = match TcpStream::connect_timeout(&target, timeout) {
        Ok(stream) => stream,
        // A full listen queue drops the handshake, so a timeout means nobody
        // is accepting; a refusal means nobody is listening.
        Err(error)
            if matches!(
                error.kind(),
                io::ErrorKind::TimedOut | io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Probe::Failed(format!("cannot connect: {error}"));
        }
        Err(error) => return Probe::Inconclusive(error),
    };
    let exchange = (|| {
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        stream.write_all(b"\r\n")?;
        let mut status = [0u8; 5];
        stream.read_exact(&mut status)?;
        Ok::<_, io::Error>(status)
    })();
    match exchange {
        Ok(status) if &status == b"HTTP/" => Probe::Answered,
        Ok(status) => Probe::Failed(format!(
            "unexpected answer {:?}",
            status.escape_ascii().to_string()
        )),
        Err(error)
            if matches!(
                error.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            Probe::Failed(format!("connected, but no answer within {timeout:?}"))
        }
        Err(error) => Probe::Failed(format!("connected, but {error}")),
    }
}

/// Where to connect to reach a server listening on `listen_addr`.
fn probe_target(listen_addr: SocketAddr) -> SocketAddr {
    let ip = match listen_addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen_addr.port())
}

/// A flag that can be waited on with a timeout.
#[derive(Debug, Default)]
struct StopSignal {
    raised: Mutex<bool>,
    changed: Condvar,
}

impl StopSignal {
    fn raise(&self) {
        *self.raised.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.changed.notify_all();
    }

    /// Waits up to `timeout`; returns whether the signal was raised.
    fn wait(&self, timeout: Duration) -> bool {
        let raised = self.raised.lock().unwrap_or_else(PoisonError::into_inner);
        let (raised, _) = self
            .changed
            .wait_timeout_while(raised, timeout, |raised| !*raised)
            .unwrap_or_else(PoisonError::into_inner);
        *raised
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn unspecified_addresses_are_probed_through_loopback() {
        let v4 = "0.0.0.0:8767".parse().unwrap();
        assert_eq!(probe_target(v4), "127.0.0.1:8767".parse().unwrap());
        let v6 = "[::]:8767".parse().unwrap();
        assert_eq!(probe_target(v6), "[::1]:8767".parse().unwrap());
        let specific = "192.0.2.7:80".parse().unwrap();
        assert_eq!(probe_target(specific), specific);
    }

    #[test]
    fn a_listener_nobody_accepts_from_fails_the_probe() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        match probe(addr, Duration::from_millis(200)) {
            Probe::Failed(reason) => {
                assert!(reason.starts_with("connected, but no answer"), "{reason}")
            }
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    #[test]
    fn a_tiny_http_server_answers_the_probe_without_a_request_reaching_the_loop() {
        let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
        let addr = server.server_addr().to_ip().unwrap();
        assert!(matches!(
            probe(addr, Duration::from_secs(5)),
            Probe::Answered
        ));
        assert!(server.try_recv().unwrap().is_none());
    }

    #[test]
    fn stop_signal_wakes_a_waiter_at_once() {
        let signal = Arc::new(StopSignal::default());
        let waiter = thread::spawn({
            let signal = Arc::clone(&signal);
            move || signal.wait(Duration::from_secs(600))
        });
        signal.raise();
        assert!(waiter.join().unwrap());
        assert!(!StopSignal::default().wait(Duration::from_millis(1)));
    }
}
