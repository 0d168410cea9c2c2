//! The idiomatic tiny_http hello world: a `recv()` loop answering every
//! request with the same precomputed bytes through `respond`. It is the
//! baseline `benches/load.sh` measures this server against, in the same run:
//! whatever this server does beyond it (framing, parsing, logging, writing
//! its own bytes) must cost less than what writing its own bytes saves.
//!
//! `cargo bench` runs it as a no-op; `benches/load.sh` runs it with
//! `--serve`, and reads the port from its first line of output.

use tiny_http::{Header, Response, Server, StatusCode};

const TWIML: &[u8] = br#"<?xml version="1.0" encoding="UTF-8"?><Response><Message>What's app, doc?</Message></Response>"#;

fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    if !std::env::args().any(|arg| arg == "--serve") {
        return Ok(());
    }
    let server = Server::http("127.0.0.1:0")?;
    let port = server.server_addr().to_ip().map_or(0, |addr| addr.port());
    println!("listening on http://127.0.0.1:{port}/whatsapp");
    let content_type = Header::from_bytes("Content-Type", "text/xml; charset=utf-8")
        .map_err(|()| "a static header")?;
    loop {
        let request = server.recv()?;
        let response = Response::new(
            StatusCode(200),
            vec![content_type.clone()],
            TWIML,
            Some(TWIML.len()),
            None,
        );
        // A client that hung up is no reason to stop.
        let _ = request.respond(response);
    }
}
