//! Request framing: whether a request's head says unambiguously where its
//! body ends, where tiny_http has left that body, and whether tiny_http will
//! read another request on the connection.
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
//! Every refusal says `Connection: close`: after it, where the next request
//! starts is unknown, or the client is sending what will not be read.
//!
//! [`Body`] records what tiny_http 0.12 did with the body, because that
//! decides who may touch the request: tiny_http reads a body of at most
//! [`TINY_HTTP_BUFFERS_UP_TO`] bytes (without `Expect`) before handing the
//! request over; any longer body is still on the socket, and reading it, or
//! dropping the request, waits for the client. A request with
//! `Connection: upgrade` gets the raw socket as its body, whatever its
//! length: reading it waits for the client, dropping it does not.

/// The largest body tiny_http 0.12 reads before handing a request over; a
/// test in `tests/hostile.rs` checks that this is still so.
pub const TINY_HTTP_BUFFERS_UP_TO: usize = 1024;

/// Where a request's body is, and how many bytes of it to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// Reading the `length` bytes of the body, or dropping the request,
    /// never waits: there is no body (`length` 0), tiny_http holds all of
    /// it, or it is chunked (tiny_http does not read a chunked body it is
    /// not asked for, and this server refuses those).
    Ready {
        /// The body's length; 0 when there is none to read.
        length: u64,
    },
    /// `length` bytes are still on the socket; reading them, or dropping the
    /// request (tiny_http then reads and discards them), waits for the
    /// client.
    Waiting {
        /// The body length tiny_http uses: its first `Content-Length`.
        length: u64,
    },
    /// The request asked to upgrade its connection, so tiny_http handed the
    /// raw socket over as its body: reading `length` bytes from it waits for
    /// the client, but dropping the request does not (tiny_http reads
    /// nothing more from that connection).
    Raw {
        /// The announced body length, to read exactly; 0 when none.
        length: u64,
    },
}

impl Body {
    /// Whether getting at the body, or dropping the request, may wait for
    /// the client.
    pub fn may_wait(self) -> bool {
        match self {
            Body::Ready { .. } => false,
            Body::Waiting { .. } => true,
            Body::Raw { length } => length > 0,
        }
    }

    /// How many bytes of body to read.
    pub fn length(self) -> u64 {
        match self {
            Body::Ready { length } | Body::Waiting { length } | Body::Raw { length } => length,
        }
    }
}

/// Why the edge answers a request itself, without handing it on. Every
/// refusal says `Connection: close`: after it, where the next request starts is
/// unknown, or the client is sending what will not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `Transfer-Encoding` next to a `Content-Length`.
    ChunkedWithLength,
    /// `Transfer-Encoding` without a `Content-Length`.
    Chunked,
    /// A `Content-Length` that is not plain digits.
    InvalidLength,
    /// Two `Content-Length` headers that differ.
    ConflictingLengths,
    /// A `Content-Length` over the limit.
    TooLarge,
    /// The body did not arrive within the timeout.
    BodyTimedOut,
    /// The body was still arriving when too many others were too, and it
    /// had waited longest.
    BodyDropped,
    /// The client closed the connection before the whole body arrived.
    BodyShort,
    /// Reading the body failed.
    BodyUnreadable,
}

impl Refusal {
    /// The status to answer.
    pub fn status(self) -> u16 {
        match self {
            Refusal::Chunked => 411,
            Refusal::TooLarge => 413,
            Refusal::BodyTimedOut => 408,
            Refusal::BodyDropped => 503,
            Refusal::ChunkedWithLength
            | Refusal::InvalidLength
            | Refusal::ConflictingLengths
            | Refusal::BodyShort
            | Refusal::BodyUnreadable => 400,
        }
    }

    /// The text of the answer, also logged.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::ChunkedWithLength => {
                "Transfer-Encoding and Content-Length together are refused\n"
            }
            Refusal::Chunked => "Transfer-Encoding is not supported: send Content-Length\n",
            Refusal::InvalidLength => "invalid Content-Length\n",
            Refusal::ConflictingLengths => "conflicting Content-Length headers\n",
            Refusal::TooLarge => "request body too large\n",
            Refusal::BodyTimedOut => "request timeout\n",
            Refusal::BodyDropped => "too many request bodies are arriving at once\n",
            Refusal::BodyShort => "request body shorter than its Content-Length\n",
            Refusal::BodyUnreadable => "cannot read the request body\n",
        }
    }
}

/// The verdict on a request's head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Framing {
    /// Where the body is.
    pub body: Body,
    /// Set when the request must be refused.
    pub refusal: Option<Refusal>,
    /// Whether tiny_http reads no further request on this connection
    /// (`Connection: close` or `upgrade`, or HTTP/1.0 without keep-alive),
    /// so the answer must say `Connection: close`.
    pub last: bool,
}

/// Judges the framing headers (`name`, `value` pairs, values trimmed as
/// tiny_http stores them) of an HTTP/1.0 request (`http_1_0`) or a later
/// one; `limit` is the largest body accepted.
pub fn judge<'a, I>(headers: I, http_1_0: bool, limit: u64) -> Framing
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    let mut transfer_encoding = false;
    let mut expect = false;
    let mut connection: Option<&str> = None;
    let mut first_length: Option<&str> = None;
    let mut lengths_agree = true;
    let mut lengths_valid = true;
    for (name, value) in headers {
        if name.eq_ignore_ascii_case("Transfer-Encoding") {
            transfer_encoding = true;
        } else if name.eq_ignore_ascii_case("Expect") {
            expect = true;
        } else if name.eq_ignore_ascii_case("Connection") {
            connection = connection.or(Some(value));
        } else if name.eq_ignore_ascii_case("Content-Length") {
            lengths_valid &=
                value.bytes().all(|b| b.is_ascii_digit()) && value.parse::<u64>().is_ok();
            match first_length {
                None => first_length = Some(value),
                Some(first) => lengths_agree &= value.parse::<u64>().ok() == first.parse().ok(),
            }
        }
    }

    // What tiny_http did: it reads its first Connection header, ignores
    // Content-Length next to a Transfer-Encoding, and reads its first
    // Content-Length as a usize (leading "+" allowed), treating one it
    // cannot read as no body.
    let has = |token: &str| {
        connection.is_some_and(|value| {
            value
                .as_bytes()
                .windows(token.len())
                .any(|window| window.eq_ignore_ascii_case(token.as_bytes()))
        })
    };
    let upgrade = has("upgrade");
    let last =
        has("close") || upgrade || (http_1_0 && (connection.is_none() || !has("keep-alive")));
    let tiny_http_length = first_length
        .filter(|_| !transfer_encoding)
        .and_then(|value| value.parse::<usize>().ok())
        .map_or(0, |length| length as u64);
    let body = if upgrade {
        Body::Raw {
            length: tiny_http_length,
        }
    } else if tiny_http_length == 0
        || (tiny_http_length <= TINY_HTTP_BUFFERS_UP_TO as u64 && !expect)
    {
        Body::Ready {
            length: tiny_http_length,
        }
    } else {
        Body::Waiting {
            length: tiny_http_length,
        }
    };

    let refusal = if transfer_encoding && first_length.is_some() {
        Some(Refusal::ChunkedWithLength)
    } else if transfer_encoding {
        Some(Refusal::Chunked)
    } else if !lengths_valid {
        Some(Refusal::InvalidLength)
    } else if !lengths_agree {
        Some(Refusal::ConflictingLengths)
    } else if tiny_http_length > limit {
        Some(Refusal::TooLarge)
    } else {
        None
    };
    Framing {
        body,
        refusal,
        last,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: u64 = 64 * 1024;

    fn judged(headers: &[(&str, &str)]) -> Framing {
        judge(headers.iter().copied(), false, LIMIT)
    }

    fn status(headers: &[(&str, &str)]) -> Option<u16> {
        judged(headers).refusal.map(Refusal::status)
    }

    #[test]
    fn no_body_and_small_bodies_are_ready() {
        assert_eq!(
            judged(&[]),
            Framing {
                body: Body::Ready { length: 0 },
                refusal: None,
                last: false,
            }
        );
        assert_eq!(
            judged(&[("Content-Length", "0")]).body,
            Body::Ready { length: 0 }
        );
        assert_eq!(
            judged(&[("content-length", "1024")]).body,
            Body::Ready { length: 1024 }
        );
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
        assert!(Body::Waiting { length: 1 }.may_wait());
        assert!(!Body::Ready { length: 1024 }.may_wait());
    }

    #[test]
    fn an_upgrade_hands_the_raw_socket_over_whatever_the_length() {
        for connection in ["Upgrade", "keep-alive, UPGRADE", "upgrade"] {
            let framing = judged(&[("Connection", connection), ("Content-Length", "5")]);
            assert_eq!(framing.body, Body::Raw { length: 5 }, "{connection}");
            assert!(framing.body.may_wait());
            assert!(
                framing.last,
                "tiny_http reads nothing more after an upgrade"
            );
        }
        let bare = judged(&[("Connection", "Upgrade"), ("Upgrade", "websocket")]);
        assert_eq!(bare.body, Body::Raw { length: 0 });
        assert!(
            !bare.body.may_wait(),
            "nothing to read, nothing to wait for"
        );
        // Only the first Connection header counts, as in tiny_http.
        let second = judged(&[("Connection", "keep-alive"), ("Connection", "upgrade")]);
        assert_eq!(second.body, Body::Ready { length: 0 });
    }

    #[test]
    fn the_last_request_of_a_connection_is_known_like_tiny_http_knows_it() {
        let last = |headers: &[(&str, &str)], http_1_0: bool| {
            judge(headers.iter().copied(), http_1_0, LIMIT).last
        };
        assert!(!last(&[], false));
        assert!(last(&[("Connection", "close")], false));
        assert!(last(&[("Connection", "Close")], false));
        assert!(!last(&[("Connection", "keep-alive")], false));
        assert!(last(&[], true));
        assert!(last(&[("Connection", "TE")], true));
        assert!(!last(&[("Connection", "Keep-Alive")], true));
    }

    #[test]
    fn bodies_over_the_limit_are_refused_unread() {
        assert_eq!(status(&[("Content-Length", "65537")]), Some(413));
        let absurd = judged(&[("Content-Length", "18446744073709551615")]);
        assert_eq!(absurd.refusal.map(Refusal::status), Some(413));
        assert_eq!(absurd.body, Body::Waiting { length: u64::MAX });
    }

    #[test]
    fn transfer_encoding_is_refused() {
        for value in ["chunked", "gzip, chunked", "xchunked", "identity", ""] {
            assert_eq!(
                status(&[("Transfer-Encoding", value)]),
                Some(411),
                "{value}"
            );
        }
        assert_eq!(
            status(&[("Transfer-Encoding", "chunked"), ("Content-Length", "5")]),
            Some(400)
        );
        assert_eq!(
            judged(&[
                ("Transfer-Encoding", "chunked"),
                ("Content-Length", "99999")
            ])
            .body,
            Body::Ready { length: 0 },
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
            assert_eq!(status(&[("Content-Length", value)]), Some(400), "{value:?}");
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
            Some(400)
        );
    }

    #[test]
    fn the_body_follows_what_tiny_http_does_even_when_refused() {
        // tiny_http uses the first length: waiting for a huge one would hang
        // whoever drops the request.
        let framing = judged(&[("Content-Length", "100000"), ("Content-Length", "5")]);
        assert_eq!(framing.body, Body::Waiting { length: 100_000 });
        assert_eq!(framing.refusal.map(Refusal::status), Some(400));
        // A leading plus is read by tiny_http, and refused here.
        let plus = judged(&[("Content-Length", "+2000")]);
        assert_eq!(plus.body, Body::Waiting { length: 2000 });
        assert_eq!(plus.refusal.map(Refusal::status), Some(400));
        // A length tiny_http cannot read means no body to it.
        assert_eq!(
            judged(&[("Content-Length", "-1")]).body,
            Body::Ready { length: 0 }
        );
    }
}
