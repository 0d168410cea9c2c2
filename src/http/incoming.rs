//! A request as the app sees it ([`answer::Request`]): method, target,
//! headers and the whole body, already read by the edge.
//!
//! The app never reads from a client: by the time it sees a request, its
//! body is in memory, so nothing the app does can wait on the network.

use tiny_http::Request;

use crate::answer;

/// A request whose framing was accepted and whose body has been read.
#[derive(Debug, Clone, Copy)]
pub struct Incoming<'a> {
    request: &'a Request,
    body: &'a [u8],
}

impl<'a> Incoming<'a> {
    /// `request`, whose body the edge has read into `body`.
    pub fn new(request: &'a Request, body: &'a [u8]) -> Incoming<'a> {
        Incoming { request, body }
    }
}

impl answer::Request for Incoming<'_> {
    fn method(&self) -> &str {
        self.request.method().as_str()
    }

    fn target(&self) -> &str {
        self.request.url()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.request
            .headers()
            .iter()
            .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }

    fn body(&self) -> &[u8] {
        self.body
    }
}
