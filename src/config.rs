//! Configuration: the server's command-line flags and environment variables
//! become a checked [`Config`]. Which command runs (the server or `check`)
//! is the [`cli`](crate::cli)'s to decide.
//!
//! Every setting has a flag and an environment variable; the flag wins. All
//! defaults live in [`Config::default`]. Nothing here touches the network or
//! the process environment directly: [`parse`] is handed the arguments and a
//! way to look variables up, so tests can drive it.

use std::ffi::OsString;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use crate::logging;
use crate::ngrok;
use crate::replies::{self, Rule, RuleError};
use crate::routes::{STATUS_PATH, WEBHOOK_PATH};
use crate::twilio::messages::{self, Auth, Credentials};
use crate::twilio::signature::{self, AUTH_TOKEN_VAR, Keys, SHARED_KEY_VAR, Secret, SecretsError};
use crate::twilio::twiml::{Reply, TwimlError};

/// The reply sent when none is configured.
pub const DEFAULT_REPLY: &str = "What's app, doc?";

/// The port used when none is configured.
pub const DEFAULT_PORT: u16 = 8767;

/// How long the server waits for a client when none is configured: Twilio
/// sends each request whole at once, and a client that stalls for longer
/// holds a thread and two descriptors meanwhile.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// The longest timeout accepted, in seconds.
pub const MAX_TIMEOUT_SECS: u64 = 3600;

/// How long a reply program may take for one message when none is
/// configured.
pub const DEFAULT_REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest reply timeout accepted, in seconds, without credentials to
/// send a reply later: what Twilio waits for an answer.
pub const MAX_REPLY_TIMEOUT_SECS: u64 = 15;

/// The longest reply timeout accepted, in seconds, with credentials: a late
/// reply goes out through the Messages API.
pub const MAX_LATE_REPLY_TIMEOUT_SECS: u64 = 3600;

/// How long after a message arrives Twilio gets its answer at the latest,
/// when none is configured.
pub const DEFAULT_ANSWER_WITHIN: Duration = Duration::from_secs(10);

/// The longest answer deadline accepted, in seconds: under the 15 s Twilio
/// waits.
pub const MAX_ANSWER_WITHIN_SECS: u64 = 14;

/// The variable holding the account SID, with which late replies are sent.
pub const ACCOUNT_SID_VAR: &str = "TWILIO_ACCOUNT_SID";

/// The variable holding an API key's SID.
pub const API_KEY_VAR: &str = "TWILIO_API_KEY";

/// The variable holding an API key's secret.
pub const API_SECRET_VAR: &str = "TWILIO_API_SECRET";

/// How many reply programs run at once when none is configured.
pub const DEFAULT_REPLY_WORKERS: usize = 4;

/// The most reply programs that may run at once.
pub const MAX_REPLY_WORKERS: usize = 256;

/// The environment variables that hold secrets: never logged, never passed
/// to a reply program.
pub const SECRET_VARS: &[&str] = &[AUTH_TOKEN_VAR, SHARED_KEY_VAR, API_SECRET_VAR];

/// The text of `--help`.
pub const HELP: &str = "\
whatsapp-webhook: answers Twilio's inbound WhatsApp and SMS webhooks with TwiML

Usage: whatsapp-webhook [OPTIONS]
       whatsapp-webhook check [OPTIONS] [URL]

Commands:
  check  Sends the request Twilio sends for a WhatsApp message to the webhook
         and says what Twilio would make of the answer (see check --help)

Options:
      --host <ADDR>   Address to listen on: an IP address or localhost
                      [env: HOST] [default: 127.0.0.1]
  -p, --port <PORT>   Port to listen on; 0 picks a free one
                      [env: PORT] [default: 8767]
      --reply <TEXT>  Text of the reply; empty sends no reply (at most 1600
                      characters) [env: REPLY] [default: What's app, doc?]
      --media <URL>   Adds an image or other media (an http or https URL) to
                      the reply; repeat for more, at most 10
                      [env: MEDIA, URLs separated by spaces or line breaks]
      --on <KEYWORD=REPLY>
                      Answers a message whose text is KEYWORD (ignoring case
                      and surrounding spaces) with REPLY instead; repeat for
                      more; an empty REPLY sends nothing
                      [env: ON_RULES, one rule per line]
      --reply-command <CMD>
                      Runs CMD (through sh -c) for each message no rule
                      answers: the message as JSON on its standard input,
                      its reply on its standard output [env: REPLY_COMMAND]
      --reply-fallback <TEXT>
                      What a message gets when the reply program fails or is
                      late [env: REPLY_FALLBACK] [default: no reply]
      --reply-timeout <SECONDS>
                      How long the reply program may take for one message,
                      from its arrival (1 to 15; with TWILIO_ACCOUNT_SID, up
                      to 3600) [env: REPLY_TIMEOUT] [default: 10]
      --answer-within <SECONDS>
                      With TWILIO_ACCOUNT_SID: answer Twilio by then, with
                      no message, and send a later reply through the
                      Messages API (1 to 14) [env: ANSWER_WITHIN]
                      [default: 10]
      --account-sid <SID>
                      The account (AC...) that sends later replies, with
                      TWILIO_AUTH_TOKEN or TWILIO_API_KEY and
                      TWILIO_API_SECRET [env: TWILIO_ACCOUNT_SID]
      --api-key <SID> An API key (SK...) to send later replies with; its
                      secret is TWILIO_API_SECRET [env: TWILIO_API_KEY]
      --api-url <URL> The Messages API [env: TWILIO_API_URL]
                      [default: https://api.twilio.com]
      --reply-workers <N>
                      How many reply programs run at once (1 to 256)
                      [env: REPLY_WORKERS] [default: 4]
      --timeout <SECONDS>
                      How long a client may keep the server waiting: for
                      the next bytes of a request, for a whole body, and
                      between requests on a connection (1 to 3600)
                      [env: TIMEOUT] [default: 2]
      --public-url <URL>
                      The URL Twilio calls, up to the path this server sees,
                      such as https://abc123.ngrok-free.app; used to check
                      signatures [env: PUBLIC_URL] [default: rebuilt from
                      X-Forwarded-Proto and Host]
      --ngrok-api <URL>
                      Where ngrok's agent lists its tunnels, to find the
                      URL Twilio calls when PUBLIC_URL is not set; off
                      never looks [env: NGROK_API_URL]
                      [default: http://127.0.0.1:4040]
      --log-format <FORMAT>
                      text for people, or json: one JSON object per line,
                      for log shippers [env: LOG_FORMAT] [default: text]
  -h, --help          Print this help
  -V, --version       Print the version

Flags win over environment variables. RUST_LOG sets the log level
(default: info); logs go to standard error.

Signatures: set TWILIO_AUTH_TOKEN (and, for webhooks signed with a SharedKey,
TWILIO_WEBHOOK_SHARED_KEY) in the environment, never on the command line, and
every request to /whatsapp must carry a valid X-Twilio-Signature. Either may
hold two comma-separated values during a rotation. Secrets (the tokens,
TWILIO_API_SECRET) have no flag: every user of a machine can read a
process's command line.

Twilio: run `ngrok http 8767`, then paste https://<id>.ngrok-free.app/whatsapp
into the WhatsApp Sandbox settings, under \"When a message comes in\".
";

/// What the server's command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
// Made once, at start-up, and moved at once: boxing it would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum Parsed {
    /// Run the server with this configuration.
    Serve(Config),
    /// Print [`HELP`].
    Help,
    /// Print the name and version.
    Version,
}

/// A checked configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The address to listen on. Defaults to `127.0.0.1`, which only this
    /// machine (and ngrok running on it) can reach.
    pub host: IpAddr,
    /// The port to listen on; `0` asks the system for a free one. Defaults to
    /// [`DEFAULT_PORT`].
    pub port: u16,
    /// How long a client may keep the server waiting: for the next bytes of
    /// a request, for a whole body (the body deadline), and between requests
    /// on a connection, which then closes. Defaults to [`DEFAULT_TIMEOUT`].
    pub timeout: Duration,
    /// The reply sent to messages no rule answers, with any media. Defaults
    /// to [`DEFAULT_REPLY`] without media.
    pub reply: Reply,
    /// Keyword rules, tried in order before the default reply or the reply
    /// program. Defaults to none.
    pub rules: Vec<Rule>,
    /// The reply program: run through `sh -c` for each message no rule
    /// answers ([`program`](crate::program)). Defaults to none: the reply
    /// answers.
    pub reply_command: Option<String>,
    /// What a message gets when the reply program fails or is late.
    /// Defaults to no message.
    pub reply_fallback: Reply,
    /// How long the reply program may take for one message, from its
    /// arrival; past it, the message gets the fallback. Defaults to
    /// [`DEFAULT_REPLY_TIMEOUT`]; at most [`MAX_REPLY_TIMEOUT_SECS`].
    pub reply_timeout: Duration,
    /// How many reply programs run at once; the others wait their turn.
    /// Defaults to [`DEFAULT_REPLY_WORKERS`].
    pub reply_workers: usize,
    /// With credentials: how long after a message arrives Twilio gets its
    /// answer at the latest (no message, when the program has not
    /// finished; its reply then goes out through the Messages API).
    /// Defaults to [`DEFAULT_ANSWER_WITHIN`]; at most
    /// [`MAX_ANSWER_WITHIN_SECS`].
    pub answer_within: Duration,
    /// What sends a reply after Twilio stopped waiting: the account and its
    /// credentials. Defaults to none: a reply program must finish in time.
    pub credentials: Option<Credentials>,
    /// The URL Twilio calls, up to the path this server receives (scheme,
    /// host, optional port and path prefix, no trailing slash); signatures
    /// are checked against it. Defaults to none: the URL is rebuilt from
    /// `X-Forwarded-Proto` and `Host`.
    pub public_url: Option<String>,
    /// The secrets signatures are checked with, read from the environment
    /// only. Defaults to none, which turns checking off.
    pub keys: Keys,
    /// How log lines are written. Defaults to text.
    pub log_format: logging::Format,
    /// Where ngrok's agent lists its tunnels; asked, when `public_url` is
    /// not set, for the tunnels to this server's port ([`ngrok`]). Defaults
    /// to [`ngrok::DEFAULT_AGENT_API`]; `None` never asks.
    ///
    /// [`ngrok`]: crate::ngrok
    pub ngrok_api: Option<String>,
    /// What reading the configuration changed, to be said once at start (a
    /// `PUBLIC_URL` given with the webhook's path, say). Defaults to none.
    pub adjusted: Vec<String>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: DEFAULT_PORT,
            timeout: DEFAULT_TIMEOUT,
            reply: Reply::new(DEFAULT_REPLY).expect("BUG: the default reply is valid TwiML"),
            rules: Vec::new(),
            reply_command: None,
            reply_fallback: Reply::default(),
            reply_timeout: DEFAULT_REPLY_TIMEOUT,
            reply_workers: DEFAULT_REPLY_WORKERS,
            answer_within: DEFAULT_ANSWER_WITHIN,
            credentials: None,
            public_url: None,
            keys: Keys::default(),
            log_format: logging::Format::Text,
            ngrok_api: Some(ngrok::DEFAULT_AGENT_API.to_owned()),
            adjusted: Vec::new(),
        }
    }
}

/// Reads the server's command line (without the program name) and the
/// environment, looked up through `env`.
///
/// # Errors
///
/// Fails on an unknown option, a missing value, a value that is not UTF-8,
/// or a value that is out of range; the error names the flag or variable.
pub fn parse<A, E>(args: A, env: E) -> Result<Parsed, ConfigError>
where
    A: IntoIterator,
    A::Item: Into<OsString>,
    E: Fn(&str) -> Option<OsString>,
{
    use lexopt::prelude::*;

    let mut host = None;
    let mut port = None;
    let mut reply = None;
    let mut timeout = None;
    let mut public_url = None;
    let mut log_format = None;
    let mut media = Vec::new();
    let mut rules = Vec::new();
    let mut reply_command = None;
    let mut reply_fallback = None;
    let mut reply_timeout = None;
    let mut reply_workers = None;
    let mut answer_within = None;
    let mut account_sid = None;
    let mut api_key = None;
    let mut api_url = None;
    let mut ngrok_api = None;
    let mut parser = lexopt::Parser::from_args(args);
    while let Some(arg) = parser.next()? {
        match arg {
            Short('h') | Long("help") => return Ok(Parsed::Help),
            Short('V') | Long("version") => return Ok(Parsed::Version),
            Long("host") => host = Some(parser.value()?),
            Short('p') | Long("port") => port = Some(parser.value()?),
            Long("reply") => reply = Some(parser.value()?),
            Long("timeout") => timeout = Some(parser.value()?),
            Long("public-url") => public_url = Some(parser.value()?),
            Long("log-format") => log_format = Some(parser.value()?),
            Long("media") => media.push(parser.value()?),
            Long("on") => rules.push(parser.value()?),
            Long("reply-command") => reply_command = Some(parser.value()?),
            Long("reply-fallback") => reply_fallback = Some(parser.value()?),
            Long("reply-timeout") => reply_timeout = Some(parser.value()?),
            Long("reply-workers") => reply_workers = Some(parser.value()?),
            Long("answer-within") => answer_within = Some(parser.value()?),
            Long("account-sid") => account_sid = Some(parser.value()?),
            Long("api-key") => api_key = Some(parser.value()?),
            Long("api-url") => api_url = Some(parser.value()?),
            Long("ngrok-api") => ngrok_api = Some(parser.value()?),
            _ => return Err(arg.unexpected().into()),
        }
    }

    let mut config = Config::default();
    if let Some(host) = self::host(host, &env)? {
        config.host = host;
    }
    if let Some(port) = self::port(port, &env)? {
        config.port = port;
    }
    if let Some(given) = given(timeout, "--timeout", "TIMEOUT", &env)? {
        config.timeout = match given.text.parse::<u64>() {
            Ok(secs @ 1..=MAX_TIMEOUT_SECS) => Duration::from_secs(secs),
            _ => return Err(given.invalid("a whole number of seconds from 1 to 3600")),
        };
    }
    let reply = given(reply, "--reply", "REPLY", &env)?;
    let media = list(media, "--media", "MEDIA", &env, |text| {
        text.split_whitespace().map(str::to_owned).collect()
    })?;
    if let Some(given) = given(reply_command, "--reply-command", "REPLY_COMMAND", &env)? {
        if given.text.trim().is_empty() {
            return Err(given.invalid("a command, run through sh -c for each message"));
        }
        // The program answers every message no rule does: a reply of the
        // server's own would never be sent.
        let unused = reply
            .as_ref()
            .map(|reply| reply.origin)
            .or(media.as_ref().map(|(_, origin)| *origin));
        if let Some(unused) = unused {
            return Err(ConfigError::NeverSent {
                program: given.origin,
                unused,
            });
        }
        config.reply_command = Some(given.text);
    }
    if let Some(given) = reply {
        config.reply = Reply::new(&given.text).map_err(|source| ConfigError::Reply {
            origin: given.origin,
            source,
        })?;
    }
    if let Some(given) = given(reply_fallback, "--reply-fallback", "REPLY_FALLBACK", &env)? {
        config.reply_fallback = Reply::new(&given.text).map_err(|source| ConfigError::Reply {
            origin: given.origin,
            source,
        })?;
    }
    config.credentials = credentials(account_sid, api_key, api_url, &env)?;
    if let Some(given) = given(reply_timeout, "--reply-timeout", "REPLY_TIMEOUT", &env)? {
        let limit = if config.credentials.is_some() {
            MAX_LATE_REPLY_TIMEOUT_SECS
        } else {
            MAX_REPLY_TIMEOUT_SECS
        };
        config.reply_timeout = match given.text.parse::<u64>() {
            Ok(secs @ 1..) if secs <= limit => Duration::from_secs(secs),
            Ok(secs @ 16..=MAX_LATE_REPLY_TIMEOUT_SECS) => {
                return Err(ConfigError::NoLateReplies {
                    origin: given.origin,
                    seconds: secs,
                });
            }
            _ if config.credentials.is_some() => {
                return Err(given.invalid("a whole number of seconds from 1 to 3600"));
            }
            _ => {
                return Err(given.invalid(
                    "a whole number of seconds from 1 to 15 (Twilio waits 15 s for an answer)",
                ));
            }
        };
    }
    if let Some(given) = given(answer_within, "--answer-within", "ANSWER_WITHIN", &env)? {
        config.answer_within = match given.text.parse::<u64>() {
            Ok(secs @ 1..=MAX_ANSWER_WITHIN_SECS) => Duration::from_secs(secs),
            _ => {
                return Err(given.invalid(
                    "a whole number of seconds from 1 to 14 (Twilio waits 15 s for an answer)",
                ));
            }
        };
    }
    if let Some(given) = given(reply_workers, "--reply-workers", "REPLY_WORKERS", &env)? {
        config.reply_workers = match given.text.parse::<usize>() {
            Ok(workers @ 1..=MAX_REPLY_WORKERS) => workers,
            _ => return Err(given.invalid("a whole number from 1 to 256")),
        };
    }
    if let Some((urls, origin)) = media {
        config.reply = config
            .reply
            .with_media(&urls)
            .map_err(|source| ConfigError::Media { origin, source })?;
    }
    let rules = list(rules, "--on", "ON_RULES", &env, |text| {
        text.lines()
            .filter(|line| !line.trim().is_empty())
            .map(str::to_owned)
            .collect()
    })?;
    if let Some((rules, origin)) = rules {
        let rules = rules
            .iter()
            .map(|rule| Rule::parse(rule))
            .collect::<Result<Vec<_>, _>>()
            .and_then(|rules| replies::check_unique(&rules).map(|()| rules))
            .map_err(|source| ConfigError::Rule { origin, source })?;
        config.rules = rules;
    }
    let given_url = given(public_url.clone(), "--public-url", "PUBLIC_URL", &env)?;
    config.public_url = self::public_url(public_url, &env)?;
    if let (Some(given), Some(url)) = (given_url, &config.public_url) {
        let given_text = given.text.trim_end_matches('/');
        let endpoint = given_text
            .strip_prefix(url.as_str())
            .filter(|endpoint| !endpoint.is_empty());
        if let Some(endpoint) = endpoint {
            config.adjusted.push(format!(
                "{} ends with {endpoint}, the server's own path: the URL Twilio calls is \
                 {url}{endpoint}, so {} is {url} (set it so to silence this)",
                given.origin,
                given.origin.name()
            ));
        }
    }
    if let Some(api) = self::ngrok_api(ngrok_api, &env)? {
        config.ngrok_api = api;
    }
    if let Some(given) = given(log_format, "--log-format", "LOG_FORMAT", &env)? {
        config.log_format = match given.text.parse() {
            Ok(format) => format,
            Err(()) => return Err(given.invalid("text or json")),
        };
    }
    config.keys.auth_tokens = secrets(AUTH_TOKEN_VAR, &env)?;
    config.keys.shared_keys = secrets(SHARED_KEY_VAR, &env)?;
    Ok(Parsed::Serve(config))
}

/// The values of a repeatable flag, or else the environment variable's,
/// split by `split`; `None` when neither is given.
fn list<E, S>(
    flag_values: Vec<OsString>,
    flag: &'static str,
    var: &'static str,
    env: &E,
    split: S,
) -> Result<Option<(Vec<String>, Origin)>, ConfigError>
where
    E: Fn(&str) -> Option<OsString>,
    S: Fn(&str) -> Vec<String>,
{
    if flag_values.is_empty() {
        return Ok(given(None, flag, var, env)?.map(|given| (split(&given.text), given.origin)));
    }
    let origin = Origin::Flag(flag);
    let values = flag_values
        .into_iter()
        .map(|value| {
            value
                .into_string()
                .map_err(|_| ConfigError::NotUnicode { origin })
        })
        .collect::<Result<_, _>>()?;
    Ok(Some((values, origin)))
}

/// The address to listen on, from `--host` (given as `flag_value`) or
/// `HOST`.
pub(crate) fn host<E>(flag_value: Option<OsString>, env: &E) -> Result<Option<IpAddr>, ConfigError>
where
    E: Fn(&str) -> Option<OsString>,
{
    let Some(given) = given(flag_value, "--host", "HOST", env)? else {
        return Ok(None);
    };
    match parse_host(&given.text) {
        Some(ip) => Ok(Some(ip)),
        None => Err(given.invalid("an IP address such as 127.0.0.1 or 0.0.0.0, or localhost")),
    }
}

/// The port to listen on, from `--port` (given as `flag_value`) or `PORT`.
pub(crate) fn port<E>(flag_value: Option<OsString>, env: &E) -> Result<Option<u16>, ConfigError>
where
    E: Fn(&str) -> Option<OsString>,
{
    let Some(given) = given(flag_value, "--port", "PORT", env)? else {
        return Ok(None);
    };
    match given.text.parse() {
        Ok(port) => Ok(Some(port)),
        Err(_) => Err(given.invalid("a port number from 0 to 65535")),
    }
}

/// The public URL, from `--public-url` (given as `flag_value`) or
/// `PUBLIC_URL`, without trailing slashes.
pub(crate) fn public_url<E>(
    flag_value: Option<OsString>,
    env: &E,
) -> Result<Option<String>, ConfigError>
where
    E: Fn(&str) -> Option<OsString>,
{
    let Some(given) = given(flag_value, "--public-url", "PUBLIC_URL", env)? else {
        return Ok(None);
    };
    match parse_public_url(&given.text) {
        Some(url) => Ok(Some(url)),
        None => Err(given
            .invalid("an http or https URL without query, such as https://abc123.ngrok-free.app")),
    }
}

/// The credentials that send late replies: the account SID (flag or
/// variable), with the first `TWILIO_AUTH_TOKEN` or an API key (its SID by
/// flag or variable, its secret from the environment only); `None` without
/// an account SID.
fn credentials<E>(
    account_sid: Option<OsString>,
    api_key: Option<OsString>,
    api_url: Option<OsString>,
    env: &E,
) -> Result<Option<Credentials>, ConfigError>
where
    E: Fn(&str) -> Option<OsString>,
{
    let key = given(api_key, "--api-key", API_KEY_VAR, env)?;
    let secret = given(None, "", API_SECRET_VAR, env)?;
    let url = match given(api_url, "--api-url", "TWILIO_API_URL", env)? {
        Some(given) => {
            let url = given.text.trim_end_matches('/').to_owned();
            let scheme = url.split_once("://").map(|(scheme, _)| scheme);
            if !matches!(scheme, Some("http" | "https")) || url.contains(char::is_whitespace) {
                return Err(given.invalid("an http or https URL, such as https://api.twilio.com"));
            }
            url
        }
        None => messages::DEFAULT_API_URL.to_owned(),
    };
    let Some(account) = given(account_sid, "--account-sid", ACCOUNT_SID_VAR, env)? else {
        if let Some(key) = key {
            return Err(ConfigError::Credentials(format!(
                "{} is given, but {ACCOUNT_SID_VAR} is not: an API key sends for an account",
                key.origin
            )));
        }
        return Ok(None);
    };
    if !is_sid(&account.text, "AC") {
        return Err(account.invalid("an account SID: AC and 32 hexadecimal digits"));
    }
    let auth = match (key, secret) {
        (Some(key), Some(secret)) => {
            if !is_sid(&key.text, "SK") {
                return Err(key.invalid("an API key SID: SK and 32 hexadecimal digits"));
            }
            Auth::Key {
                sid: key.text,
                secret: Secret::new(secret.text.trim()),
            }
        }
        (Some(key), None) => {
            return Err(ConfigError::Credentials(format!(
                "{} is given, but {API_SECRET_VAR} (environment variable) is not: the key's \
                 secret authenticates it",
                key.origin
            )));
        }
        (None, secret) => {
            let token = secrets(AUTH_TOKEN_VAR, env)?.into_iter().next();
            match (token, secret) {
                (Some(token), None) => Auth::Token(token),
                (_, Some(_)) => {
                    return Err(ConfigError::Credentials(format!(
                        "{API_SECRET_VAR} is given, but {API_KEY_VAR} is not: give the key's \
                         SID with it"
                    )));
                }
                (None, None) => {
                    return Err(ConfigError::Credentials(format!(
                        "{} is given, but neither {AUTH_TOKEN_VAR} nor {API_KEY_VAR} with \
                         {API_SECRET_VAR} is: one of them authenticates the account",
                        account.origin
                    )));
                }
            }
        }
    };
    Ok(Some(Credentials {
        account_sid: account.text,
        auth,
        api_url: url,
    }))
}

/// Where to ask ngrok's agent for its tunnels, from `--ngrok-api` (given as
/// `flag_value`) or `NGROK_API_URL`: `Some(None)` for `off`, `None` when
/// neither is given.
pub(crate) fn ngrok_api<E>(
    flag_value: Option<OsString>,
    env: &E,
) -> Result<Option<Option<String>>, ConfigError>
where
    E: Fn(&str) -> Option<OsString>,
{
    let Some(given) = given(flag_value, "--ngrok-api", "NGROK_API_URL", env)? else {
        return Ok(None);
    };
    if given.text.trim().eq_ignore_ascii_case("off") {
        return Ok(Some(None));
    }
    let url = given.text.trim().trim_end_matches('/');
    let scheme = url.split_once("://").map(|(scheme, _)| scheme);
    if !matches!(scheme, Some("http" | "https")) || url.contains(char::is_whitespace) {
        return Err(given.invalid("an http URL such as http://127.0.0.1:4040, or off"));
    }
    Ok(Some(Some(url.to_owned())))
}

/// Whether `text` is a Twilio SID of this `prefix`: the prefix and 32
/// hexadecimal digits.
fn is_sid(text: &str, prefix: &str) -> bool {
    text.strip_prefix(prefix)
        .is_some_and(|hex| hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Reads a secret variable; secrets have no flag, because every user of the
/// machine can read a process's arguments.
pub(crate) fn secrets<E>(var: &'static str, env: &E) -> Result<Vec<signature::Secret>, ConfigError>
where
    E: Fn(&str) -> Option<OsString>,
{
    match given(None, "", var, env)? {
        Some(given) => signature::parse_secrets(var, &given.text).map_err(ConfigError::Secrets),
        None => Ok(Vec::new()),
    }
}

/// Checks a public URL and drops its trailing slashes and a trailing
/// `/whatsapp` or `/status` (the server's own paths, which a user pastes
/// from the Console), so that appending the request path gives the URL
/// Twilio signed.
fn parse_public_url(text: &str) -> Option<String> {
    let (scheme, rest) = text.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let rest = rest.trim_end_matches('/');
    let rest = [WEBHOOK_PATH, STATUS_PATH]
        .iter()
        .find_map(|endpoint| rest.strip_suffix(endpoint))
        .map_or(rest, |without| without.trim_end_matches('/'));
    let host = rest.split('/').next().unwrap_or_default();
    let acceptable = matches!(scheme.as_str(), "http" | "https")
        && !host.is_empty()
        && !host.contains('@')
        && !rest.contains(['?', '#'])
        && !rest.contains(|c: char| c.is_whitespace() || c.is_control());
    let url = format!("{scheme}://{rest}");
    // The port must be one the signature check can read.
    (acceptable && signature::url_forms(&url).is_some()).then_some(url)
}

/// A value given for a setting, and where it came from.
struct Given {
    text: String,
    origin: Origin,
}

impl Given {
    fn invalid(self, expected: &'static str) -> ConfigError {
        ConfigError::Invalid {
            origin: self.origin,
            value: self.text,
            expected,
        }
    }
}

/// The flag's value if the flag was given, else the environment variable's.
fn given<E>(
    flag_value: Option<OsString>,
    flag: &'static str,
    var: &'static str,
    env: &E,
) -> Result<Option<Given>, ConfigError>
where
    E: Fn(&str) -> Option<OsString>,
{
    let (value, origin) = match flag_value {
        Some(value) => (value, Origin::Flag(flag)),
        None => match env(var) {
            Some(value) => (value, Origin::Env(var)),
            None => return Ok(None),
        },
    };
    match value.into_string() {
        Ok(text) => Ok(Some(Given { text, origin })),
        Err(_) => Err(ConfigError::NotUnicode { origin }),
    }
}

fn parse_host(text: &str) -> Option<IpAddr> {
    if text.eq_ignore_ascii_case("localhost") {
        return Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    let unbracketed = text
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .unwrap_or(text);
    unbracketed.parse().ok()
}

/// Where a value came from: named in error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A command-line flag, such as `--port`.
    Flag(&'static str),
    /// An environment variable, such as `PORT`.
    Env(&'static str),
}

impl Origin {
    /// The flag or variable alone, such as `--port` or `PORT`.
    pub fn name(&self) -> &'static str {
        match self {
            Origin::Flag(name) | Origin::Env(name) => name,
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Flag(flag) => f.write_str(flag),
            Origin::Env(var) => write!(f, "{var} (environment variable)"),
        }
    }
}

/// A command line or environment that cannot be used.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConfigError {
    /// An unknown option, a missing value, or a stray argument.
    Usage(lexopt::Error),
    /// A value that is not valid UTF-8.
    NotUnicode {
        /// Where the value came from.
        origin: Origin,
    },
    /// A value that does not fit the setting.
    Invalid {
        /// Where the value came from.
        origin: Origin,
        /// The value as given.
        value: String,
        /// What the setting accepts.
        expected: &'static str,
    },
    /// A secret variable that cannot be used.
    Secrets(SecretsError),
    /// A keyword rule that cannot be used.
    Rule {
        /// Where the rules came from.
        origin: Origin,
        /// What is wrong with the rule.
        source: RuleError,
    },
    /// Media that Twilio cannot send.
    Media {
        /// Where the media came from.
        origin: Origin,
        /// Why Twilio cannot send them.
        source: TwimlError,
    },
    /// A reply that Twilio cannot send.
    Reply {
        /// Where the reply came from.
        origin: Origin,
        /// Why Twilio cannot send it.
        source: TwimlError,
    },
    /// Credentials for the Messages API that cannot be used.
    Credentials(String),
    /// A reply timeout past what Twilio waits, without credentials to send
    /// the reply later.
    NoLateReplies {
        /// Where the timeout came from.
        origin: Origin,
        /// The timeout, in seconds.
        seconds: u64,
    },
    /// A reply given with a reply program, which answers every message
    /// instead.
    NeverSent {
        /// Where the reply program came from.
        program: Origin,
        /// Where the reply that would never be sent came from.
        unused: Origin,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Usage(error) => write!(f, "{error} (see --help)"),
            ConfigError::NotUnicode { origin } => write!(f, "the value of {origin} is not UTF-8"),
            ConfigError::Invalid {
                origin,
                value,
                expected,
            } => write!(
                f,
                "invalid value {value:?} for {origin}: expected {expected}"
            ),
            ConfigError::Reply { origin, source } => {
                write!(f, "invalid reply from {origin}: {source}")
            }
            ConfigError::Secrets(error) => error.fmt(f),
            ConfigError::Rule { origin, source } => {
                write!(f, "invalid rule from {origin}: {source}")
            }
            ConfigError::Media { origin, source } => {
                write!(f, "invalid media from {origin}: {source}")
            }
            ConfigError::Credentials(problem) => f.write_str(problem),
            ConfigError::NoLateReplies { origin, seconds } => write!(
                f,
                "{origin} is {seconds} s, longer than the 15 s Twilio waits for an answer: set \
                 {ACCOUNT_SID_VAR} (with {AUTH_TOKEN_VAR}, or {API_KEY_VAR} and \
                 {API_SECRET_VAR}) so that a reply that takes longer is sent through the \
                 Messages API, or give 15 s at most"
            ),
            ConfigError::NeverSent { program, unused } => write!(
                f,
                "{unused} would never be sent: the reply program ({program}) answers every \
                 message no keyword rule does; unset {unused} (a message gets the reply \
                 fallback, --reply-fallback, when the program fails)"
            ),
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigError::Usage(error) => Some(error),
            _ => None,
        }
    }
}

impl From<lexopt::Error> for ConfigError {
    fn from(error: lexopt::Error) -> ConfigError {
        ConfigError::Usage(error)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An environment holding exactly `vars`, for the `env` argument of
    /// [`parse`] here and in `check`'s options.
    pub(crate) fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let vars: Vec<(String, OsString)> = vars
            .iter()
            .map(|(name, value)| (name.to_string(), OsString::from(value)))
            .collect();
        move |name| {
            vars.iter()
                .find(|(var, _)| var == name)
                .map(|(_, value)| value.clone())
        }
    }

    fn parse_with(args: &[&str], env: &[(&str, &str)]) -> Result<Parsed, ConfigError> {
        parse(args.iter().copied(), env_of(env))
    }

    fn config(args: &[&str], env: &[(&str, &str)]) -> Config {
        match parse_with(args, env) {
            Ok(Parsed::Serve(config)) => config,
            other => panic!("expected a configuration, got {other:?}"),
        }
    }

    fn error(args: &[&str], env: &[(&str, &str)]) -> String {
        parse_with(args, env).unwrap_err().to_string()
    }

    #[test]
    fn defaults_listen_on_loopback_port_8767_and_reply_whats_app_doc() {
        let config = config(&[], &[]);
        assert_eq!(config.host, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(config.port, 8767);
        assert_eq!(config.reply.text(), "What's app, doc?");
    }

    #[test]
    fn flags_set_every_value() {
        let config = config(&["--host", "0.0.0.0", "--port=0", "--reply", "Hi!"], &[]);
        assert_eq!(config.host, "0.0.0.0".parse::<IpAddr>().unwrap());
        assert_eq!(config.port, 0);
        assert_eq!(config.reply.text(), "Hi!");
        assert_eq!(config_port(&["-p", "9000"]), 9000);
    }

    fn config_port(args: &[&str]) -> u16 {
        config(args, &[]).port
    }

    #[test]
    fn environment_sets_values_and_flags_win_over_it() {
        let env = [("HOST", "::1"), ("PORT", "9000"), ("REPLY", "from env")];
        let from_env = config(&[], &env);
        assert_eq!(from_env.host, "::1".parse::<IpAddr>().unwrap());
        assert_eq!(from_env.port, 9000);
        assert_eq!(from_env.reply.text(), "from env");
        let flags = config(&["--port", "9001", "--reply", "from flag"], &env);
        assert_eq!(flags.port, 9001);
        assert_eq!(flags.reply.text(), "from flag");
        assert_eq!(flags.host, "::1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn timeout_is_whole_seconds_from_1_to_3600() {
        assert_eq!(config(&[], &[]).timeout, Duration::from_secs(2));
        assert_eq!(
            config(&["--timeout", "1"], &[]).timeout,
            Duration::from_secs(1)
        );
        assert_eq!(
            config(&[], &[("TIMEOUT", "3600")]).timeout,
            Duration::from_secs(3600)
        );
        for bad in ["0", "3601", "1.5", "-1", "ten", ""] {
            assert_eq!(
                error(&["--timeout", bad], &[]),
                format!(
                    "invalid value {bad:?} for --timeout: expected a whole number of seconds from 1 to 3600"
                )
            );
        }
    }

    #[test]
    fn the_log_format_is_text_or_json() {
        assert_eq!(config(&[], &[]).log_format, logging::Format::Text);
        assert_eq!(
            config(&[], &[("LOG_FORMAT", "json")]).log_format,
            logging::Format::Json
        );
        assert_eq!(
            config(&["--log-format", "TEXT"], &[("LOG_FORMAT", "json")]).log_format,
            logging::Format::Text
        );
        assert_eq!(
            error(&["--log-format", "xml"], &[]),
            r#"invalid value "xml" for --log-format: expected text or json"#
        );
    }

    #[test]
    fn the_last_of_repeated_flags_wins() {
        assert_eq!(config_port(&["--port", "1", "--port", "2"]), 2);
    }

    #[test]
    fn empty_reply_means_no_message() {
        assert_eq!(config(&["--reply", ""], &[]).reply.text(), "");
        assert_eq!(config(&[], &[("REPLY", "")]).reply.text(), "");
    }

    #[test]
    fn host_accepts_ip_addresses_localhost_and_bracketed_ipv6() {
        for (given, expected) in [
            ("127.0.0.1", "127.0.0.1"),
            ("localhost", "127.0.0.1"),
            ("LOCALHOST", "127.0.0.1"),
            ("::", "::"),
            ("[::1]", "::1"),
        ] {
            assert_eq!(
                config(&["--host", given], &[]).host,
                expected.parse::<IpAddr>().unwrap()
            );
        }
    }

    #[test]
    fn help_and_version_win_over_other_values() {
        assert_eq!(
            parse_with(&["--port", "99999", "--help"], &[]).unwrap(),
            Parsed::Help
        );
        assert_eq!(parse_with(&["-h"], &[]).unwrap(), Parsed::Help);
        assert_eq!(parse_with(&["--version"], &[]).unwrap(), Parsed::Version);
        assert_eq!(parse_with(&["-V"], &[]).unwrap(), Parsed::Version);
    }

    #[test]
    fn bad_values_name_the_flag_or_variable_and_what_it_takes() {
        assert_eq!(
            error(&["--port", "99999"], &[]),
            r#"invalid value "99999" for --port: expected a port number from 0 to 65535"#
        );
        assert_eq!(
            error(&[], &[("PORT", "")]),
            r#"invalid value "" for PORT (environment variable): expected a port number from 0 to 65535"#
        );
        assert_eq!(
            error(&["--host", "example.com"], &[]),
            r#"invalid value "example.com" for --host: expected an IP address such as 127.0.0.1 or 0.0.0.0, or localhost"#
        );
        assert_eq!(
            error(&[], &[("REPLY", &"x".repeat(1601))]),
            "invalid reply from REPLY (environment variable): the text is 1601 characters long; Twilio sends at most 1600"
        );
    }

    #[test]
    fn a_bad_environment_variable_is_ignored_when_the_flag_is_given() {
        assert_eq!(config(&["--port", "1"], &[("PORT", "nope")]).port, 1);
    }

    #[test]
    fn usage_errors_point_to_help() {
        assert_eq!(
            error(&["--bogus"], &[]),
            "invalid option '--bogus' (see --help)"
        );
        assert_eq!(
            error(&["--port"], &[]),
            "missing argument for option '--port' (see --help)"
        );
        assert_eq!(
            error(&["stray"], &[]),
            r#"unexpected argument "stray" (see --help)"#
        );
    }

    #[cfg(unix)]
    #[test]
    fn values_that_are_not_utf8_are_refused() {
        use std::os::unix::ffi::OsStringExt;
        let result = parse(
            [OsString::from("--reply"), OsString::from_vec(vec![0xff])],
            |_| None,
        );
        assert_eq!(
            result.unwrap_err().to_string(),
            "the value of --reply is not UTF-8"
        );
        let result = parse(Vec::<OsString>::new(), |name| {
            (name == "HOST").then(|| OsString::from_vec(vec![0xff]))
        });
        assert_eq!(
            result.unwrap_err().to_string(),
            "the value of HOST (environment variable) is not UTF-8"
        );
    }

    #[test]
    fn rules_come_from_repeated_flags_or_one_per_line_of_on_rules() {
        let from_flags = config(&["--on", "hello=Hi!", "--on", "bye=Goodbye"], &[]);
        let keywords: Vec<_> = from_flags.rules.iter().map(Rule::keyword).collect();
        assert_eq!(keywords, ["hello", "bye"]);
        let from_env = config(&[], &[("ON_RULES", "hello=Hi!\n\n  \nbye=Good=bye\n")]);
        let rules: Vec<_> = from_env
            .rules
            .iter()
            .map(|rule| (rule.keyword(), rule.reply().text()))
            .collect();
        assert_eq!(rules, [("hello", "Hi!"), ("bye", "Good=bye")]);
        let flags_win = config(&["--on", "a=b"], &[("ON_RULES", "c=d")]);
        assert_eq!(flags_win.rules.len(), 1);
        assert_eq!(flags_win.rules[0].keyword(), "a");
    }

    #[test]
    fn invalid_rules_are_refused_naming_where_they_came_from() {
        assert_eq!(
            error(&["--on", "hello"], &[]),
            r#"invalid rule from --on: rule "hello" has no '=': write it KEYWORD=REPLY"#
        );
        assert_eq!(
            error(&[], &[("ON_RULES", "ok=1\n =Hi")]),
            r#"invalid rule from ON_RULES (environment variable): rule " =Hi" has an empty keyword"#
        );
        assert_eq!(
            error(&["--on", "Stop=a", "--on", "stop="], &[]),
            r#"invalid rule from --on: keyword "stop" has two rules (keywords are compared ignoring case)"#
        );
        assert_eq!(
            error(&["--on", &format!("x={}", "y".repeat(1601))], &[]),
            r#"invalid rule from --on: the reply to keyword "x" cannot be sent: the text is 1601 characters long; Twilio sends at most 1600"#
        );
    }

    #[test]
    fn media_come_from_repeated_flags_or_a_spaced_list() {
        let config1 = config(
            &[
                "--media",
                "https://e.com/a.jpg",
                "--media",
                "http://e.com/b.png",
            ],
            &[],
        );
        assert_eq!(
            config1.reply.media(),
            ["https://e.com/a.jpg", "http://e.com/b.png"]
        );
        let config2 = config(
            &[],
            &[("MEDIA", " https://e.com/a.jpg\nhttps://e.com/b.jpg ")],
        );
        assert_eq!(
            config2.reply.media(),
            ["https://e.com/a.jpg", "https://e.com/b.jpg"]
        );
        assert_eq!(
            error(&["--media", "e.com/a.jpg"], &[]),
            r#"invalid media from --media: "e.com/a.jpg" is not an http or https URL; Twilio fetches media from absolute http(s) URLs"#
        );
        let eleven: Vec<String> = (0..11).map(|i| format!("https://e.com/{i}")).collect();
        assert_eq!(
            error(&[], &[("MEDIA", &eleven.join(" "))]),
            "invalid media from MEDIA (environment variable): 11 media given; Twilio sends at most 10 with one message"
        );
    }

    #[test]
    fn a_reply_program_comes_with_its_fallback_time_limit_and_workers() {
        let config = config(
            &["--reply-command", "python3 bot.py", "--reply-timeout", "15"],
            &[
                ("REPLY_FALLBACK", "Sorry, try again"),
                ("REPLY_WORKERS", "8"),
            ],
        );
        assert_eq!(config.reply_command.as_deref(), Some("python3 bot.py"));
        assert_eq!(config.reply_fallback.text(), "Sorry, try again");
        assert_eq!(config.reply_timeout, Duration::from_secs(15));
        assert_eq!(config.reply_workers, 8);
        let defaults = config_of(&[]);
        assert_eq!(defaults.reply_command, None);
        assert!(defaults.reply_fallback.is_silent());
        assert_eq!(defaults.reply_timeout, Duration::from_secs(10));
        assert_eq!(defaults.reply_workers, 4);
        for (flag, bad, expected) in [
            (
                "--reply-timeout",
                "3601",
                "a whole number of seconds from 1 to 15 (Twilio waits 15 s for an answer)",
            ),
            (
                "--reply-timeout",
                "0",
                "a whole number of seconds from 1 to 15 (Twilio waits 15 s for an answer)",
            ),
            ("--reply-workers", "0", "a whole number from 1 to 256"),
            (
                "--reply-command",
                " ",
                "a command, run through sh -c for each message",
            ),
        ] {
            assert_eq!(
                error(&[flag, bad], &[]),
                format!("invalid value {bad:?} for {flag}: expected {expected}")
            );
        }
    }

    fn config_of(env: &[(&str, &str)]) -> Config {
        config(&[], env)
    }

    #[test]
    fn a_reply_or_media_given_with_a_reply_program_is_refused_as_never_sent() {
        assert_eq!(
            error(&["--reply-command", "./bot"], &[("REPLY", "Hi")]),
            "REPLY (environment variable) would never be sent: the reply program \
             (--reply-command) answers every message no keyword rule does; unset REPLY \
             (environment variable) (a message gets the reply fallback, --reply-fallback, when \
             the program fails)"
        );
        assert!(
            error(
                &["--media", "https://e.com/a.png"],
                &[("REPLY_COMMAND", "./bot")]
            )
            .starts_with("--media would never be sent")
        );
        // Keyword rules answer their keywords first: they go with a program.
        let config = config(&["--reply-command", "./bot", "--on", "stop="], &[]);
        assert_eq!(config.rules.len(), 1);
    }

    const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";
    const KEY: &str = "SKaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

    #[test]
    fn late_replies_need_an_account_and_its_token_or_an_api_key() {
        let token = config(
            &["--reply-timeout", "600", "--answer-within", "5"],
            &[
                ("TWILIO_ACCOUNT_SID", ACCOUNT),
                ("TWILIO_AUTH_TOKEN", "new,old"),
            ],
        );
        let credentials = token.credentials.unwrap();
        assert_eq!(credentials.account_sid, ACCOUNT);
        assert_eq!(credentials.auth, Auth::Token(Secret::new("new")));
        assert_eq!(credentials.api_url, "https://api.twilio.com");
        assert_eq!(token.reply_timeout, Duration::from_secs(600));
        assert_eq!(token.answer_within, Duration::from_secs(5));
        let key = config(
            &[
                "--account-sid",
                ACCOUNT,
                "--api-key",
                KEY,
                "--api-url",
                "http://127.0.0.1:9/",
            ],
            &[("TWILIO_API_SECRET", "s3cret")],
        )
        .credentials
        .unwrap();
        assert_eq!(
            key.auth,
            Auth::Key {
                sid: KEY.to_owned(),
                secret: Secret::new("s3cret")
            }
        );
        assert_eq!(key.api_url, "http://127.0.0.1:9");
        assert_eq!(config(&[], &[]).credentials, None);
        assert_eq!(config(&[], &[]).answer_within, Duration::from_secs(10));
    }

    #[test]
    fn a_reply_timeout_past_15_s_without_credentials_names_the_account_sid() {
        assert_eq!(
            error(&[], &[("REPLY_TIMEOUT", "60")]),
            "REPLY_TIMEOUT (environment variable) is 60 s, longer than the 15 s Twilio waits \
             for an answer: set TWILIO_ACCOUNT_SID (with TWILIO_AUTH_TOKEN, or TWILIO_API_KEY and \
             TWILIO_API_SECRET) so that a reply that takes longer is sent through the Messages \
             API, or give 15 s at most"
        );
        assert_eq!(
            error(
                &["--reply-timeout", "3601"],
                &[("TWILIO_ACCOUNT_SID", ACCOUNT), ("TWILIO_AUTH_TOKEN", "t")]
            ),
            r#"invalid value "3601" for --reply-timeout: expected a whole number of seconds from 1 to 3600"#
        );
        assert_eq!(
            error(&["--answer-within", "15"], &[]),
            r#"invalid value "15" for --answer-within: expected a whole number of seconds from 1 to 14 (Twilio waits 15 s for an answer)"#
        );
    }

    #[test]
    fn incomplete_or_malformed_credentials_are_refused() {
        assert_eq!(
            error(&["--account-sid", ACCOUNT], &[]),
            "--account-sid is given, but neither TWILIO_AUTH_TOKEN nor TWILIO_API_KEY with \
             TWILIO_API_SECRET is: one of them authenticates the account"
        );
        assert_eq!(
            error(&["--api-key", KEY], &[("TWILIO_ACCOUNT_SID", ACCOUNT)]),
            "--api-key is given, but TWILIO_API_SECRET (environment variable) is not: the key's \
             secret authenticates it"
        );
        assert_eq!(
            error(&[], &[("TWILIO_API_KEY", KEY), ("TWILIO_API_SECRET", "s")]),
            "TWILIO_API_KEY (environment variable) is given, but TWILIO_ACCOUNT_SID is not: an \
             API key sends for an account"
        );
        assert_eq!(
            error(&["--account-sid", "AC123"], &[("TWILIO_AUTH_TOKEN", "t")]),
            r#"invalid value "AC123" for --account-sid: expected an account SID: AC and 32 hexadecimal digits"#
        );
        assert!(
            error(&["--api-url", "ftp://x"], &[])
                .starts_with(r#"invalid value "ftp://x" for --api-url"#)
        );
    }

    #[test]
    fn a_public_url_pasted_with_the_servers_path_is_cut_before_it_and_said() {
        for (given, url) in [
            (
                "https://abc123.ngrok-free.app/whatsapp",
                "https://abc123.ngrok-free.app",
            ),
            (
                "https://abc123.ngrok-free.app/status/",
                "https://abc123.ngrok-free.app",
            ),
            ("https://e.com/hooks/whatsapp", "https://e.com/hooks"),
            ("https://e.com/whatsapp-bot", "https://e.com/whatsapp-bot"),
        ] {
            let config = config(&[], &[("PUBLIC_URL", given)]);
            assert_eq!(config.public_url.as_deref(), Some(url), "{given}");
        }
        let config = config(
            &["--public-url", "https://abc123.ngrok-free.app/whatsapp"],
            &[],
        );
        assert_eq!(
            config.adjusted,
            [
                "--public-url ends with /whatsapp, the server's own path: the URL Twilio calls is \
              https://abc123.ngrok-free.app/whatsapp, so --public-url is \
              https://abc123.ngrok-free.app (set it so to silence this)"
            ]
        );
        assert!(
            config_of(&[("PUBLIC_URL", "https://e.com/")])
                .adjusted
                .is_empty()
        );
    }

    #[test]
    fn the_ngrok_agent_is_asked_where_it_is_or_never() {
        assert_eq!(
            config(&[], &[]).ngrok_api.as_deref(),
            Some("http://127.0.0.1:4040")
        );
        assert_eq!(config(&[], &[("NGROK_API_URL", "OFF")]).ngrok_api, None);
        assert_eq!(
            config(&["--ngrok-api", "http://127.0.0.1:4041/"], &[])
                .ngrok_api
                .as_deref(),
            Some("http://127.0.0.1:4041")
        );
        assert_eq!(
            error(&["--ngrok-api", "4040"], &[]),
            r#"invalid value "4040" for --ngrok-api: expected an http URL such as http://127.0.0.1:4040, or off"#
        );
    }

    #[test]
    fn help_names_every_flag_and_variable() {
        for name in [
            "--host",
            "--port",
            "--reply",
            "--log-format",
            "--reply-command",
            "--reply-fallback",
            "--reply-timeout",
            "--reply-workers",
            "REPLY_COMMAND",
            "REPLY_FALLBACK",
            "REPLY_TIMEOUT",
            "REPLY_WORKERS",
            "--answer-within",
            "ANSWER_WITHIN",
            "--account-sid",
            "TWILIO_ACCOUNT_SID",
            "--api-key",
            "TWILIO_API_KEY",
            "TWILIO_API_SECRET",
            "--api-url",
            "TWILIO_API_URL",
            "--ngrok-api",
            "NGROK_API_URL",
            "HOST",
            "PORT",
            "REPLY",
            "LOG_FORMAT",
            "RUST_LOG",
        ] {
            assert!(HELP.contains(name), "{name} is missing from --help");
        }
    }
}
