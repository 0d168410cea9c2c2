//! The tiny_http edge: everything that keeps tiny_http answering when
//! clients are slow, hostile or too many.
//!
//! The [`server`] runs the request loop and tells the whole story; the other
//! modules each contain one of tiny_http's gaps: request [`framing`] and
//! [`body`] reading, [`poison`]ed connections, the [`listener`]'s timeouts,
//! the [`watchdog`] and its [`rescue`] of connections left waiting.

pub mod body;
pub mod framing;
pub mod listener;
pub mod poison;
pub mod rescue;
pub mod server;
pub mod watchdog;
