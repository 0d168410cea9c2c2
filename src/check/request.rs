//! The HTTP request `check` sends: Twilio's parameters, headers and
//! signature for one inbound message, ready to send or to print as a curl
//! command.

use std::fmt::Write as _;

use crate::check::options::{Options, Signing};
use crate::twilio::inbound::{
    self, FORM_CONTENT_TYPE, HOME_REGION, HOME_REGION_HEADER, IDEMPOTENCY_HEADER, Ids, USER_AGENT,
};
use crate::twilio::signature::{self, SIGNATURE_HEADER, Secret};

/// Twilio's request for one inbound message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `true` for `POST` (parameters in the body), `false` for `GET`
    /// (parameters in the URL).
    pub post: bool,
    /// The URL called, with a `GET`'s parameters.
    pub url: String,
    /// The form body of a `POST`.
    pub body: Option<String>,
    /// The header fields, in order, signature included.
    pub headers: Vec<(&'static str, String)>,
    secret: Option<Secret>,
}

impl Request {
    /// The request for `options`' message, with `ids` for its SIDs and
    /// `idempotency` for [`IDEMPOTENCY_HEADER`].
    pub fn new(options: &Options, ids: &Ids, idempotency: &str) -> Request {
        let params = inbound::encode(&options.inbound.params(ids));
        let (url, body) = if options.get {
            let separator = if options.url.contains('?') { '&' } else { '?' };
            (format!("{}{separator}{params}", options.url), None)
        } else {
            (options.url.clone(), Some(params))
        };
        let secret = match &options.signing {
            Signing::Token(secret) => Some(secret.clone()),
            Signing::NoToken | Signing::Off => None,
        };
        let mut headers = vec![
            ("User-Agent", USER_AGENT.to_owned()),
            ("Accept", "*/*".to_owned()),
            ("Cache-Control", "max-age=259200".to_owned()),
            (IDEMPOTENCY_HEADER, idempotency.to_owned()),
            (HOME_REGION_HEADER, HOME_REGION.to_owned()),
        ];
        if body.is_some() {
            headers.push(("Content-Type", FORM_CONTENT_TYPE.to_owned()));
        }
        let mut request = Request {
            post: body.is_some(),
            url,
            body,
            headers,
            secret,
        };
        request.sign();
        request
    }

    /// The signature sent, if the request is signed.
    pub fn signature(&self) -> Option<&str> {
        self.header(SIGNATURE_HEADER)
    }

    /// The value of header `name`, if it is sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(known, _)| known.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The request that follows a redirect with `status` to `url`, as a
    /// browser (and Twilio) follows it: `303`, and `301` or `302` after a
    /// `POST`, become a `GET` without the body; `307` and `308` repeat the
    /// request. The signature is computed again for the new URL: Twilio
    /// signs every request it makes with the URL it calls.
    pub fn redirected(&self, status: u16, url: String) -> Request {
        let mut next = self.clone();
        next.url = url;
        if matches!(status, 301..=303) {
            next.post = false;
            next.body = None;
            next.headers.retain(|(name, _)| *name != "Content-Type");
        }
        next.sign();
        next
    }

    /// An equivalent curl command for a POSIX shell.
    pub fn curl(&self) -> String {
        let mut command = String::from("curl --silent --show-error --include");
        if self.post {
            command.push_str(" --request POST");
        }
        let _ = write!(command, " {}", quoted(&self.url));
        for (name, value) in &self.headers {
            let _ = write!(
                command,
                " \\\n  --header {}",
                quoted(&format!("{name}: {value}"))
            );
        }
        if let Some(body) = &self.body {
            let _ = write!(command, " \\\n  --data-raw {}", quoted(body));
        }
        command.push('\n');
        command
    }

    fn sign(&mut self) {
        self.headers.retain(|(name, _)| *name != SIGNATURE_HEADER);
        if let Some(secret) = &self.secret {
            let form = self.body.as_deref().unwrap_or_default();
            let value = signature::sign(secret, &self.url, form.as_bytes());
            self.headers.push((SIGNATURE_HEADER, value));
        }
    }
}

/// `text` in single quotes for a POSIX shell.
fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::options::Target;
    use crate::twilio::inbound::Inbound;
    use crate::twilio::signature::{Keys, Payload, Verdict};
    use std::time::Duration;

    fn options(url: &str, get: bool, signing: Signing) -> Options {
        Options {
            url: url.to_owned(),
            target: Target::Given,
            inbound: Inbound::default(),
            get,
            signing,
            timeout: Duration::from_secs(15),
            curl: false,
            ngrok_api: None,
        }
    }

    fn ids() -> Ids {
        Ids {
            message: "0".repeat(32),
            account: "1".repeat(32),
        }
    }

    fn keys(token: &str) -> Keys {
        Keys {
            auth_tokens: vec![Secret::new(token)],
            shared_keys: Vec::new(),
        }
    }

    fn verdict(request: &Request, token: &str) -> Verdict {
        let payload = match &request.body {
            Some(body) => Payload::Form(body.as_bytes()),
            None => Payload::Nothing,
        };
        signature::check(
            &keys(token),
            &request.url,
            payload,
            request.signature(),
            None,
        )
    }

    #[test]
    fn a_post_is_signed_over_the_url_and_the_form_and_the_server_accepts_it() {
        let url = "https://e.com:8443/hook?site=1&x=a%20b";
        let request = Request::new(
            &options(url, false, Signing::Token(Secret::new("token"))),
            &ids(),
            "idem",
        );
        assert!(request.post);
        assert_eq!(request.url, url);
        assert_eq!(verdict(&request, "token"), Verdict::Valid);
        assert_eq!(verdict(&request, "other"), Verdict::NoMatch);
        assert_eq!(request.header("content-type"), Some(FORM_CONTENT_TYPE));
        assert_eq!(request.header("I-Twilio-Idempotency-Token"), Some("idem"));
        assert_eq!(request.header("User-Agent"), Some("TwilioProxy/1.1"));
    }

    #[test]
    fn a_get_carries_the_parameters_in_the_signed_url() {
        let request = Request::new(
            &options(
                "http://127.0.0.1:8767/whatsapp?a=1",
                true,
                Signing::Token(Secret::new("t")),
            ),
            &ids(),
            "idem",
        );
        assert!(!request.post);
        assert_eq!(request.body, None);
        assert!(
            request
                .url
                .starts_with("http://127.0.0.1:8767/whatsapp?a=1&SmsMessageSid=SM")
        );
        assert!(request.url.contains("&Body=Hello&"));
        assert_eq!(request.header("Content-Type"), None);
        assert_eq!(verdict(&request, "t"), Verdict::Valid);
    }

    #[test]
    fn an_unsigned_request_has_no_signature_header() {
        for signing in [Signing::NoToken, Signing::Off] {
            let request = Request::new(&options("http://e.com/", false, signing), &ids(), "i");
            assert_eq!(request.signature(), None);
        }
    }

    #[test]
    fn a_redirect_is_signed_again_and_a_see_other_drops_the_body() {
        let request = Request::new(
            &options("http://e.com/a", false, Signing::Token(Secret::new("t"))),
            &ids(),
            "i",
        );
        let repeated = request.redirected(307, "https://e.com/a".to_owned());
        assert!(repeated.post);
        assert_eq!(repeated.body, request.body);
        assert_eq!(verdict(&repeated, "t"), Verdict::Valid);
        let fetched = request.redirected(302, "https://e.com/b".to_owned());
        assert!(!fetched.post);
        assert_eq!(fetched.body, None);
        assert_eq!(fetched.header("Content-Type"), None);
        assert_eq!(verdict(&fetched, "t"), Verdict::Valid);
    }

    #[test]
    fn the_curl_command_quotes_every_argument_for_the_shell() {
        let mut options = options("http://e.com/it's", false, Signing::NoToken);
        options.inbound.body = "it's $HOME `x`".to_owned();
        let command = Request::new(&options, &ids(), "i").curl();
        assert!(
            command.starts_with(
                "curl --silent --show-error --include --request POST 'http://e.com/it'\\''s' \\\n  --header 'User-Agent: TwilioProxy/1.1' \\\n"
            ),
            "{command}"
        );
        assert!(
            command.contains("&Body=it%27s+%24HOME+%60x%60&"),
            "{command}"
        );
    }
}
