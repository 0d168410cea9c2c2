//! The command line: which command runs, the server or `check`.
//!
//! `whatsapp-webhook [OPTIONS]` runs the server ([`config`]);
//! `whatsapp-webhook check [OPTIONS] [URL]` plays Twilio against a webhook
//! ([`check`]). This module sits above both, so that neither knows the
//! other.

use std::ffi::OsString;

use crate::check;
use crate::config::{self, Config, ConfigError, Parsed};

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
// Made once, at start-up, and moved at once: boxing it would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// Run the server with this configuration.
    Serve(Config),
    /// Play Twilio against a webhook: `whatsapp-webhook check`.
    Check(check::Options),
    /// Print this help: the server's ([`config::HELP`]) or `check`'s.
    Help(&'static str),
    /// Print the name and version.
    Version,
}

/// Reads the command line (without the program name) and the environment,
/// looked up through `env`.
///
/// # Errors
///
/// Fails on an unknown option, a missing value, a value that is not UTF-8,
/// or a value that is out of range; the error names the flag or variable.
pub fn parse<A, E>(args: A, env: E) -> Result<Command, ConfigError>
where
    A: IntoIterator,
    A::Item: Into<OsString>,
    E: Fn(&str) -> Option<OsString>,
{
    let mut args = args
        .into_iter()
        .map(|arg| -> OsString { arg.into() })
        .peekable();
    if args.next_if(|first| first == "check").is_some() {
        return Ok(match check::options::parse(args, env)? {
            Some(options) => Command::Check(options),
            None => Command::Help(check::options::HELP),
        });
    }
    Ok(match config::parse(args, env)? {
        Parsed::Serve(config) => Command::Serve(config),
        Parsed::Help => Command::Help(config::HELP),
        Parsed::Version => Command::Version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_with(args: &[&str]) -> Result<Command, ConfigError> {
        parse(args.iter().copied(), |_| None)
    }

    #[test]
    fn check_is_a_command_and_anything_else_runs_the_server() {
        assert!(matches!(parse_with(&[]), Ok(Command::Serve(_))));
        assert!(matches!(parse_with(&["check"]), Ok(Command::Check(_))));
        assert_eq!(
            parse_with(&["check", "--help"]).unwrap(),
            Command::Help(check::options::HELP)
        );
        assert_eq!(
            parse_with(&["--help"]).unwrap(),
            Command::Help(config::HELP)
        );
        assert_eq!(parse_with(&["-V"]).unwrap(), Command::Version);
        assert_eq!(
            parse_with(&["serve"]).unwrap_err().to_string(),
            r#"unexpected argument "serve" (see --help)"#
        );
    }
}
