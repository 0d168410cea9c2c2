//! A request as the app sees it: method, target, headers and the whole
//! body, already read by the edge.
//!
//! The app never reads from a client: by the time it sees a request, its
//! body is in memory, so nothing the app does can wait on the network.

use std::net::SocketAddr;

use tiny_http::{Method, Request};

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

    /// The method.
    pub fn method(&self) -> &'a Method {
        self.request.method()
    }

    /// The request target as received: path and query string.
    pub fn target(&self) -> &'a str {
        self.request.url()
    }

    /// The value of the first header called `name` (compared ignoring
    /// case).
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.request
            .headers()
            .iter()
            .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }

    /// The body, whole.
    pub fn body(&self) -> &'a [u8] {
        self.body
    }

    /// The client's address.
    pub fn peer(&self) -> Option<SocketAddr> {
        self.request.remote_addr().copied()
    }
}
