//! The tiny_http edge: everything that keeps tiny_http answering when
//! clients are slow, hostile or too many, and that contains tiny_http's
//! faults so that no client sees them.
//!
//! The [`server`] runs the request loop and tells the whole story. The other
//! modules each close one gap: request [`framing`], [`body`] reading on
//! [`readers`] of their own, the [`incoming`] request the app sees and the
//! [`response`] bytes the edge writes for it, [`slow`] clients that do not
//! read them, the [`listener`]'s timeouts, the [`watchdog`] and its
//! [`rescue`] of connections left waiting, the kernel's list of
//! [`sockets`], and [`panics`] told as log lines.

pub mod body;
pub mod framing;
pub mod incoming;
pub mod listener;
pub mod panics;
pub mod readers;
pub mod rescue;
pub mod response;
pub mod server;
pub mod slow;
pub mod sockets;
pub mod watchdog;
