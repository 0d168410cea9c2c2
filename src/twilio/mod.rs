//! The Twilio side: what Twilio sends and what it expects back.
//!
//! Everything here is a pure function of bytes Twilio sends or will read:
//! the request [`params`] (and the [`inbound`] request `check` builds from
//! them), the [`signature`] over them, the [`twiml`] documents that answer
//! them, the [`verdict`] Twilio reaches on an answer, the [`messages`]
//! request that sends a reply later, and the [`errors`] Twilio reports. Nothing here knows about sockets or tiny_http; the server
//! and `check` both build on it.

pub mod errors;
pub mod inbound;
pub mod messages;
pub mod params;
pub mod signature;
pub mod twiml;
pub mod verdict;
