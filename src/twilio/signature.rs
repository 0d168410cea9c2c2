//! Twilio request signatures: `X-Twilio-Signature`, checked exactly as
//! Twilio's official helper libraries check it (twilio-python's
//! `RequestValidator`, twilio-node's `validateRequest`).
//!
//! Everything here is a pure function of the URL Twilio requested, the
//! request's parameters, the headers and the secrets; the server only
//! gathers those and acts on the [`Verdict`].
//!
//! The signed string is the full URL, then, for a form-encoded `POST`, every
//! parameter name followed by its value: names in byte order, the values of a
//! repeated name sorted and each written once. HMAC-SHA1 (or HMAC-SHA256 when
//! `X-Twilio-Webhooks-Signature-Settings` names it) of that string, in Base64,
//! must equal the header. Like the libraries, the URL is tried as given with
//! the port removed and with the scheme's default port added, because Twilio
//! signs either form.

use std::borrow::Cow;
use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// The header that carries the signature.
pub const SIGNATURE_HEADER: &str = "X-Twilio-Signature";

/// The header Twilio adds to requests signed with a SharedKey:
/// `key=<id>,algorithm=<algorithm>`.
pub const SETTINGS_HEADER: &str = "X-Twilio-Webhooks-Signature-Settings";

/// The environment variable holding the account Auth Token(s).
pub const AUTH_TOKEN_VAR: &str = "TWILIO_AUTH_TOKEN";

/// The environment variable holding the webhook SharedKey secret(s).
pub const SHARED_KEY_VAR: &str = "TWILIO_WEBHOOK_SHARED_KEY";

/// A signing secret: an Auth Token or a SharedKey secret. Neither `Debug` nor
/// any log ever shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Box<[u8]>);

impl Secret {
    /// Wraps the text of a secret.
    pub fn new(text: &str) -> Secret {
        Secret(text.as_bytes().into())
    }

    /// The value of an `Authorization` header for HTTP Basic credentials,
    /// `user` with this secret as its password: `Basic ` and the Base64 of
    /// `user:secret`.
    pub fn basic_auth(&self, user: &str) -> String {
        let mut credentials = user.as_bytes().to_vec();
        credentials.push(b':');
        credentials.extend_from_slice(&self.0);
        format!("Basic {}", STANDARD.encode(credentials))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// The secrets requests are checked with. Each list holds one secret, or two
/// while one replaces the other; a match with either passes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Keys {
    /// Secrets for requests signed with the account Auth Token (no
    /// [`SETTINGS_HEADER`]), from [`AUTH_TOKEN_VAR`].
    pub auth_tokens: Vec<Secret>,
    /// Secrets for requests that carry [`SETTINGS_HEADER`], from
    /// [`SHARED_KEY_VAR`].
    pub shared_keys: Vec<Secret>,
}

impl Keys {
    /// Whether no secret is set, which turns validation off.
    pub fn is_empty(&self) -> bool {
        self.auth_tokens.is_empty() && self.shared_keys.is_empty()
    }
}

/// The largest number of values a secret variable may hold.
pub const MAX_SECRETS: usize = 2;

/// Reads a secret variable: one value, or two separated by a comma.
///
/// # Errors
///
/// Fails, naming the variable and never the value, when the variable is set
/// but empty, holds an empty value, or holds more than [`MAX_SECRETS`] values.
pub fn parse_secrets(var: &'static str, text: &str) -> Result<Vec<Secret>, SecretsError> {
    let values: Vec<&str> = text.split(',').map(str::trim).collect();
    if values.iter().any(|value| value.is_empty()) {
        return Err(SecretsError {
            var,
            problem: "is empty or holds an empty value",
        });
    }
    if values.len() > MAX_SECRETS {
        return Err(SecretsError {
            var,
            problem: "holds more than two comma-separated values (two allow a rotation)",
        });
    }
    Ok(values.into_iter().map(Secret::new).collect())
}

/// A secret variable that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretsError {
    var: &'static str,
    problem: &'static str,
}

impl fmt::Display for SecretsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.var, self.problem)
    }
}

impl std::error::Error for SecretsError {}

/// The signing algorithms the libraries know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// HMAC-SHA1: the Auth Token signature, and the default.
    HmacSha1,
    /// HMAC-SHA256: named by a SharedKey's settings header.
    HmacSha256,
}

impl Algorithm {
    /// The algorithm a [`SETTINGS_HEADER`] value names, read like twilio-python
    /// does: the first comma-separated `algorithm=` part with a non-blank
    /// value, compared without regard to case; HMAC-SHA1 when there is none.
    ///
    /// # Errors
    ///
    /// Returns the name of an algorithm the libraries do not know.
    pub fn from_settings(settings: &str) -> Result<Algorithm, String> {
        let named = settings.split(',').find_map(|part| {
            let (name, value) = part.split_once('=')?;
            let value = value.trim();
            (name.trim() == "algorithm" && !value.is_empty()).then_some(value)
        });
        match named {
            None => Ok(Algorithm::HmacSha1),
            Some(name) if name.eq_ignore_ascii_case("HMAC_SHA1") => Ok(Algorithm::HmacSha1),
            Some(name) if name.eq_ignore_ascii_case("HMAC_SHA256") => Ok(Algorithm::HmacSha256),
            Some(name) => Err(name.to_owned()),
        }
    }
}

/// What the signature covers besides the URL.
#[derive(Debug, Clone, Copy)]
pub enum Payload<'a> {
    /// A form-encoded `POST` body: its parameters are signed.
    Form(&'a [u8]),
    /// Any other body: only a `bodySHA256` in the URL covers it.
    Raw(&'a [u8]),
    /// No body (`GET`, `HEAD`): the parameters are in the signed URL.
    Nothing,
}

/// The outcome of checking a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The signature is Twilio's.
    Valid,
    /// The request has no [`SIGNATURE_HEADER`].
    Missing,
    /// No secret and no form of the URL gives the signature sent.
    NoMatch,
    /// The body does not match the `bodySHA256` the URL carries.
    BodyHashMismatch,
    /// The settings header names an algorithm the libraries do not know.
    UnknownAlgorithm(String),
    /// The request is signed with a kind of secret that is not set; holds
    /// the variable that would set it.
    NoSecret(&'static str),
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Valid => f.write_str("valid signature"),
            Verdict::Missing => write!(f, "no {SIGNATURE_HEADER} header"),
            Verdict::NoMatch => write!(f, "{SIGNATURE_HEADER} does not match"),
            Verdict::BodyHashMismatch => {
                f.write_str("the body does not match the URL's bodySHA256")
            }
            Verdict::UnknownAlgorithm(name) => write!(
                f,
                "{SETTINGS_HEADER} names an unknown algorithm \"{}\"",
                crate::logging::Escaped(name)
            ),
            Verdict::NoSecret(var) => write!(
                f,
                "the request is signed with a secret from {var}, which is not set"
            ),
        }
    }
}

/// Checks a request: `url` is the full URL Twilio requested, `signature`
/// and `settings` the values of [`SIGNATURE_HEADER`] and [`SETTINGS_HEADER`].
pub fn check(
    keys: &Keys,
    url: &str,
    payload: Payload<'_>,
    signature: Option<&str>,
    settings: Option<&str>,
) -> Verdict {
    let Some(signature) = signature else {
        return Verdict::Missing;
    };
    let (secrets, algorithm) = match settings {
        None => (&keys.auth_tokens, Algorithm::HmacSha1),
        Some(settings) => match Algorithm::from_settings(settings) {
            Ok(algorithm) => (&keys.shared_keys, algorithm),
            Err(name) => return Verdict::UnknownAlgorithm(name),
        },
    };
    if secrets.is_empty() {
        return Verdict::NoSecret(if settings.is_some() {
            SHARED_KEY_VAR
        } else {
            AUTH_TOKEN_VAR
        });
    }
    let params = match payload {
        Payload::Form(body) => signed_params(body),
        Payload::Raw(body) => {
            if body_hash(url).is_some_and(|expected| !sha256_hex_equals(body, expected)) {
                return Verdict::BodyHashMismatch;
            }
            Vec::new()
        }
        Payload::Nothing => Vec::new(),
    };
    if is_valid(url, &params, signature, secrets, algorithm) {
        Verdict::Valid
    } else {
        Verdict::NoMatch
    }
}

/// Whether `signature` is what Twilio sends for `url` and `params` (as
/// returned by [`signed_params`]) signed with one of `secrets`.
pub fn is_valid(
    url: &str,
    params: &[(Cow<'_, str>, Cow<'_, str>)],
    signature: &str,
    secrets: &[Secret],
    algorithm: Algorithm,
) -> bool {
    // Base64 in its one canonical form (padding required, no stray bits),
    // so that comparing bytes is the same as the libraries comparing text.
    let Ok(tag) = STANDARD.decode(signature) else {
        return false;
    };
    let Some(urls) = url_forms(url) else {
        return false;
    };
    secrets.iter().any(|secret| {
        urls.iter().any(|url| match algorithm {
            Algorithm::HmacSha1 => verify::<Hmac<Sha1>>(secret, url, params, &tag),
            Algorithm::HmacSha256 => verify::<Hmac<Sha256>>(secret, url, params, &tag),
        })
    })
}

fn verify<M: Mac + KeyInit>(
    secret: &Secret,
    url: &str,
    params: &[(Cow<'_, str>, Cow<'_, str>)],
    tag: &[u8],
) -> bool {
    // Constant-time comparison.
    signer::<M>(secret, url, params).is_some_and(|mac| mac.verify_slice(tag).is_ok())
}

/// The HMAC of `url` followed by every parameter name and value, in the
/// order given: what Twilio signs.
fn signer<M: Mac + KeyInit>(
    secret: &Secret,
    url: &str,
    params: &[(Cow<'_, str>, Cow<'_, str>)],
) -> Option<M> {
    // HMAC takes keys of any length; a refusal would only mean "no match".
    let mut mac = <M as KeyInit>::new_from_slice(&secret.0).ok()?;
    mac.update(url.as_bytes());
    for (name, value) in params {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    Some(mac)
}

/// The `X-Twilio-Signature` Twilio sends for a request to `url` with the
/// form body `form` (empty for a `GET`, whose parameters are in the URL),
/// signed with `secret` (an Auth Token) by HMAC-SHA1: the same computation
/// [`check`] repeats.
pub fn sign(secret: &Secret, url: &str, form: &[u8]) -> String {
    let params = signed_params(form);
    // HMAC-SHA1 takes keys of any length.
    let tag = signer::<Hmac<Sha1>>(secret, url, &params)
        .map(|mac| mac.finalize().into_bytes().to_vec())
        .unwrap_or_default();
    STANDARD.encode(tag)
}

/// The parameters of a form body in signing order: sorted by name, then by
/// value, each name and value pair once.
pub fn signed_params(form: &[u8]) -> Vec<(Cow<'_, str>, Cow<'_, str>)> {
    let mut params: Vec<_> = form_urlencoded::parse(form).collect();
    params.sort_unstable();
    params.dedup();
    params
}

/// The full URL Twilio requested: `public_url` (scheme, host, optional port
/// and path prefix) when configured, else the scheme from
/// `X-Forwarded-Proto` (default `http`) and the `Host` header; then the
/// request target exactly as received. `None` without a public URL or a
/// `Host` header.
pub fn request_url(
    public_url: Option<&str>,
    forwarded_proto: Option<&str>,
    host: Option<&str>,
    target: &str,
) -> Option<String> {
    if let Some(base) = public_url {
        return Some(format!("{base}{target}"));
    }
    let host = host?;
    // A chain of proxies lists the client-facing scheme first.
    let scheme = forwarded_proto
        .and_then(|value| value.split(',').next())
        .map(str::trim)
        .filter(|scheme| !scheme.is_empty())
        .unwrap_or("http")
        .to_ascii_lowercase();
    Some(format!("{scheme}://{host}{target}"))
}

/// The two forms of `url` the libraries check: without its port, and with
/// the scheme's default port (443 for https, 80 otherwise). `None` when the
/// port is not a number from 0 to 65535, where twilio-python raises an error.
///
/// This follows Python's `urlparse(url).geturl()`, which the reference
/// validator goes through: tabs and line breaks are dropped, the scheme is
/// lowercased, and an empty query (`?`), fragment (`#`) or path parameter
/// (`;`) is dropped.
pub fn url_forms(url: &str) -> Option<[String; 2]> {
    let url: Cow<'_, str> = if url.contains(['\t', '\r', '\n']) {
        Cow::Owned(url.replace(['\t', '\r', '\n'], ""))
    } else {
        Cow::Borrowed(url)
    };
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let netloc_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (netloc, rest) = rest.split_at(netloc_end);
    let (rest, fragment) = rest.split_once('#').unwrap_or((rest, ""));
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let path = path_without_empty_params(path);
    let tail = {
        let mut tail = String::from(path);
        if !query.is_empty() {
            tail.push('?');
            tail.push_str(query);
        }
        if !fragment.is_empty() {
            tail.push('#');
            tail.push_str(fragment);
        }
        tail
    };
    let has_port = match port_of(netloc)? {
        Some(port) => port != 0,
        None => false,
    };
    let as_given = format!("{scheme}://{netloc}{tail}");
    if has_port {
        // twilio-python keeps what comes before the first colon.
        let host = netloc.split(':').next().unwrap_or_default();
        Some([format!("{scheme}://{host}{tail}"), as_given])
    } else {
        let port = if scheme == "https" { 443 } else { 80 };
        Some([format!("{scheme}://{netloc}:{port}{tail}"), as_given])
    }
}

/// The port of a network location as Python reads it: `Some(None)` without
/// one, `None` when it is not a number from 0 to 65535.
fn port_of(netloc: &str) -> Option<Option<u16>> {
    let hostinfo = netloc.rsplit_once('@').map_or(netloc, |(_, host)| host);
    let port = match hostinfo.split_once('[') {
        Some((_, bracketed)) => bracketed
            .split_once(']')
            .and_then(|(_, after)| after.split_once(':'))
            .map(|(_, port)| port),
        None => hostinfo.split_once(':').map(|(_, port)| port),
    };
    match port {
        None | Some("") => Some(None),
        Some(port) if port.bytes().all(|b| b.is_ascii_digit()) => port.parse().ok().map(Some),
        Some(_) => None,
    }
}

/// Python's `urlparse` splits `;params` off the last path segment and
/// `geturl` drops them when empty.
fn path_without_empty_params(path: &str) -> &str {
    let last_segment = path.rsplit_once('/').map_or(path, |(_, last)| last);
    match last_segment.strip_suffix(';') {
        // The params start at the segment's first `;`: here, its last byte.
        Some(before) if !before.contains(';') => &path[..path.len() - 1],
        _ => path,
    }
}

/// The first non-blank `bodySHA256` of the URL's query, as Python's
/// `parse_qs` reads it.
fn body_hash(url: &str) -> Option<Cow<'_, str>> {
    let (_, query) = url.split_once('?')?;
    let query = query.split_once('#').map_or(query, |(query, _)| query);
    form_urlencoded::parse(query.as_bytes())
        .find(|(name, value)| name == "bodySHA256" && !value.is_empty())
        .map(|(_, value)| value)
}

fn sha256_hex_equals(body: &[u8], expected: Cow<'_, str>) -> bool {
    let digest = Sha256::digest(body);
    let mut hex = String::with_capacity(64);
    for byte in digest.iter() {
        hex.push(char::from(b"0123456789abcdef"[usize::from(byte >> 4)]));
        hex.push(char::from(b"0123456789abcdef"[usize::from(byte & 15)]));
    }
    hex == expected
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_forms_add_or_remove_the_default_port() {
        assert_eq!(
            url_forms("https://abc.ngrok-free.app/whatsapp").unwrap(),
            [
                "https://abc.ngrok-free.app:443/whatsapp",
                "https://abc.ngrok-free.app/whatsapp"
            ]
        );
        assert_eq!(
            url_forms("https://abc.ngrok-free.app:443/whatsapp?a=1").unwrap(),
            [
                "https://abc.ngrok-free.app/whatsapp?a=1",
                "https://abc.ngrok-free.app:443/whatsapp?a=1"
            ]
        );
        assert_eq!(
            url_forms("http://localhost:8767/whatsapp").unwrap(),
            [
                "http://localhost/whatsapp",
                "http://localhost:8767/whatsapp"
            ]
        );
        assert_eq!(
            url_forms("http://example.com").unwrap(),
            ["http://example.com:80", "http://example.com"]
        );
    }

    #[test]
    fn url_forms_normalise_like_python_geturl() {
        assert_eq!(
            url_forms("HTTPS://Example.com/whatsapp?#").unwrap()[1],
            "https://Example.com/whatsapp"
        );
        assert_eq!(url_forms("http://h/a;?x=1").unwrap()[1], "http://h/a?x=1");
        assert_eq!(
            url_forms("http://h/a;b/c;d").unwrap()[1],
            "http://h/a;b/c;d"
        );
        // Only the last segment's params, and only when they are empty.
        assert_eq!(url_forms("http://h/a;/b").unwrap()[1], "http://h/a;/b");
        assert_eq!(url_forms("http://h/a;b;").unwrap()[1], "http://h/a;b;");
        assert_eq!(url_forms("http://h;").unwrap()[1], "http://h;");
        assert_eq!(url_forms("http://h/a\tb\r\nc").unwrap()[1], "http://h/abc");
        assert_eq!(
            url_forms("http://h/p?q=1#f").unwrap()[1],
            "http://h/p?q=1#f"
        );
    }

    #[test]
    fn url_forms_refuse_ports_python_cannot_read() {
        assert!(url_forms("https://h:abc/").is_none());
        assert!(url_forms("https://h:65536/").is_none());
        assert!(url_forms("https://h:1:2/").is_none());
        // Python 3.11: "Port could not be cast to integer value as '+80'".
        assert!(url_forms("https://h:+80/").is_none());
        assert!(url_forms("no-scheme/whatsapp").is_none());
        // An empty port or port 0 counts as none.
        assert_eq!(url_forms("https://h:/x").unwrap()[0], "https://h::443/x");
        assert_eq!(url_forms("https://h:0/x").unwrap()[0], "https://h:0:443/x");
        // Bracketed IPv6 hosts keep what twilio-python keeps.
        assert_eq!(
            url_forms("http://[::1]:8767/x").unwrap(),
            ["http://[/x", "http://[::1]:8767/x"]
        );
    }

    #[test]
    fn params_sort_by_name_then_value_and_repeat_once() {
        let params = signed_params(b"b=2&a=z&a=y&c=&a=y&B=1");
        let flat: Vec<_> = params.iter().map(|(n, v)| format!("{n}={v}")).collect();
        assert_eq!(flat, ["B=1", "a=y", "a=z", "b=2", "c="]);
    }

    #[test]
    fn params_sort_by_bytes_not_by_locale() {
        let params = signed_params("é=1&z=2&Z=3&_=4".as_bytes());
        let names: Vec<_> = params.iter().map(|(n, _)| n.as_ref()).collect();
        assert_eq!(names, ["Z", "_", "z", "é"]);
    }

    #[test]
    fn settings_header_selects_the_algorithm_like_twilio_python() {
        use Algorithm::*;
        for (settings, expected) in [
            ("", Ok(HmacSha1)),
            ("key=webhooks_sharedkey_1", Ok(HmacSha1)),
            ("key=k,algorithm=HMAC_SHA256", Ok(HmacSha256)),
            ("algorithm = hmac_sha256 ,key=k", Ok(HmacSha256)),
            ("key=k,algorithm=HMAC_SHA1", Ok(HmacSha1)),
            ("key=k,algorithm=", Ok(HmacSha1)),
            ("algorithm=,algorithm=HMAC_SHA256", Ok(HmacSha256)),
            ("Algorithm=HMAC_SHA256", Ok(HmacSha1)),
            ("key=k,algorithm=HMAC_SHA512", Err("HMAC_SHA512".to_owned())),
        ] {
            assert_eq!(Algorithm::from_settings(settings), expected, "{settings:?}");
        }
    }

    #[test]
    fn request_url_prefers_the_public_url_then_forwarded_proto_and_host() {
        assert_eq!(
            request_url(
                Some("https://abc.ngrok-free.app"),
                Some("http"),
                Some("localhost:8767"),
                "/whatsapp?x=1"
            )
            .unwrap(),
            "https://abc.ngrok-free.app/whatsapp?x=1"
        );
        assert_eq!(
            request_url(
                None,
                Some("HTTPS, http"),
                Some("abc.ngrok-free.app"),
                "/whatsapp"
            )
            .unwrap(),
            "https://abc.ngrok-free.app/whatsapp"
        );
        assert_eq!(
            request_url(None, None, Some("localhost:8767"), "/whatsapp").unwrap(),
            "http://localhost:8767/whatsapp"
        );
        assert_eq!(request_url(None, Some("https"), None, "/whatsapp"), None);
    }

    #[test]
    fn secrets_hold_one_or_two_values() {
        assert_eq!(
            parse_secrets(AUTH_TOKEN_VAR, "abc").unwrap(),
            [Secret::new("abc")]
        );
        assert_eq!(
            parse_secrets(AUTH_TOKEN_VAR, "new, old").unwrap(),
            [Secret::new("new"), Secret::new("old")]
        );
        for bad in ["", " ", "a,", ",a", "a,,b"] {
            assert_eq!(
                parse_secrets(AUTH_TOKEN_VAR, bad).unwrap_err().to_string(),
                "TWILIO_AUTH_TOKEN is empty or holds an empty value"
            );
        }
        assert_eq!(
            parse_secrets(SHARED_KEY_VAR, "a,b,c")
                .unwrap_err()
                .to_string(),
            "TWILIO_WEBHOOK_SHARED_KEY holds more than two comma-separated values (two allow a rotation)"
        );
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let keys = Keys {
            auth_tokens: vec![Secret::new("hunter2")],
            shared_keys: vec![],
        };
        let debug = format!("{keys:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("Secret(..)"));
    }

    fn sign(url: &str, body: &str, secret: &str) -> String {
        super::sign(&Secret::new(secret), url, body.as_bytes())
    }

    #[test]
    fn signing_gives_the_official_signature_of_twilios_docs_example() {
        // The example of twilio-python's tests and Twilio's documentation.
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        let form = "CallSid=CA1234567890ABCDE&Caller=%2B12349013030&Digits=1234&From=%2B12349013030&To=%2B18005551212";
        assert_eq!(
            super::sign(&Secret::new("12345"), url, form.as_bytes()),
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        );
    }

    fn keys(tokens: &[&str]) -> Keys {
        Keys {
            auth_tokens: tokens.iter().map(|t| Secret::new(t)).collect(),
            shared_keys: vec![],
        }
    }

    const URL: &str = "https://abc.ngrok-free.app/whatsapp";

    #[test]
    fn either_of_two_tokens_passes() {
        let body = "From=a&Body=b";
        let old = sign(URL, body, "old");
        let new = sign(URL, body, "new");
        let both = keys(&["new", "old"]);
        let form = Payload::Form(body.as_bytes());
        assert_eq!(check(&both, URL, form, Some(&old), None), Verdict::Valid);
        assert_eq!(check(&both, URL, form, Some(&new), None), Verdict::Valid);
        assert_eq!(
            check(&keys(&["new"]), URL, form, Some(&old), None),
            Verdict::NoMatch
        );
    }

    #[test]
    fn a_signature_must_be_canonical_base64_of_the_right_length() {
        let body = "From=a";
        let good = sign(URL, body, "t");
        let form = Payload::Form(body.as_bytes());
        let keys = keys(&["t"]);
        assert_eq!(check(&keys, URL, form, Some(&good), None), Verdict::Valid);
        for bad in [
            good.trim_end_matches('='),
            &format!(" {good}"),
            &format!("{good}\n"),
            &good[..good.len() - 4],
            "",
            "not base64!",
        ] {
            assert_eq!(
                check(&keys, URL, form, Some(bad), None),
                Verdict::NoMatch,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn missing_header_wrong_kind_of_secret_and_unknown_algorithm_are_told_apart() {
        let form = Payload::Form(b"");
        let tokens = keys(&["t"]);
        assert_eq!(check(&tokens, URL, form, None, None), Verdict::Missing);
        assert_eq!(
            check(
                &tokens,
                URL,
                form,
                Some("x"),
                Some("key=k,algorithm=HMAC_SHA256")
            ),
            Verdict::NoSecret(SHARED_KEY_VAR)
        );
        let shared = Keys {
            auth_tokens: vec![],
            shared_keys: vec![Secret::new("k")],
        };
        assert_eq!(
            check(&shared, URL, form, Some("x"), None),
            Verdict::NoSecret(AUTH_TOKEN_VAR)
        );
        assert_eq!(
            check(&shared, URL, form, Some("x"), Some("algorithm=MD5")),
            Verdict::UnknownAlgorithm("MD5".to_owned())
        );
    }

    #[test]
    fn a_raw_body_is_covered_by_body_sha256_in_the_url() {
        let body = br#"{"Body":"hi"}"#;
        let real = {
            let digest = Sha256::digest(body);
            digest
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        };
        let url = format!("{URL}?bodySHA256={real}");
        let signature = sign(&url, "", "t");
        let keys = keys(&["t"]);
        assert_eq!(
            check(&keys, &url, Payload::Raw(body), Some(&signature), None),
            Verdict::Valid
        );
        assert_eq!(
            check(&keys, &url, Payload::Raw(b"{}"), Some(&signature), None),
            Verdict::BodyHashMismatch
        );
        // Like parse_qs: the first bodySHA256 that is not blank, wherever
        // it is in the query.
        for query in [
            format!("x=1&bodySHA256={real}"),
            format!("bodySHA256=&bodySHA256={real}&bodySHA256=0"),
        ] {
            let url = format!("{URL}?{query}#f");
            let signature = sign(&url, "", "t");
            assert_eq!(
                check(&keys, &url, Payload::Raw(body), Some(&signature), None),
                Verdict::Valid,
                "{query}"
            );
        }
        // Without bodySHA256 a raw body is not signed at all.
        let plain = sign(URL, "", "t");
        assert_eq!(
            check(&keys, URL, Payload::Raw(b"anything"), Some(&plain), None),
            Verdict::Valid
        );
    }
}
