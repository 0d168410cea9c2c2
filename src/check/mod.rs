//! `whatsapp-webhook check`: plays Twilio against a webhook, any webhook,
//! and says what Twilio would make of its answer.
//!
//! It sends the request Twilio sends for an inbound WhatsApp message
//! ([`request`], from [`twilio::inbound`](crate::twilio::inbound)), signed
//! with the project's own signing code, the same that verifies; [`send`]s it
//! with ureq as Twilio would, redirects and deadline included; and judges
//! the answer with [`twilio::verdict`](crate::twilio::verdict). The report
//! says which URL was used, what came back, and either what the sender would
//! receive or the error Twilio would log and what to do about it.

pub mod options;
pub mod request;
pub mod send;

use std::collections::hash_map::RandomState;
use std::fmt::Write as _;
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Write};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use options::{Options, Signing, Target};

use crate::ngrok;
use crate::routes::WEBHOOK_PATH;
use crate::twilio::errors;
use crate::twilio::inbound::Ids;
use crate::twilio::verdict::{self, Accepted, Answer, Refusal, Verdict};
use request::Request;
use send::{Answered, Exchange};

/// Runs `check`: prints the curl command `--curl` asks for, or sends the
/// request and writes the report to `out`. Returns whether Twilio would
/// accept the answer (always `true` for `--curl`).
///
/// # Errors
///
/// Fails only when writing to `out` fails.
pub fn run(options: &Options, out: &mut dyn Write) -> io::Result<bool> {
    let through_tunnel = through_tunnel(options);
    let options = through_tunnel.as_ref().unwrap_or(options);
    let ids = Ids {
        message: random_hex(32),
        account: random_hex(32),
    };
    let idempotency = random_hex(32);
    let idempotency = format!(
        "{}-{}-{}-{}-{}",
        &idempotency[..8],
        &idempotency[8..12],
        &idempotency[12..16],
        &idempotency[16..20],
        &idempotency[20..]
    );
    let request = Request::new(options, &ids, &idempotency);
    if options.curl {
        if let Some(why) = unsigned(&options.signing) {
            writeln!(out, "# not signed: {why}")?;
        }
        out.write_all(request.curl().as_bytes())?;
        return Ok(true);
    }
    let exchange = send::send(&request, options.timeout);
    let (report, accepted) = report(options, &request, &exchange);
    out.write_all(report.as_bytes())?;
    Ok(accepted)
}

/// `options` going through ngrok's tunnel to the local server, when they
/// target the local server and the agent lists one to its port.
fn through_tunnel(options: &Options) -> Option<Options> {
    if options.target != Target::Local {
        return None;
    }
    let api = options.ngrok_api.as_deref()?;
    let port = ureq::http::Uri::try_from(options.url.as_str())
        .ok()?
        .port_u16()?;
    let tunnel = ngrok::tunnels_to(api, port).ok()?.into_iter().next()?;
    Some(Options {
        url: format!("{tunnel}{WEBHOOK_PATH}"),
        target: Target::Tunnel(api.to_owned()),
        ..options.clone()
    })
}

/// The report on `exchange`, and whether Twilio would accept the answer.
fn report(options: &Options, request: &Request, exchange: &Exchange) -> (String, bool) {
    let mut out = String::new();
    let method = if options.get { "GET" } else { "POST" };
    let _ = write!(out, "{method} {}", options.url);
    let _ = match &options.target {
        Target::Given => writeln!(out),
        Target::PublicUrl => writeln!(out, " (PUBLIC_URL and {WEBHOOK_PATH}: ngrok included)"),
        Target::Local => writeln!(
            out,
            " (the local server, from HOST and PORT; with ngrok running, check goes through it)"
        ),
        Target::Tunnel(api) => writeln!(
            out,
            " (through the ngrok tunnel to the local server, which ngrok's agent at {api} lists)"
        ),
    };
    let inbound = &options.inbound;
    let channel = if inbound.is_whatsapp() {
        "a WhatsApp message"
    } else {
        "an SMS"
    };
    let _ = write!(
        out,
        "  {channel} {:?} from {} to {}",
        inbound.body, inbound.from, inbound.to
    );
    let _ = match inbound.media.len() {
        0 => writeln!(out),
        count => writeln!(out, ", with {count} media"),
    };
    let _ = match unsigned(&options.signing) {
        None => writeln!(
            out,
            "  signed with TWILIO_AUTH_TOKEN, as Twilio signs this URL"
        ),
        Some(why) => writeln!(out, "  not signed: {why}"),
    };
    for (status, url) in &exchange.redirects {
        let _ = writeln!(out, "  redirected ({status}) to {url}");
    }
    let elapsed = duration(exchange.elapsed);
    let answer = match &exchange.answer {
        Ok(answered) => {
            let _ = writeln!(
                out,
                "answer: {} {}, {}, {}, in {elapsed}",
                answered.status,
                reason(answered.status),
                answered
                    .content_type
                    .as_deref()
                    .unwrap_or("no Content-Type"),
                if answered.too_large {
                    format!("over {} bytes", verdict::MAX_ANSWER_BYTES)
                } else {
                    format!("{} bytes", answered.body.len())
                },
            );
            answered
        }
        Err(refusal) => {
            let _ = writeln!(out, "no answer, after {elapsed}\n");
            let mut refusal = refusal.clone();
            if options.target == Target::Local && refusal.code == Some(11205) {
                refusal.fix = "start the server in a terminal of its own (cargo run --release), \
                               with the same HOST and PORT as here"
                    .to_owned();
            }
            failed(&mut out, &refusal, None);
            return (out, false);
        }
    };
    let verdict = verdict::judge(&Answer {
        status: answer.status,
        content_type: answer.content_type.as_deref(),
        body: &answer.body,
        too_large: answer.too_large,
    });
    out.push('\n');
    match verdict {
        Verdict::Accepted(accepted) => {
            accept(&mut out, &accepted);
            if answer.reply_later && accepted.messages.is_empty() {
                let _ = writeln!(
                    out,
                    "  the server answered in time with no message, and says its reply is still \
                     being made: it will come later, through the Messages API"
                );
            }
            if answer.chunked {
                let _ = writeln!(
                    out,
                    "  note: the answer came in chunks, without a Content-Length; Twilio may cut \
                     off a chunked answer longer than one chunk (error 12100)"
                );
            }
            if let Some((_, url)) = exchange.redirects.last() {
                let _ = writeln!(
                    out,
                    "  note: Twilio follows redirects, but each costs a round trip: configure \
                     {url} in Twilio"
                );
            }
            (out, true)
        }
        Verdict::Refused(mut refusal) => {
            if let Some(fix) = status_fix(options, request, answer) {
                refusal.fix = fix;
            }
            failed(&mut out, &refusal, Some(answer));
            (out, false)
        }
    }
}

/// Says what the sender would receive.
fn accept(out: &mut String, accepted: &Accepted) {
    if accepted.messages.is_empty() {
        let _ = writeln!(out, "OK: Twilio would accept the answer and send no reply.");
    } else {
        let _ = writeln!(
            out,
            "OK: Twilio would accept the answer; the sender would receive:"
        );
    }
    for message in &accepted.messages {
        let _ = write!(out, "  ");
        if let Some(to) = &message.to {
            let _ = write!(out, "(sent to {to}) ");
        }
        let _ = writeln!(out, "{:?}", message.text);
        for url in &message.media {
            let _ = writeln!(out, "    with media {url}");
        }
    }
    if let Some(url) = &accepted.redirect {
        let _ = writeln!(
            out,
            "  then Twilio would fetch more TwiML from {url} (<Redirect>; check does not follow it)"
        );
    }
    for warning in &accepted.warnings {
        let _ = writeln!(out, "  note: {warning}");
    }
}

/// Says why Twilio would fail, and what to do.
fn failed(out: &mut String, refusal: &Refusal, answer: Option<&Answered>) {
    let _ = match refusal.code {
        Some(code) => writeln!(
            out,
            "FAIL: Twilio would log error {code} ({}) and send no reply.",
            title(code)
        ),
        None => writeln!(
            out,
            "FAIL: Twilio would accept the answer, but it is almost certainly not what was meant."
        ),
    };
    let _ = writeln!(out, "  {}", refusal.problem);
    // Without a code, the problem already quotes the answer.
    let shown = answer.filter(|answer| !answer.body.is_empty() && refusal.code.is_some());
    if let Some(answer) = shown {
        let text = String::from_utf8_lossy(&answer.body);
        let excerpt: String = text.chars().take(EXCERPT_CHARS).collect();
        let more = if excerpt.len() < text.len() {
            "..."
        } else {
            ""
        };
        let _ = writeln!(out, "  the answer began: {excerpt:?}{more}");
    }
    let _ = writeln!(out, "  what to do: {}", refusal.fix);
    if let Some(code) = refusal.code {
        let _ = writeln!(out, "  see {}", errors::docs_url(code));
    }
}

/// How much of a refused answer the report shows.
const EXCERPT_CHARS: usize = 300;

/// What to do about a status that is not `2xx`, knowing what was sent.
fn status_fix(options: &Options, request: &Request, answer: &Answered) -> Option<String> {
    if let Some(code) = &answer.ngrok_error {
        return Some(format!(
            "ngrok answered with its error {code}, not the server: see \
             https://ngrok.com/docs/errors/{}/ (is the server running, on the port ngrok \
             forwards to?)",
            code.to_ascii_lowercase()
        ));
    }
    let method = if request.post { "POST" } else { "GET" };
    Some(match (answer.status, &options.signing) {
        // The local server sees the URL as it was called: only the token
        // can differ.
        (401 | 403, Signing::Token(_)) if options.target == Target::Local => {
            "the server refused the signature: TWILIO_AUTH_TOKEN must be the same here and for \
             the server (the Auth Token of the account that owns the number)"
                .to_owned()
        }
        (401 | 403, Signing::Token(_)) => format!(
            "the server refused the signature. Twilio signs the exact URL in its console, here \
             {url}, with the Auth Token of the account. Either the server checked another URL: \
             behind ngrok or a proxy, start it with PUBLIC_URL={base} (whatsapp-webhook logs the \
             URL it checked when it refuses one); or another token: TWILIO_AUTH_TOKEN must be \
             the same here and for the server. A new ngrok address also needs updating in \
             PUBLIC_URL and in Twilio's console.",
            url = options.url,
            base = public_base(&options.url),
        ),
        (401 | 403, Signing::NoToken) => "the server may check signatures: set \
             TWILIO_AUTH_TOKEN to the account's Auth Token (the server's), and check again"
            .to_owned(),
        (401 | 403, Signing::Off) => {
            "the server may check signatures: check again without --no-signature".to_owned()
        }
        (404, _) => format!(
            "nothing answers at this path: put the webhook's path in the URL (whatsapp-webhook \
             answers at {WEBHOOK_PATH})"
        ),
        (405, _) => format!(
            "the server does not take {method} at this URL: set the method Twilio's console \
             uses for the webhook to one it takes"
        ),
        (500..=599, _) => format!(
            "look at the server's log for the error behind the {}",
            answer.status
        ),
        _ => return None,
    })
}

/// The `PUBLIC_URL` that makes whatsapp-webhook check signatures for `url`:
/// the URL up to its webhook path.
fn public_base(url: &str) -> &str {
    let without_query = url.split('?').next().unwrap_or(url);
    without_query
        .strip_suffix(WEBHOOK_PATH)
        .unwrap_or(without_query)
}

/// Why the request is not signed, if it is not.
fn unsigned(signing: &Signing) -> Option<&'static str> {
    match signing {
        Signing::Token(_) => None,
        Signing::NoToken => {
            Some("TWILIO_AUTH_TOKEN is not set (a server that checks signatures answers 403)")
        }
        Signing::Off => Some("--no-signature"),
    }
}

/// The short name of Twilio's error `code`.
fn title(code: u32) -> &'static str {
    errors::explain(code)
        .and_then(|meaning| meaning.split(':').next())
        .unwrap_or("see Twilio's page")
}

/// The reason phrase of `status`, or nothing for one not registered.
fn reason(status: u16) -> &'static str {
    ureq::http::StatusCode::from_u16(status)
        .ok()
        .and_then(|status| status.canonical_reason())
        .unwrap_or("")
}

fn duration(elapsed: Duration) -> String {
    if elapsed < Duration::from_secs(1) {
        format!("{:.1} ms", elapsed.as_secs_f64() * 1000.0)
    } else if elapsed < Duration::from_secs(10) {
        format!("{} ms", elapsed.as_millis())
    } else {
        format!("{:.1} s", elapsed.as_secs_f64())
    }
}

/// `digits` random hexadecimal digits: unique enough for made-up SIDs, not
/// for secrets.
fn random_hex(digits: usize) -> String {
    let mut hex = String::with_capacity(digits + 16);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos());
    while hex.len() < digits {
        // Each RandomState is keyed anew.
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u128(nanos);
        hasher.write_usize(hex.len());
        let _ = write!(hex, "{:016x}", hasher.finish());
    }
    hex.truncate(digits);
    hex
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_ids_have_the_length_asked_and_differ() {
        let (a, b) = (random_hex(32), random_hex(32));
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn the_public_base_is_the_url_up_to_the_webhook_path() {
        assert_eq!(
            public_base("https://abc.ngrok-free.app/whatsapp"),
            "https://abc.ngrok-free.app"
        );
        assert_eq!(
            public_base("https://e.com/bot/whatsapp?x=1"),
            "https://e.com/bot"
        );
        assert_eq!(public_base("https://e.com/hook"), "https://e.com/hook");
    }

    #[test]
    fn error_titles_are_the_first_part_of_the_explanation() {
        assert_eq!(title(11200), "HTTP retrieval failure");
        assert_eq!(title(12300), "invalid Content-Type");
        assert_eq!(title(99999), "see Twilio's page");
    }
}
