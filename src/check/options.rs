//! The command line of `check`: its flags and the environment variables it
//! reads (`PUBLIC_URL`, `HOST`, `PORT`, `TWILIO_AUTH_TOKEN`), checked into
//! [`Options`].

use std::ffi::OsString;
use std::net::IpAddr;
use std::time::Duration;

use crate::config::{self, ConfigError, MAX_TIMEOUT_SECS, Origin};
use crate::ngrok;
use crate::routes::WEBHOOK_PATH;
use crate::twilio::inbound::Inbound;
use crate::twilio::signature::{self, AUTH_TOKEN_VAR, Secret};
use crate::twilio::twiml::{self, MAX_MEDIA, TwimlError};

/// How long `check` waits for a whole answer when no `--timeout` is given:
/// as long as Twilio waits.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);

/// The text of `check --help`.
pub const HELP: &str = "\
whatsapp-webhook check: sends the request Twilio sends for an inbound WhatsApp
message, and says what Twilio would make of the answer

Usage: whatsapp-webhook check [OPTIONS] [URL]

Arguments:
  [URL]  The webhook's URL, exactly as Twilio's console holds it
         [default: $PUBLIC_URL/whatsapp when PUBLIC_URL is set; else the ngrok
         tunnel to PORT, when ngrok's agent lists one; else the local server
         at HOST and PORT, such as http://127.0.0.1:8767/whatsapp]

Options:
      --body <TEXT>     The message's text [default: Hello]
      --from <ADDRESS>  The sender [default: whatsapp:+15551234567]
      --to <ADDRESS>    The Twilio number [default: whatsapp:+14155238886]
      --param <NAME=VALUE>
                        Adds a parameter, or replaces one of Twilio's; repeat
                        for more (such as Latitude=52.37)
      --media <URL>     Attaches media: sets NumMedia, MediaUrlN and
                        MediaContentTypeN (guessed from the extension); repeat
                        for more, at most 10
      --get             Sends the parameters in the query string, as Twilio
                        does for a webhook set to HTTP GET
      --no-signature    Sends no X-Twilio-Signature
      --timeout <SECONDS>
                        How long to wait for the whole answer (1 to 3600)
                        [default: 15, as Twilio]
      --curl            Prints an equivalent curl command instead of sending
      --ngrok-api <URL> Where ngrok's agent lists its tunnels; off never looks
                        [env: NGROK_API_URL] [default: http://127.0.0.1:4040]
  -h, --help            Print this help

The request is signed with TWILIO_AUTH_TOKEN (the first value during a
rotation) over the exact URL, as Twilio signs it; without it, the request goes
unsigned.

Exit status: 0 when Twilio would accept the answer, 1 when it would not, 2 for
bad usage.
";

/// What `check` sends, where, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The URL, exactly as Twilio would call it (before a `GET`'s
    /// parameters are added).
    pub url: String,
    /// Where the URL came from.
    pub target: Target,
    /// The message.
    pub inbound: Inbound,
    /// Whether to send the parameters in the query string.
    pub get: bool,
    /// Whether, and with what, the request is signed.
    pub signing: Signing,
    /// How long to wait for the whole answer. Defaults to
    /// [`DEFAULT_TIMEOUT`].
    pub timeout: Duration,
    /// Whether to print a curl command instead of sending.
    pub curl: bool,
    /// Where ngrok's agent lists its tunnels, asked for a tunnel to the
    /// local server when no URL and no `PUBLIC_URL` is given; `None` never
    /// asks. Defaults to [`ngrok::DEFAULT_AGENT_API`].
    pub ngrok_api: Option<String>,
}

/// Where the URL `check` calls came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The command line.
    Given,
    /// `PUBLIC_URL`, with the webhook's path.
    PublicUrl,
    /// `HOST` and `PORT` (or their defaults): the local server.
    Local,
    /// An ngrok tunnel to the local server, listed by the agent at this
    /// address.
    Tunnel(String),
}

/// Whether the request is signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signing {
    /// Signed with this Auth Token.
    Token(Secret),
    /// Not signed: `TWILIO_AUTH_TOKEN` is not set.
    NoToken,
    /// Not signed: `--no-signature`.
    Off,
}

/// Reads `check`'s arguments (after `check`) and the environment, looked up
/// through `env`. `Ok(None)` asks for [`HELP`].
///
/// # Errors
///
/// Fails on an unknown option, a missing value, a stray argument, a value
/// that is not UTF-8 or out of range, or an environment that gives no URL;
/// the error names the flag or variable.
pub fn parse<A, E>(args: A, env: E) -> Result<Option<Options>, ConfigError>
where
    A: IntoIterator,
    A::Item: Into<OsString>,
    E: Fn(&str) -> Option<OsString>,
{
    use lexopt::prelude::*;

    let mut url = None;
    let mut inbound = Inbound::default();
    let mut media = Vec::new();
    let mut get = false;
    let mut no_signature = false;
    let mut timeout = DEFAULT_TIMEOUT;
    let mut curl = false;
    let mut ngrok_api = None;
    let mut parser = lexopt::Parser::from_args(args);
    while let Some(arg) = parser.next()? {
        match arg {
            Short('h') | Long("help") => return Ok(None),
            Long("body") => inbound.body = text(parser.value()?, "--body")?,
            Long("from") => inbound.from = text(parser.value()?, "--from")?,
            Long("to") => inbound.to = text(parser.value()?, "--to")?,
            Long("param") => {
                let param = text(parser.value()?, "--param")?;
                match param.split_once('=') {
                    Some((name, value)) if !name.is_empty() => {
                        inbound.extra.push((name.to_owned(), value.to_owned()));
                    }
                    _ => {
                        return Err(invalid(
                            "--param",
                            param,
                            "NAME=VALUE, such as Latitude=52.37",
                        ));
                    }
                }
            }
            Long("media") => media.push(text(parser.value()?, "--media")?),
            Long("get") => get = true,
            Long("no-signature") => no_signature = true,
            Long("timeout") => {
                let given = text(parser.value()?, "--timeout")?;
                timeout = match given.parse::<u64>() {
                    Ok(secs @ 1..=MAX_TIMEOUT_SECS) => Duration::from_secs(secs),
                    _ => {
                        return Err(invalid(
                            "--timeout",
                            given,
                            "a whole number of seconds from 1 to 3600",
                        ));
                    }
                };
            }
            Long("curl") => curl = true,
            Long("ngrok-api") => ngrok_api = Some(parser.value()?),
            Value(value) if url.is_none() => url = Some(text(value, "URL")?),
            _ => return Err(arg.unexpected().into()),
        }
    }
    let origin = Origin::Flag("--media");
    if media.len() > MAX_MEDIA {
        let source = TwimlError::TooManyMedia { count: media.len() };
        return Err(ConfigError::Media { origin, source });
    }
    if let Some(bad) = media.iter().find(|url| !twiml::is_media_url(url)) {
        let source = TwimlError::MediaUrl { url: bad.clone() };
        return Err(ConfigError::Media { origin, source });
    }
    inbound.media = media;

    let (url, target) = match url {
        Some(url) => match parse_url(&url) {
            Some(url) => (url, Target::Given),
            None => {
                return Err(invalid(
                    "URL",
                    url,
                    "an http or https URL, such as https://abc123.ngrok-free.app/whatsapp",
                ));
            }
        },
        None => default_url(&env)?,
    };
    let signing = match config::secrets(AUTH_TOKEN_VAR, &env)?.into_iter().next() {
        _ if no_signature => Signing::Off,
        Some(token) => Signing::Token(token),
        None => Signing::NoToken,
    };
    let ngrok_api = config::ngrok_api(ngrok_api, &env)?
        .unwrap_or_else(|| Some(ngrok::DEFAULT_AGENT_API.to_owned()));
    Ok(Some(Options {
        url,
        target,
        inbound,
        get,
        signing,
        timeout,
        curl,
        ngrok_api,
    }))
}

/// `$PUBLIC_URL/whatsapp`, else the local server's webhook URL.
fn default_url<E>(env: &E) -> Result<(String, Target), ConfigError>
where
    E: Fn(&str) -> Option<OsString>,
{
    if let Some(public_url) = config::public_url(None, env)? {
        return Ok((format!("{public_url}{WEBHOOK_PATH}"), Target::PublicUrl));
    }
    let defaults = config::Config::default();
    let host = config::host(None, env)?.unwrap_or(defaults.host);
    let port = config::port(None, env)?.unwrap_or(defaults.port);
    if port == 0 {
        return Err(ConfigError::Invalid {
            origin: Origin::Env("PORT"),
            value: "0".to_owned(),
            expected: "the port the server listens on, or give check the server's URL",
        });
    }
    // A server listening on every address answers on loopback.
    let host = match host {
        IpAddr::V4(ip) if ip.is_unspecified() => "127.0.0.1".to_owned(),
        IpAddr::V6(ip) if ip.is_unspecified() => "[::1]".to_owned(),
        IpAddr::V4(ip) => ip.to_string(),
        IpAddr::V6(ip) => format!("[{ip}]"),
    };
    Ok((format!("http://{host}:{port}{WEBHOOK_PATH}"), Target::Local))
}

/// An absolute http or https URL with a host Twilio could call, without a
/// fragment; the scheme is written in lowercase.
fn parse_url(text: &str) -> Option<String> {
    let (scheme, rest) = text.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let host = rest.split(['/', '?']).next().unwrap_or_default();
    let acceptable = matches!(scheme.as_str(), "http" | "https")
        && !host.is_empty()
        && !host.contains('@')
        && !rest.contains('#')
        && !rest.contains(|c: char| c.is_whitespace() || c.is_control());
    let url = format!("{scheme}://{rest}");
    // A URL an HTTP client can send to (`http://[::1/x` is none), whose port
    // the signature can be computed for.
    let sendable = ureq::http::Uri::try_from(url.as_str())
        .is_ok_and(|uri| uri.host().is_some_and(|host| !host.is_empty()));
    (acceptable && sendable && signature::url_forms(&url).is_some()).then_some(url)
}

fn text(value: OsString, flag: &'static str) -> Result<String, ConfigError> {
    value.into_string().map_err(|_| ConfigError::NotUnicode {
        origin: Origin::Flag(flag),
    })
}

fn invalid(flag: &'static str, value: String, expected: &'static str) -> ConfigError {
    ConfigError::Invalid {
        origin: Origin::Flag(flag),
        value,
        expected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_with(args: &[&str], env: &[(&str, &str)]) -> Result<Option<Options>, ConfigError> {
        parse(args.iter().copied(), crate::config::tests::env_of(env))
    }

    fn options(args: &[&str], env: &[(&str, &str)]) -> Options {
        parse_with(args, env).unwrap().expect("options, not help")
    }

    fn error(args: &[&str], env: &[(&str, &str)]) -> String {
        parse_with(args, env).unwrap_err().to_string()
    }

    #[test]
    fn the_default_target_is_the_local_server_on_loopback() {
        let local = options(&[], &[]);
        assert_eq!(local.url, "http://127.0.0.1:8767/whatsapp");
        assert_eq!(local.target, Target::Local);
        for (host, url) in [
            ("0.0.0.0", "http://127.0.0.1:9000/whatsapp"),
            ("::", "http://[::1]:9000/whatsapp"),
            ("::1", "http://[::1]:9000/whatsapp"),
            ("192.0.2.7", "http://192.0.2.7:9000/whatsapp"),
        ] {
            assert_eq!(options(&[], &[("HOST", host), ("PORT", "9000")]).url, url);
        }
    }

    #[test]
    fn public_url_wins_over_the_local_server_and_a_url_given_wins_over_both() {
        let env = [
            ("PUBLIC_URL", "https://abc.ngrok-free.app/"),
            ("PORT", "9000"),
        ];
        let public = options(&[], &env);
        assert_eq!(public.url, "https://abc.ngrok-free.app/whatsapp");
        assert_eq!(public.target, Target::PublicUrl);
        let given = options(&["HTTPS://e.com:8443/hook?x=1"], &env);
        assert_eq!(given.url, "https://e.com:8443/hook?x=1");
        assert_eq!(given.target, Target::Given);
    }

    #[test]
    fn the_request_is_signed_with_the_first_auth_token_unless_told_not_to() {
        assert_eq!(options(&[], &[]).signing, Signing::NoToken);
        let env = [("TWILIO_AUTH_TOKEN", "new, old")];
        assert_eq!(
            options(&[], &env).signing,
            Signing::Token(Secret::new("new"))
        );
        assert_eq!(options(&["--no-signature"], &env).signing, Signing::Off);
    }

    #[test]
    fn flags_set_the_message() {
        let options = options(
            &[
                "--body=Hi there",
                "--from",
                "+15550001111",
                "--to",
                "+15552223333",
                "--param",
                "Latitude=52.37",
                "--param",
                "Address=",
                "--media",
                "https://e.com/a.png",
                "--get",
                "--timeout",
                "2",
                "--curl",
            ],
            &[],
        );
        assert_eq!(
            options.inbound,
            Inbound {
                body: "Hi there".to_owned(),
                from: "+15550001111".to_owned(),
                to: "+15552223333".to_owned(),
                media: vec!["https://e.com/a.png".to_owned()],
                extra: vec![
                    ("Latitude".to_owned(), "52.37".to_owned()),
                    ("Address".to_owned(), String::new()),
                ],
            }
        );
        assert!(options.get && options.curl);
        assert_eq!(options.timeout, Duration::from_secs(2));
    }

    #[test]
    fn bad_values_name_the_flag_and_what_it_takes() {
        assert_eq!(
            error(&["--param", "Latitude"], &[]),
            r#"invalid value "Latitude" for --param: expected NAME=VALUE, such as Latitude=52.37"#
        );
        assert_eq!(
            error(&["--param", "=x"], &[]),
            r#"invalid value "=x" for --param: expected NAME=VALUE, such as Latitude=52.37"#
        );
        assert_eq!(
            error(&["--timeout", "0"], &[]),
            r#"invalid value "0" for --timeout: expected a whole number of seconds from 1 to 3600"#
        );
        assert_eq!(
            error(&["ftp://e.com/x"], &[]),
            r#"invalid value "ftp://e.com/x" for URL: expected an http or https URL, such as https://abc123.ngrok-free.app/whatsapp"#
        );
        assert_eq!(
            error(&["--media", "a.png"], &[]),
            r#"invalid media from --media: "a.png" is not an http or https URL; Twilio fetches media from absolute http(s) URLs"#
        );
        assert_eq!(
            error(&["http://a/", "http://b/"], &[]),
            r#"unexpected argument "http://b/" (see --help)"#
        );
        assert_eq!(
            error(&[], &[("PORT", "0")]),
            r#"invalid value "0" for PORT (environment variable): expected the port the server listens on, or give check the server's URL"#
        );
        assert_eq!(
            error(&[], &[("PUBLIC_URL", "abc.ngrok-free.app")]),
            r#"invalid value "abc.ngrok-free.app" for PUBLIC_URL (environment variable): expected an http or https URL without query, such as https://abc123.ngrok-free.app"#
        );
    }

    #[test]
    fn urls_twilio_could_not_call_are_refused() {
        for bad in [
            "127.0.0.1:8767/whatsapp",
            "http://",
            "http:///whatsapp",
            "http://user:pw@e.com/",
            "http://e.com/#top",
            "http://e.com/a b",
            "http://e.com:99999/",
        ] {
            assert_eq!(parse_url(bad), None, "{bad}");
        }
    }

    #[test]
    fn help_is_asked_for_with_h_or_help() {
        assert_eq!(parse_with(&["-h"], &[]).unwrap(), None);
        assert_eq!(parse_with(&["x", "--help"], &[]).unwrap(), None);
    }
}
