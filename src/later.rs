//! Later replies: a reply that comes after Twilio stopped waiting for the
//! webhook's answer goes out through the Messages API, one request per
//! message, from the reply worker that ran the handler (never the request
//! loop).
//!
//! `429` and `5xx` answers and network failures are tried again, after
//! `Retry-After` when the API says, else after a delay that doubles from
//! [`FIRST_DELAY`]; at most [`MAX_ATTEMPTS`] attempts within
//! [`MAX_TRYING`], then one `error` line. Any other refusal is not tried
//! again: one `error` line with Twilio's code and message, explained. A
//! WhatsApp reply that would leave after the 24-hour window its message
//! opened is not sent (Twilio would refuse it with 63016): one line says
//! so.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use log::{error, info};
use ureq::Agent;

use crate::handler::{Message, Reply};
use crate::logging::Escaped;
use crate::twilio::errors;
use crate::twilio::messages::{self, Answered, Credentials, Outbound};

/// The most attempts to send one message.
pub const MAX_ATTEMPTS: u32 = 5;

/// The longest time spent trying to send one message.
pub const MAX_TRYING: Duration = Duration::from_secs(60);

/// The wait before the second attempt, when the API asks for none; each
/// later wait is twice the one before.
pub const FIRST_DELAY: Duration = Duration::from_millis(500);

/// The longest wait between two attempts, whatever `Retry-After` says.
pub const MAX_DELAY: Duration = Duration::from_secs(30);

/// How long one attempt may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(15);

/// Sends replies through the Messages API.
pub struct Sender {
    credentials: Credentials,
    status_callback: Option<String>,
    agent: Agent,
    sent: AtomicUsize,
    failed: AtomicUsize,
}

impl Sender {
    /// Sends as `credentials` say; each message asks for its delivery
    /// statuses at `status_callback`, when there is one (the public URL's
    /// `/status`).
    pub fn new(credentials: Credentials, status_callback: Option<String>) -> Sender {
        let agent = Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(ATTEMPT_TIMEOUT))
            .user_agent(concat!("whatsapp-webhook/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Sender {
            credentials,
            status_callback,
            agent,
            sent: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
        }
    }

    /// How many replies went out, and how many could not.
    pub fn counts(&self) -> (usize, usize) {
        (
            self.sent.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }

    /// Counts a reply that could not be sent at all (the server stopped
    /// first).
    pub fn count_unsent(&self, replies: usize) {
        self.failed.fetch_add(replies, Ordering::Relaxed);
    }

    /// Sends `reply`, in order, to whoever sent `message`, from the number
    /// it was sent to; logs each message's SID, or why it was not sent.
    /// Returns whether every message went out.
    pub fn send(&self, message: &Message, reply: &Reply) -> bool {
        let answered = message.sid.as_deref().unwrap_or("(no MessageSid)");
        let (Some(sender), Some(number)) = (&message.from, &message.to) else {
            error!(
                "{} later reply not sent: the message has no From or To to reply to",
                Escaped(answered)
            );
            self.failed.fetch_add(1, Ordering::Relaxed);
            return false;
        };
        // WhatsApp allows a free-form message within 24 hours of the last one
        // the recipient sent: the message says until when.
        let window_ends = message.window_until.as_deref().and_then(parse_time);
        for outgoing in reply.messages() {
            let outbound = Outbound {
                to: outgoing.to.as_deref().unwrap_or(sender),
                from: number,
                body: &outgoing.text,
                media: &outgoing.media,
                status_callback: self.status_callback.as_deref(),
            };
            if !self.send_one(answered, &outbound, window_ends) {
                self.failed.fetch_add(1, Ordering::Relaxed);
                return false;
            }
        }
        self.sent.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Sends one message, trying again when that can help.
    fn send_one(
        &self,
        answered: &str,
        outbound: &Outbound<'_>,
        window_ends: Option<SystemTime>,
    ) -> bool {
        let url = self.credentials.messages_url();
        let authorization = self.credentials.authorization();
        let form = outbound.form();
        let started = Instant::now();
        let mut delay = FIRST_DELAY;
        let mut attempt = 0;
        loop {
            attempt += 1;
            if window_ends.is_some_and(|ends| SystemTime::now() >= ends) {
                error!(
                    "{} later reply not sent: it would leave after the 24-hour window the \
                     message opened (error {})",
                    Escaped(answered),
                    errors::describe("63016")
                );
                return false;
            }
            let (problem, wait) = match self.post(&url, &authorization, &form) {
                Ok(Answered::Created { sid }) => {
                    info!(
                        "{} replied later through the Messages API: {}",
                        Escaped(answered),
                        Escaped(&sid)
                    );
                    return true;
                }
                Ok(Answered::Refused(rejection)) => {
                    error!(
                        "{} later reply not sent: the Messages API answered {rejection}",
                        Escaped(answered)
                    );
                    return false;
                }
                Ok(Answered::Retry { status, after }) => (
                    format!("the Messages API answered {status}"),
                    after.unwrap_or(delay),
                ),
                Err(failure) => (failure, delay),
            };
            let wait = wait.min(MAX_DELAY);
            if attempt >= MAX_ATTEMPTS || started.elapsed() + wait > MAX_TRYING {
                error!(
                    "{} later reply not sent after {attempt} attempts in {:.1}s: {problem}",
                    Escaped(answered),
                    started.elapsed().as_secs_f64()
                );
                return false;
            }
            log::debug!(
                "{} later reply, attempt {attempt}: {problem}; trying again in {:.1}s",
                Escaped(answered),
                wait.as_secs_f64()
            );
            thread::sleep(wait);
            delay *= 2;
        }
    }

    /// One request; a network failure is the error.
    fn post(&self, url: &str, authorization: &str, form: &str) -> Result<Answered, String> {
        let mut response = self
            .agent
            .post(url)
            .header("Authorization", authorization)
            .header("Accept", "application/json")
            .content_type("application/x-www-form-urlencoded")
            .send(form.as_bytes())
            .map_err(|error| format!("the request failed: {error}"))?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("Retry-After")
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
        let body = response
            .body_mut()
            .with_config()
            .limit(64 * 1024)
            .read_to_vec()
            .map_err(|error| format!("the answer could not be read: {error}"))?;
        Ok(messages::read_answer(status, retry_after.as_deref(), &body))
    }
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("credentials", &self.credentials)
            .field("status_callback", &self.status_callback)
            .finish_non_exhaustive()
    }
}

/// An RFC 3339 time, such as a message's `window_until`.
fn parse_time(text: &str) -> Option<SystemTime> {
    let time: jiff::Timestamp = text.parse().ok()?;
    let seconds = u64::try_from(time.as_second()).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_end_is_read_back_from_its_rfc3339_text() {
        let end = parse_time("2026-11-26T10:32:11Z").unwrap();
        assert_eq!(
            end.duration_since(SystemTime::UNIX_EPOCH).unwrap(),
            Duration::from_secs(1_795_689_131)
        );
        assert_eq!(parse_time("yesterday"), None);
    }
}
