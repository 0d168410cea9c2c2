//! A bot in Rust: replies with what was sent. It takes the same flags and
//! variables as the server (`--port`, `TWILIO_AUTH_TOKEN`, `--on`...):
//!
//! ```sh
//! cargo run --release --example echo
//! cargo run --release --example echo -- --port 9000 --on 'stop='
//! ```
//!
//! The function runs on reply workers, never on the request loop: it may
//! take its time (up to `--reply-timeout`), and keyword rules still answer
//! their keywords first.

use std::process::ExitCode;

use whatsapp_webhook::{Command, Message, Reply, Server, cli, logging, signals};

/// The reply to one message: its text back, and what its media were.
fn echo(message: &Message) -> Reply {
    let text = message.body.as_deref().unwrap_or_default().trim();
    let reply = if text.is_empty() {
        Reply::none()
    } else {
        Reply::text(format!("You said: {text}"))
    };
    let media: Vec<&str> = message
        .media
        .iter()
        .filter_map(|media| media.content_type.as_deref())
        .collect();
    if media.is_empty() {
        reply
    } else {
        reply.and(Reply::text(format!("You sent: {}", media.join(", "))))
    }
}

fn main() -> ExitCode {
    let config = match cli::parse(std::env::args_os().skip(1), |name| std::env::var_os(name)) {
        Ok(Command::Serve(config)) => config,
        Ok(Command::Help(text)) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Ok(_) => {
            eprintln!("echo: takes the server's flags only");
            return ExitCode::from(2);
        }
        Err(error) => {
            eprintln!("echo: {error}");
            return ExitCode::from(2);
        }
    };
    logging::init(config.log_format);
    let served = Server::bind(&config).and_then(|server| {
        signals::stop_on_signals(server.handle()).map_err(whatsapp_webhook::ServerError::Setup)?;
        server.run_with(echo)
    });
    logging::flush();
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("echo: {error}");
            ExitCode::FAILURE
        }
    }
}
