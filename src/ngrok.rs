//! ngrok, found rather than typed: `ngrok http 8767` runs an agent with a
//! local API (`http://127.0.0.1:4040/api/tunnels`, JSON, no
//! authentication) that lists its tunnels. The server asks it, when no
//! `PUBLIC_URL` is set, for the tunnels to its own port: it logs the exact
//! URL to paste into the Twilio Console, and accepts signatures made for a
//! tunnel's URL even when ngrok rewrites `Host`. `check` asks it too, to
//! go through the tunnel.
//!
//! The agent is asked with a short timeout, never on the request loop: on
//! a thread of its own at start-up, and again, in the background, when a
//! request comes through a tunnel not known yet. No agent, or one that
//! answers garbage or slowly, changes nothing but one `debug` line.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::thread;
use std::time::{Duration, Instant};

use log::{debug, info};

use crate::logging::Escaped;
use crate::routes::{STATUS_PATH, WEBHOOK_PATH};

/// Where `ngrok http` serves its API.
pub const DEFAULT_AGENT_API: &str = "http://127.0.0.1:4040";

/// How long the agent may take to answer.
pub const PATIENCE: Duration = Duration::from_millis(500);

/// How often, at most, the agent is asked again about one host.
const ASK_AGAIN_AFTER: Duration = Duration::from_secs(5);

/// How many hosts asked about are remembered (a client choosing `Host`
/// freely must not grow the memory).
const HOSTS_REMEMBERED: usize = 64;

/// Why the agent's list of tunnels could not be had.
#[derive(Debug)]
pub enum AgentError {
    /// No agent answered at `url` (none runs, or it took too long).
    Unreachable {
        /// The URL asked.
        url: String,
        /// What went wrong.
        error: ureq::Error,
    },
    /// The agent's answer at `url` could not be read whole.
    Unreadable {
        /// The URL asked.
        url: String,
        /// What went wrong.
        error: ureq::Error,
    },
    /// What answered at `url` is not ngrok's list of tunnels.
    NotTunnels {
        /// The URL asked.
        url: String,
    },
}

impl fmt::Display for AgentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AgentError::Unreachable { url, error } => {
                write!(f, "no ngrok agent answered at {url}: {error}")
            }
            AgentError::Unreadable { url, error } => {
                write!(
                    f,
                    "the ngrok agent's answer at {url} could not be read: {error}"
                )
            }
            AgentError::NotTunnels { url } => {
                write!(f, "the answer at {url} is not ngrok's list of tunnels")
            }
        }
    }
}

impl std::error::Error for AgentError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AgentError::Unreachable { error, .. } | AgentError::Unreadable { error, .. } => {
                Some(error)
            }
            AgentError::NotTunnels { .. } => None,
        }
    }
}

/// The public URLs (`https://abc123.ngrok-free.app`) of the tunnels the
/// agent at `api` forwards to local `port`, https first.
///
/// # Errors
///
/// Says why the agent could not be asked, or what it answered instead of
/// its list of tunnels.
pub fn tunnels_to(api: &str, port: u16) -> Result<Vec<String>, AgentError> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(PATIENCE))
        .build()
        .into();
    let url = format!("{}/api/tunnels", api.trim_end_matches('/'));
    let mut response = match agent.get(&url).call() {
        Ok(response) => response,
        Err(error) => return Err(AgentError::Unreachable { url, error }),
    };
    let body = match response
        .body_mut()
        .with_config()
        .limit(1024 * 1024)
        .read_to_vec()
    {
        Ok(body) => body,
        Err(error) => return Err(AgentError::Unreadable { url, error }),
    };
    tunnels_in(&body, port).ok_or(AgentError::NotTunnels { url })
}

/// The public URLs of the tunnels to `port` in the agent's answer `body`,
/// https first; `None` if it is not the agent's list of tunnels.
pub fn tunnels_in(body: &[u8], port: u16) -> Option<Vec<String>> {
    let json: serde_json::Value = serde_json::from_slice(body).ok()?;
    let mut urls: Vec<String> = json
        .get("tunnels")?
        .as_array()?
        .iter()
        .filter(|tunnel| {
            tunnel
                .pointer("/config/addr")
                .and_then(serde_json::Value::as_str)
                .is_some_and(|addr| forwards_to(addr, port))
        })
        .filter_map(|tunnel| tunnel.get("public_url")?.as_str())
        .filter(|url| url.starts_with("https://") || url.starts_with("http://"))
        .map(|url| url.trim_end_matches('/').to_owned())
        .collect();
    urls.sort_by_key(|url| !url.starts_with("https://"));
    urls.dedup();
    Some(urls)
}

/// Whether a tunnel's `addr` (`http://localhost:8767`, `localhost:8767`,
/// `127.0.0.1:8767`, `8767` ...) is this machine's `port`.
fn forwards_to(addr: &str, port: u16) -> bool {
    let addr = addr
        .strip_prefix("http://")
        .or_else(|| addr.strip_prefix("https://"))
        .unwrap_or(addr)
        .trim_end_matches('/');
    let (host, tunnel_port) = match addr.rsplit_once(':') {
        Some((host, tunnel_port)) => (host, tunnel_port),
        None => ("", addr),
    };
    let local = matches!(
        host.trim_start_matches('[').trim_end_matches(']'),
        "" | "localhost" | "127.0.0.1" | "::1" | "0.0.0.0"
    );
    local && tunnel_port.parse() == Ok(port)
}

/// The tunnels to this server that the agent listed, kept up to date.
#[derive(Debug)]
pub struct Tunnels {
    api: String,
    port: u16,
    known: RwLock<Vec<String>>,
    /// Whether a thread is asking the agent.
    asking: AtomicBool,
    /// Whether the agent is to be asked (again): an ask already under way
    /// may have begun before the tunnel a request came through existed.
    wanted: AtomicBool,
    /// When the agent was last asked about each host.
    asked: Mutex<HashMap<String, Instant>>,
}

impl Tunnels {
    /// Tunnels to local `port`, to be asked of the agent at `api`.
    pub fn new(api: &str, port: u16) -> Arc<Tunnels> {
        Arc::new(Tunnels {
            api: api.to_owned(),
            port,
            known: RwLock::new(Vec::new()),
            asking: AtomicBool::new(false),
            wanted: AtomicBool::new(false),
            asked: Mutex::new(HashMap::new()),
        })
    }

    /// The public URLs known.
    pub fn known(&self) -> Vec<String> {
        self.known
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Whether `host` (a request's `Host` or `X-Forwarded-Host`) is the
    /// host of a tunnel known.
    pub fn knows_host(&self, host: &str) -> bool {
        self.known
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .any(|url| url.split_once("://").is_some_and(|(_, rest)| rest == host))
    }

    /// Asks the agent, on a thread of its own, or once more on the thread
    /// asking it already; logs the URLs to paste when they are new.
    pub fn ask(self: &Arc<Self>) {
        self.wanted.store(true, Ordering::Release);
        if self.asking.swap(true, Ordering::AcqRel) {
            return;
        }
        let tunnels = Arc::clone(self);
        let started = thread::Builder::new().name("ngrok".into()).spawn(move || {
            loop {
                while tunnels.wanted.swap(false, Ordering::AcqRel) {
                    tunnels.refresh();
                }
                tunnels.asking.store(false, Ordering::Release);
                // Wanted again after the last look, with no thread to see
                // it unless this one goes on.
                if !tunnels.wanted.load(Ordering::Acquire)
                    || tunnels.asking.swap(true, Ordering::AcqRel)
                {
                    break;
                }
            }
        });
        if started.is_err() {
            self.asking.store(false, Ordering::Release);
        }
    }

    /// Asks the agent, as [`ask`](Tunnels::ask) does, because a request came
    /// for `host`, which no tunnel known has: unless it was asked about
    /// `host` a moment ago.
    pub fn ask_about(self: &Arc<Self>, host: &str) {
        {
            let mut asked = self.asked.lock().unwrap_or_else(PoisonError::into_inner);
            if asked
                .get(host)
                .is_some_and(|at| at.elapsed() < ASK_AGAIN_AFTER)
            {
                return;
            }
            if asked.len() >= HOSTS_REMEMBERED {
                asked.retain(|_, at| at.elapsed() < ASK_AGAIN_AFTER);
            }
            if asked.len() >= HOSTS_REMEMBERED {
                return;
            }
            asked.insert(host.to_owned(), Instant::now());
        }
        self.ask();
    }

    /// Asks the agent now, on this thread, and logs what is new.
    pub fn refresh(&self) {
        match tunnels_to(&self.api, self.port) {
            Ok(urls) => {
                let new: Vec<String> = {
                    let known = self.known.read().unwrap_or_else(PoisonError::into_inner);
                    urls.iter()
                        .filter(|url| !known.contains(url))
                        .cloned()
                        .collect()
                };
                if let Some(url) = new
                    .iter()
                    .find(|url| url.starts_with("https://"))
                    .or(new.first())
                {
                    info!(
                        "ngrok forwards {} to this server: paste {}{WEBHOOK_PATH} into the \
                         Sandbox's \"When a message comes in\" (and {}{STATUS_PATH} into \"Status \
                         callback URL\"); signatures for it are accepted",
                        Escaped(url),
                        Escaped(url),
                        Escaped(url)
                    );
                }
                if urls.is_empty() {
                    debug!(
                        "the ngrok agent at {} lists no tunnel to port {}",
                        self.api, self.port
                    );
                }
                *self.known.write().unwrap_or_else(PoisonError::into_inner) = urls;
            }
            Err(why) => debug!("{why}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LISTED: &str = r#"{"tunnels":[
        {"name":"command_line","public_url":"https://abc123.ngrok-free.app","proto":"https","config":{"addr":"http://localhost:8767","inspect":true}},
        {"name":"other","public_url":"https://other.ngrok-free.app","proto":"https","config":{"addr":"http://localhost:3000","inspect":true}},
        {"name":"plain","public_url":"http://abc123.ngrok-free.app","proto":"http","config":{"addr":"localhost:8767","inspect":true}},
        {"name":"tcp","public_url":"tcp://0.tcp.ngrok.io:12345","proto":"tcp","config":{"addr":"localhost:8767"}}
    ],"uri":"/api/tunnels"}"#;

    #[test]
    fn only_the_tunnels_to_this_port_are_taken_https_first() {
        assert_eq!(
            tunnels_in(LISTED.as_bytes(), 8767),
            Some(vec![
                "https://abc123.ngrok-free.app".to_owned(),
                "http://abc123.ngrok-free.app".to_owned()
            ])
        );
        assert_eq!(
            tunnels_in(LISTED.as_bytes(), 3000),
            Some(vec!["https://other.ngrok-free.app".to_owned()])
        );
        assert_eq!(tunnels_in(LISTED.as_bytes(), 9), Some(vec![]));
        assert_eq!(tunnels_in(b"<html>", 8767), None);
        assert_eq!(tunnels_in(br#"{"tunnels": 3}"#, 8767), None);
    }

    #[test]
    fn a_tunnels_addr_names_this_machines_port_in_many_ways() {
        for addr in [
            "http://localhost:8767",
            "https://localhost:8767",
            "localhost:8767",
            "127.0.0.1:8767",
            "http://127.0.0.1:8767/",
            "[::1]:8767",
            "8767",
        ] {
            assert!(forwards_to(addr, 8767), "{addr}");
        }
        for addr in [
            "http://localhost:87670",
            "192.0.2.1:8767",
            "example.com:8767",
            "x",
        ] {
            assert!(!forwards_to(addr, 8767), "{addr}");
        }
    }

    #[test]
    fn no_agent_is_an_error_that_says_so() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .unwrap();
        let error = tunnels_to(&format!("http://{closed}"), 8767)
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("no ngrok agent answered at http://"),
            "{error}"
        );
    }
}
