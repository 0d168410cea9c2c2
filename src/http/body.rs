//! Request bodies: read whole, under a size limit and a deadline.
//!
//! A body is read one `read` at a time, so that a deadline (and whether the
//! reader has been told to stop) is looked at after each, and never past
//! `limit + 1` bytes, so that a body over the limit is noticed without being
//! stored. Each `read` waits at most the socket's read timeout.

use std::fmt;
use std::io::{self, Read};
use std::time::Instant;

/// The largest request body read, in bytes: 64 KiB. Twilio's own requests
/// are a few kilobytes at most.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Reads a whole body into `buf`, refusing to read more than `limit` bytes
/// (at most `limit + 1` are read, so a body over the limit is noticed
/// without being stored) or to go on reading after `deadline`.
///
/// `expected` is the announced length: a body that ends before it is an
/// error, not a shorter body. `stop` is asked after every read that did not
/// finish the body: `true` gives up.
///
/// # Errors
///
/// [`BodyError::TooLarge`] over the limit, [`BodyError::TimedOut`] past the
/// deadline or when the socket's read timeout expires,
/// [`BodyError::Dropped`] when `stop` says so, [`BodyError::Short`] when
/// the client closed early, and [`BodyError::Io`] for any other read error.
pub fn read_body(
    reader: &mut dyn Read,
    expected: Option<usize>,
    limit: usize,
    deadline: Option<Instant>,
    stop: Option<impl Fn() -> bool>,
    buf: &mut Vec<u8>,
) -> Result<(), BodyError> {
    buf.clear();
    loop {
        // One read at a time, so that the deadline is looked at after each;
        // no more room than the rest of the announced body, so that a small
        // body costs no large buffer to zero.
        let room = (limit + 1 - buf.len()).min(16 * 1024);
        let want = expected.map_or(room, |expected| {
            expected.saturating_sub(buf.len()).clamp(1, room)
        });
        let start = buf.len();
        buf.resize(start + want, 0);
        let result = reader.read(&mut buf[start..]);
        buf.truncate(start + result.as_ref().map_or(0, |&read| read));
        match result {
            Ok(0) => break,
            Ok(_) => {}
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(BodyError::TimedOut);
            }
            Err(error) => return Err(BodyError::Io(error)),
        }
        if buf.len() > limit {
            return Err(BodyError::TooLarge { limit });
        }
        if expected.is_some_and(|expected| buf.len() >= expected) {
            break;
        }
        if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            return Err(BodyError::TimedOut);
        }
        if stop.as_ref().is_some_and(|stop| stop()) {
            return Err(BodyError::Dropped);
        }
    }
    match expected {
        Some(expected) if buf.len() < expected => Err(BodyError::Short {
            expected,
            received: buf.len(),
        }),
        _ => Ok(()),
    }
}

/// Why a request body could not be read.
#[derive(Debug)]
pub enum BodyError {
    /// The body is longer than `limit` bytes.
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The client did not send the body in time.
    TimedOut,
    /// The reader was told to stop: too many bodies were arriving at once,
    /// and this was the oldest.
    Dropped,
    /// The client closed the connection before the announced length.
    Short {
        /// The announced length.
        expected: usize,
        /// How much arrived.
        received: usize,
    },
    /// Reading the body failed.
    Io(io::Error),
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BodyError::TooLarge { limit } => write!(f, "the body is larger than {limit} bytes"),
            BodyError::TimedOut => f.write_str("the body did not arrive in time"),
            BodyError::Dropped => {
                f.write_str("too many bodies were still arriving, and this one had waited longest")
            }
            BodyError::Short { expected, received } => write!(
                f,
                "the body ended after {received} of the {expected} bytes announced"
            ),
            BodyError::Io(error) => write!(f, "cannot read the body: {error}"),
        }
    }
}

impl std::error::Error for BodyError {}

#[cfg(test)]
mod tests {
    use super::*;

    const NO_STOP: Option<fn() -> bool> = None;
    #[test]
    fn body_of_exactly_the_limit_is_read_whole() {
        let mut buf = b"left over".to_vec();
        read_body(
            &mut &[7u8; 100][..],
            Some(100),
            100,
            None,
            NO_STOP,
            &mut buf,
        )
        .unwrap();
        assert_eq!(buf, [7u8; 100]);
    }

    #[test]
    fn body_one_byte_over_the_limit_is_refused_after_reading_limit_plus_one() {
        let mut source = &[7u8; 1000][..];
        let mut buf = Vec::new();
        assert!(matches!(
            read_body(&mut source, None, 100, None, NO_STOP, &mut buf),
            Err(BodyError::TooLarge { limit: 100 })
        ));
        assert_eq!(buf.len(), 101);
        assert_eq!(source.len(), 899, "must not read past limit + 1");
    }

    #[test]
    fn short_and_empty_bodies_are_read() {
        let mut buf = Vec::new();
        read_body(&mut &b"From=x"[..], Some(6), 100, None, NO_STOP, &mut buf).unwrap();
        assert_eq!(buf, b"From=x");
        read_body(&mut &b""[..], None, 100, None, NO_STOP, &mut buf).unwrap();
        assert!(buf.is_empty());
    }

    #[test]
    fn read_errors_are_reported() {
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::ErrorKind::ConnectionReset.into())
            }
        }
        let error = read_body(&mut Broken, None, 100, None, NO_STOP, &mut Vec::new()).unwrap_err();
        assert!(matches!(&error, BodyError::Io(e) if e.kind() == io::ErrorKind::ConnectionReset));
        assert!(error.to_string().starts_with("cannot read the body: "));
    }

    #[test]
    fn a_body_that_ends_before_its_announced_length_is_short() {
        let error = read_body(
            &mut &b"From=x"[..],
            Some(10),
            100,
            None,
            NO_STOP,
            &mut Vec::new(),
        );
        assert!(matches!(
            error,
            Err(BodyError::Short {
                expected: 10,
                received: 6
            })
        ));
    }

    #[test]
    fn a_socket_read_timeout_or_a_passed_deadline_is_a_timeout() {
        struct Stalled;
        impl Read for Stalled {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::ErrorKind::WouldBlock.into())
            }
        }
        let error = read_body(&mut Stalled, Some(10), 100, None, NO_STOP, &mut Vec::new());
        assert!(matches!(error, Err(BodyError::TimedOut)));
        let past = Instant::now();
        let mut endless = io::repeat(b'x');
        let error = read_body(
            &mut endless,
            None,
            100_000,
            Some(past),
            NO_STOP,
            &mut Vec::new(),
        );
        assert!(matches!(error, Err(BodyError::TimedOut)));
        // A client that trickles its body a byte at a time is stopped at the
        // deadline, not at the end of the body.
        struct Trickle;
        impl Read for Trickle {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                buf[0] = b'x';
                Ok(1)
            }
        }
        let mut buf = Vec::new();
        let error = read_body(
            &mut Trickle,
            Some(1000),
            2000,
            Some(past),
            NO_STOP,
            &mut buf,
        );
        assert!(matches!(error, Err(BodyError::TimedOut)));
        assert_eq!(buf, b"x");
        let whole = read_body(
            &mut &[1u8; 50][..],
            Some(50),
            100,
            Some(past),
            NO_STOP,
            &mut Vec::new(),
        );
        assert!(whole.is_ok(), "a body that arrived whole is not late");
    }

    #[test]
    fn a_reader_told_to_stop_gives_up_after_its_current_read() {
        struct Trickle;
        impl Read for Trickle {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                buf[0] = b'x';
                Ok(1)
            }
        }
        let reads = std::cell::Cell::new(0);
        let stop = || {
            reads.set(reads.get() + 1);
            reads.get() >= 3
        };
        let mut buf = Vec::new();
        let error = read_body(&mut Trickle, Some(100), 200, None, Some(stop), &mut buf);
        assert!(matches!(error, Err(BodyError::Dropped)));
        assert_eq!(buf, b"xxx");
        let whole = read_body(
            &mut &[1u8; 5][..],
            Some(5),
            10,
            None,
            Some(|| true),
            &mut buf,
        );
        assert!(whole.is_ok(), "a body that arrived whole is not dropped");
    }
}
