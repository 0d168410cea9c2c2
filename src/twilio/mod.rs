//! The Twilio side: what Twilio sends and what it expects back.
//!
//! Everything here is a pure function of bytes Twilio sends or will read:
//! the request [`params`], the [`signature`] over them, the [`twiml`]
//! documents that answer them, and the [`errors`] Twilio reports. Nothing
//! here knows about sockets or tiny_http.

pub mod errors;
pub mod params;
pub mod signature;
pub mod twiml;
