//! `whatsapp-webhook` answers Twilio's inbound-message webhooks (WhatsApp and
//! SMS) with TwiML, so that every message to your Twilio number gets a reply.
//!
//! # Layout
//!
//! The crate has two halves and the app between them, and `check`; arrows
//! go down only (entry, then edge, then app, then Twilio):
//!
//! - The entry: the [`cli`] picks the command; [`signals`] stop the server.
//! - [`http`]: the tiny_http edge: the [`server`](http::server) loop and
//!   everything that keeps tiny_http answering when clients are slow,
//!   hostile or too many. The only part that knows tiny_http, sockets and
//!   the bytes of an answer.
//! - The app: [`config`], [`routes`], [`answer`]ing one request, the
//!   [`events`] it logs, [`repeats`]; the [`handler`] interface that
//!   answers messages and its implementations (a fixed reply and keyword
//!   [`replies`], a reply [`program`], any Rust function), run by
//!   [`replying`]; replies that come after Twilio stopped waiting go out
//!   [`later`] through the Messages API; [`ngrok`]'s local agent says
//!   which tunnels lead to the server. It says *what* to answer
//!   ([`answer::Answer`]) and never imports from [`http`].
//! - [`twilio`]: what Twilio sends and expects: request [`params`](twilio::params),
//!   [`signature`](twilio::signature)s, [`twiml`](twilio::twiml) and the
//!   [`verdict`](twilio::verdict) Twilio reaches on an answer, the
//!   [`messages`](twilio::messages) request that sends a reply later. Pure
//!   functions, no sockets, shared by the server and `check`.
//! - [`check`]: `whatsapp-webhook check` plays Twilio against a webhook,
//!   with ureq, and says what Twilio would make of the answer.
//! - [`logging`] is used by every part, and uses none.
//!
//! # How a request flows
//!
//! 1. [`cli::parse`] turns flags and environment variables into a
//!    [`Config`] ([`config::parse`]); the reply is checked against Twilio's
//!    rules there.
//! 2. [`Server::bind`] binds the socket and renders every reply once
//!    ([`twiml`](twilio::twiml), [`replies`]).
//! 3. [`Server::run`] takes each request tiny_http has parsed and judges its
//!    [`framing`](http::framing); the edge reads its body (on a reader of
//!    its own if it may keep anyone waiting) and hands the app the request
//!    ([`answer::Request`]). [`answer`] then [routes] it, reads its
//!    [`params`](twilio::params), checks `X-Twilio-Signature` when a secret
//!    is set ([`signature`](twilio::signature)), picks the reply a keyword
//!    rule or the default gives, logs the message, and says what to answer;
//!    the edge writes the answer's bytes itself
//!    ([`response`](http::response)).
//!
//! The server is synchronous on purpose: one loop answers requests from
//! memory in microseconds, and tiny_http reads each connection on a thread of
//! its own. What could make the loop wait on a client goes elsewhere: bodies
//! still arriving to [`readers`](http::readers) of their own, answers to
//! clients that do not read them to [`slow`](http::slow) lanes; timeouts
//! come from the [`listener`](http::listener); a
//! [`watchdog`](http::watchdog) checks that connections are still accepted,
//! [`rescue`](http::rescue)s those tiny_http's thread pool left waiting, and
//! gives up when no connection can be answered; tiny_http's
//! [`panics`](http::panics) are told as log lines; [`signals`] stop it all
//! gracefully. The [`server`](http::server) module tells the whole story.
//!
//! # Examples
//!
//! The server as configured (a fixed reply, keyword rules, or a reply
//! program):
//!
//! ```no_run
//! use whatsapp_webhook::{Config, Server};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = Config { port: 0, ..Config::default() };
//! let server = Server::bind(&config)?;
//! println!("answering on http://{}/whatsapp", server.local_addr());
//! server.run()?;
//! # Ok(())
//! # }
//! ```
//!
//! Your own replies, as a function of the [`Message`]: it runs on reply
//! workers, never on the request loop, and may take its time (up to
//! [`Config::reply_timeout`]; a late or failing reply gets
//! [`Config::reply_fallback`]). Keyword rules still answer their keywords
//! first. `examples/echo.rs` is a whole program.
//!
//! ```no_run
//! use whatsapp_webhook::{Config, Message, Reply, Server};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = Config { port: 0, ..Config::default() };
//! Server::bind(&config)?.run_with(|message: &Message| {
//!     match message.body.as_deref() {
//!         Some(text) if !text.trim().is_empty() => Reply::text(format!("You said: {text}")),
//!         _ => Reply::none(),
//!     }
//! })?;
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod answer;
pub mod check;
pub mod cli;
pub mod config;
pub mod events;
pub mod handler;
pub mod http;
pub mod later;
pub mod logging;
pub mod ngrok;
pub mod program;
pub mod repeats;
pub mod replies;
pub mod replying;
pub mod routes;
pub mod signals;
pub mod twilio;

pub use cli::Command;
pub use config::{Config, ConfigError};
pub use handler::{Handler, Message, Reply};
pub use http::server::{Handle, Server, ServerError};
