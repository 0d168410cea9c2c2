//! The watchdog: proves, once a second, that connections are still accepted,
//! and keeps the edge's other clocks.
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
//! are reported ([`Report::ListenerDead`]), and probing goes on. A probe that
//! cannot even start (this process is out of file descriptors itself) proves
//! nothing either way.
//!
//! When no probe at all has been answered for the give-up time, the server
//! cannot regain service: tiny_http holds threads and descriptors it will
//! never give back (connections it deadlocked). That is reported
//! ([`Report::ServiceLost`]), so that the server exits and a supervisor can
//! start it again, rather than live on answering nothing.
//!
//! The probes also keep `accept` busy: the listening socket's read timeout
//! (see [`listener`](crate::http::listener)) would otherwise end the accept
//! thread after that long without a connection.
//!
//! Between probes, every [`TICK`], the watchdog releases connections
//! tiny_http's thread pool may have left waiting (see [`rescue`]), and
//! writes out the log lines gathered (see [`logging`](crate::logging)).

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::http::rescue;

/// How often the watchdog wakes up between probes.
pub const TICK: Duration = Duration::from_millis(250);

/// How long a probe waits for each step (connect, answer).
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Consecutive failed probes before the listener is declared dead.
const FAILURES_BEFORE_REPORT: u32 = 2;

/// What the watchdog tells the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// Two probes in a row failed: the accept thread has likely ended.
    ListenerDead(String),
    /// No probe has been answered for the give-up time.
    ServiceLost {
        /// How long no probe has been answered.
        silent: Duration,
        /// Why the last probe failed.
        last_failure: String,
    },
}

/// What the watchdog looks after besides probing.
#[derive(Debug)]
pub struct Duties {
    /// New connections the request loops have noticed since the last tick.
    pub arrivals: Arc<AtomicUsize>,
    /// How long after the last new connection a few connections may still
    /// be waiting in tiny_http's pool: the read timeout, after which the
    /// connections ahead of them have been given up.
    pub after_arrivals: Duration,
    /// How long without an answered probe before [`Report::ServiceLost`].
    pub give_up: Duration,
}

/// A running watchdog; [`Watchdog::stop`] ends it.
#[derive(Debug)]
pub struct Watchdog {
    stop: Arc<StopSignal>,
    thread: JoinHandle<()>,
}

impl Watchdog {
    /// Starts probing the server listening on `listen_addr` every
    /// `interval` (an unspecified address such as `0.0.0.0` is probed through
    /// loopback), and doing its `duties` every [`TICK`]. `report` is called
    /// on the watchdog's thread with what it finds.
    ///
    /// # Errors
    ///
    /// Fails when the thread cannot be started.
    pub fn spawn<F>(
        listen_addr: SocketAddr,
        interval: Duration,
        duties: Duties,
        report: F,
    ) -> io::Result<Watchdog>
    where
        F: Fn(Report) + Send + 'static,
    {
        let stop = Arc::new(StopSignal::default());
        let target = probe_target(listen_addr);
        let thread = thread::Builder::new().name("watchdog".into()).spawn({
            let stop = Arc::clone(&stop);
            move || watch(target, interval, &duties, &stop, report)
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

fn watch<F: Fn(Report)>(
    target: SocketAddr,
    interval: Duration,
    duties: &Duties,
    stop: &StopSignal,
    report: F,
) {
    let mut failures = 0;
    let mut last_failure = String::new();
    let mut last_probe = Instant::now();
    let mut last_answer = Instant::now();
    let mut last_arrival: Option<Instant> = None;
    let mut releases = rescue::Releases::default();
    while !stop.wait(TICK.min(interval)) {
        let arrived = duties.arrivals.swap(0, Ordering::Relaxed);
        if arrived > 0 {
            last_arrival = Some(Instant::now());
        }
        let busy = last_arrival.is_some_and(|at| at.elapsed() < duties.after_arrivals);
        let release = releases.next(arrived, busy);
        if release > 0 {
            rescue::release(target, release);
        }
        crate::logging::flush();
        if last_probe.elapsed() < interval {
            continue;
        }
        last_probe = Instant::now();
        match probe(target, PROBE_TIMEOUT) {
            Probe::Answered => {
                failures = 0;
                last_answer = Instant::now();
            }
            Probe::Inconclusive(error) => {
                log::debug!("watchdog: cannot probe {target}: {error}");
                last_failure = format!("cannot even try to connect: {error}");
            }
            Probe::Failed(reason) => {
                failures += 1;
                log::debug!("watchdog: probe {failures} of {target} failed: {reason}");
                last_failure.clone_from(&reason);
                if failures >= FAILURES_BEFORE_REPORT {
                    failures = 0;
                    report(Report::ListenerDead(reason));
                }
            }
        }
        let silent = last_answer.elapsed();
        if silent >= duties.give_up {
            report(Report::ServiceLost {
                silent,
                last_failure: last_failure.clone(),
            });
            // Said once; the server is on its way out.
            last_answer = Instant::now();
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
    fn a_server_that_stops_answering_is_reported_lost_after_the_give_up_time() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (reports, received) = std::sync::mpsc::channel();
        let duties = Duties {
            arrivals: Arc::new(AtomicUsize::new(0)),
            after_arrivals: Duration::from_secs(1),
            give_up: Duration::from_millis(1500),
        };
        let started = Instant::now();
        let watchdog = Watchdog::spawn(addr, Duration::from_millis(100), duties, move |report| {
            let _ = reports.send(report);
        })
        .unwrap();
        let lost = loop {
            match received.recv_timeout(Duration::from_secs(20)).unwrap() {
                Report::ListenerDead(_) => continue,
                lost @ Report::ServiceLost { .. } => break lost,
            }
        };
        watchdog.stop();
        assert!(started.elapsed() >= Duration::from_millis(1500));
        let Report::ServiceLost { last_failure, .. } = lost else {
            unreachable!()
        };
        assert!(
            last_failure.starts_with("connected, but no answer"),
            "{last_failure}"
        );
        drop(listener);
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
