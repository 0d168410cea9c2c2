//! Request framing: whether a request's head says unambiguously where its
//! body ends, and where tiny_http has left that body.
//!
//! This is decided from the headers alone, before a byte of the body is
//! read:
//!
//! - `Transfer-Encoding` is refused (Twilio always sends `Content-Length`).
//!   tiny_http would decode any value as chunked, so a proxy in front could
//!   disagree with it about where a request ends (request smuggling).
//! - A `Content-Length` that is not plain digits, or two that differ, is
//!   refused for the same reason.
//! - A body over the limit is refused with `413` unread.
//!
//! [`Body`] records what tiny_http 0.12 did with the body, because that
//! decides who may touch the request: tiny_http reads a body of at most
//! [`TINY_HTTP_BUFFERS_UP_TO`] bytes (without `Expect`) before handing the
//! request over; any longer body is still on the socket, and reading it, or
//! dropping the request, waits for the client.

/// The largest body tiny_http 0.12 reads before handing a request over; a
/// test in `tests/hostile.rs` checks that this is still so.
pub const TINY_HTTP_BUFFERS_UP_TO: usize = 1024;

/// Where a request's body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// Reading or dropping the request never waits: there is no body,
    /// tiny_http holds all of it, or it is chunked (tiny_http does not read
    /// a chunked body it is not asked for).
    Ready,
    /// `length` bytes are still on the socket; reading them, or dropping the
    /// request (tiny_http then reads and discards them), waits for the
    /// client.
    Waiting {
        /// The body length tiny_http uses: its first `Content-Length`.
        length: u64,
    },
}

/// Why a request is answered without being looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// The status to answer.
    pub status: u16,
    /// The short text of the answer, also logged.
    pub reason: &'static str,
    /// Whether later requests on the same connection must be refused too:
    /// after an ambiguous request, where the next one starts is unknown.
    pub poisons: bool,
}

impl Refusal {
    /// `400` for a request that arrives on a connection refused earlier.
    pub const POISONED: Refusal = Refusal {
        status: 400,
        reason: "an earlier request on this connection was refused\n",
        poisons: true,
    };
}

/// The verdict on a request's head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Framing {
    /// Where the body is.
    pub body: Body,
    /// Set when the request must be refused.
    pub refusal: Option<Refusal>,
}

/// Judges the framing headers (`name`, `value` pairs, values trimmed as
/// tiny_http stores them); `limit` is the largest body accepted.
pub fn judge<'a, I>(headers: I, limit: u64) -> Framing
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    let mut transfer_encoding = false;
    let mut expect = false;
    let mut first_length: Option<&str> = None;
    let mut lengths_agree = true;
    let mut lengths_valid = true;
    for (name, value) in headers {
        if name.eq_ignore_ascii_case("Transfer-Encoding") {
            transfer_encoding = true;
        } else if name.eq_ignore_ascii_case("Expect") {
            expect = true;
        } else if name.eq_ignore_ascii_case("Content-Length") {
            lengths_valid &=
                value.bytes().all(|b| b.is_ascii_digit()) && value.parse::<u64>().is_ok();
            match first_length {
                None => first_length = Some(value),
                Some(first) => lengths_agree &= value.parse::<u64>().ok() == first.parse().ok(),
            }
        }
    }

    // What tiny_http did: it ignores Content-Length next to a
    // Transfer-Encoding, and reads its first Content-Length as a usize
    // (leading "+" allowed), treating one it cannot read as no body.
    let tiny_http_length = first_length
        .filter(|_| !transfer_encoding)
        .and_then(|value| value.parse::<usize>().ok())
        .map_or(0, |length| length as u64);
    let body = if tiny_http_length == 0
        || (tiny_http_length <= TINY_HTTP_BUFFERS_UP_TO as u64 && !expect)
    {
        Body::Ready
    } else {
        Body::Waiting {
            length: tiny_http_length,
        }
    };

    let refusal = if transfer_encoding && first_length.is_some() {
        Some(ambiguous(
            "Transfer-Encoding and Content-Length together are refused\n",
        ))
    } else if transfer_encoding {
        Some(Refusal {
            status: 411,
            reason: "Transfer-Encoding is not supported: send Content-Length\n",
            poisons: true,
        })
    } else if !lengths_valid {
        Some(ambiguous("invalid Content-Length\n"))
    } else if !lengths_agree {
        Some(ambiguous("conflicting Content-Length headers\n"))
    } else if tiny_http_length > limit {
        Some(Refusal {
            status: 413,
            reason: "request body too large\n",
            poisons: false,
        })
    } else {
        None
    };
    Framing { body, refusal }
}

fn ambiguous(reason: &'static str) -> Refusal {
    Refusal {
        status: 400,
        reason,
        poisons: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: u64 = 64 * 1024;

    fn judged(headers: &[(&str, &str)]) -> Framing {
        judge(headers.iter().copied(), LIMIT)
    }

    fn status(headers: &[(&str, &str)]) -> Option<(u16, bool)> {
        judged(headers).refusal.map(|r| (r.status, r.poisons))
    }

    #[test]
    fn no_body_and_small_bodies_are_ready() {
        assert_eq!(
            judged(&[]),
            Framing {
                body: Body::Ready,
                refusal: None
            }
        );
        assert_eq!(judged(&[("Content-Length", "0")]).body, Body::Ready);
        assert_eq!(judged(&[("content-length", "1024")]).body, Body::Ready);
        assert_eq!(judged(&[("Content-Length", "1024")]).refusal, None);
    }

    #[test]
    fn bodies_tiny_http_does_not_buffer_are_waiting() {
        assert_eq!(
            judged(&[("Content-Length", "1025")]).body,
            Body::Waiting { length: 1025 }
        );
        assert_eq!(
            judged(&[("Content-Length", "10"), ("Expect", "100-continue")]).body,
            Body::Waiting { length: 10 }
        );
        assert_eq!(judged(&[("Content-Length", "65536")]).refusal, None);
    }

    #[test]
    fn bodies_over_the_limit_are_refused_unread_but_the_connection_kept() {
        assert_eq!(status(&[("Content-Length", "65537")]), Some((413, false)));
        let absurd = judged(&[("Content-Length", "18446744073709551615")]);
        assert_eq!(absurd.refusal.map(|r| r.status), Some(413));
        assert_eq!(absurd.body, Body::Waiting { length: u64::MAX });
    }

    #[test]
    fn transfer_encoding_is_refused_and_poisons_the_connection() {
        for value in ["chunked", "gzip, chunked", "xchunked", "identity", ""] {
            assert_eq!(
                status(&[("Transfer-Encoding", value)]),
                Some((411, true)),
                "{value}"
            );
        }
        assert_eq!(
            status(&[("Transfer-Encoding", "chunked"), ("Content-Length", "5")]),
            Some((400, true))
        );
        assert_eq!(
            judged(&[
                ("Transfer-Encoding", "chunked"),
                ("Content-Length", "99999")
            ])
            .body,
            Body::Ready,
            "tiny_http ignores the length and never reads an unread chunked body"
        );
    }

    #[test]
    fn content_length_must_be_plain_digits() {
        for value in [
            "-1",
            "+5",
            "5 5",
            "1e3",
            "0x10",
            "",
            "abc",
            "99999999999999999999999",
        ] {
            assert_eq!(
                status(&[("Content-Length", value)]),
                Some((400, true)),
                "{value:?}"
            );
        }
    }

    #[test]
    fn repeated_content_lengths_must_agree() {
        assert_eq!(
            status(&[("Content-Length", "5"), ("Content-Length", "5")]),
            None
        );
        assert_eq!(
            status(&[("Content-Length", "5"), ("Content-Length", "05")]),
            None
        );
        assert_eq!(
            status(&[("Content-Length", "5"), ("Content-Length", "6")]),
            Some((400, true))
        );
    }

    #[test]
    fn the_body_follows_what_tiny_http_does_even_when_refused() {
        // tiny_http uses the first length: waiting for a huge one would hang
        // whoever drops the request.
        let framing = judged(&[("Content-Length", "100000"), ("Content-Length", "5")]);
        assert_eq!(framing.body, Body::Waiting { length: 100_000 });
        assert_eq!(framing.refusal.map(|r| r.status), Some(400));
        // A leading plus is read by tiny_http, and refused here.
        let plus = judged(&[("Content-Length", "+2000")]);
        assert_eq!(plus.body, Body::Waiting { length: 2000 });
        assert_eq!(plus.refusal.map(|r| r.status), Some(400));
        // A length tiny_http cannot read means no body to it.
        assert_eq!(judged(&[("Content-Length", "-1")]).body, Body::Ready);
    }
}
