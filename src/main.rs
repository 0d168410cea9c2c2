//! The `whatsapp-webhook` binary: reads the configuration, starts logging and
//! runs the server until `SIGTERM` or `SIGINT`, or runs `check`. Exit status:
//! 0 after `--help`, `--version` or a graceful stop, or when `check` finds
//! that Twilio would accept the answer; 1 when the server cannot start or has
//! to stop (one last line says why: plain text, or a JSON `error` line with
//! `LOG_FORMAT=json`), or when Twilio would not accept the answer; 2 for a bad
//! flag or value.

use std::process::ExitCode;

use whatsapp_webhook::{Command, Server, check, cli, logging, signals};

fn main() -> ExitCode {
    let command = match cli::parse(std::env::args_os().skip(1), |name| std::env::var_os(name)) {
        Ok(command) => command,
        Err(error) => {
            eprintln!("whatsapp-webhook: {error}");
            return ExitCode::from(2);
        }
    };
    let config = match command {
        Command::Help(text) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Command::Version => {
            println!("whatsapp-webhook {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Command::Serve(config) => config,
        Command::Check(options) => {
            return match check::run(&options, &mut std::io::stdout().lock()) {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::FAILURE,
                Err(error) => {
                    eprintln!("whatsapp-webhook check: cannot write the report: {error}");
                    ExitCode::FAILURE
                }
            };
        }
    };
    logging::init(config.log_format);
    whatsapp_webhook::http::panics::install();
    let served = Server::bind(&config).and_then(|server| {
        signals::stop_on_signals(server.handle()).map_err(whatsapp_webhook::ServerError::Setup)?;
        server.run()
    });
    let status = match served {
        Ok(()) => ExitCode::SUCCESS,
        // A log shipper reads every line as JSON; a person reads one plain
        // last line.
        Err(error) if config.log_format == logging::Format::Json => {
            log::error!("{error}");
            ExitCode::FAILURE
        }
        Err(error) => {
            logging::flush();
            eprintln!("whatsapp-webhook: {error}");
            ExitCode::FAILURE
        }
    };
    logging::flush();
    status
}
