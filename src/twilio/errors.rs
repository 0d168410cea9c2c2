//! Twilio's error codes: what the ones a WhatsApp sender or a webhook meets
//! mean, in one line each, and where Twilio documents every code.
//!
//! Delivery errors arrive in status callbacks (`ErrorCode`); webhook errors
//! are what Twilio logs when it cannot use an answer, which `check`
//! predicts.

/// The URL of Twilio's page about `code`.
pub fn docs_url(code: u32) -> String {
    format!("https://www.twilio.com/docs/api/errors/{code}")
}

/// One line on what `code` means and what to do about it, for the codes a
/// WhatsApp sender or a webhook meets; `None` for others (see
/// [`docs_url`]).
pub fn explain(code: u32) -> Option<&'static str> {
    Some(match code {
        // Delivery.
        63016 => {
            "outside the 24-hour session window: only an approved template can be sent until \
             the recipient writes again"
        }
        63015 => {
            "the recipient has not joined this WhatsApp Sandbox (or joined more than three days \
             ago): they must send `join <code>` to the sandbox number"
        }
        63003 => "WhatsApp could not find the recipient: check the number and its whatsapp: prefix",
        63024 => {
            "WhatsApp says the recipient cannot receive it: not a WhatsApp number, terms not \
             accepted, or an outdated app"
        }
        30003 => "the recipient's phone is unreachable: switched off, no signal or roaming",
        30005 => "the number is unknown or no longer in service",
        30006 => "the number is a landline, or its carrier cannot be reached",
        30007 => "the carrier or Twilio filtered the message as possible spam",
        30008 => "unknown delivery error: try again, and ask Twilio support if it persists",
        21211 => "the To number is not a valid phone number (E.164, such as +15551234567)",
        21610 => "the recipient has opted out (sent STOP); they can send START to opt back in",
        // Sending through the Messages API.
        20003 => {
            "authentication failed: TWILIO_ACCOUNT_SID with TWILIO_AUTH_TOKEN (or TWILIO_API_KEY \
             with TWILIO_API_SECRET) are not a pair of this account"
        }
        21608 => {
            "a trial account sends only to verified numbers: verify the recipient in the \
             Console, or upgrade the account"
        }
        21614 => "the To number is not a mobile number that can receive this message",
        63007 => {
            "Twilio knows no WhatsApp sender with the From number on this account: send from \
             the sandbox or your approved WhatsApp sender"
        }
        // Webhooks.
        11200 => "HTTP retrieval failure: Twilio got an error status, or no answer, from the URL",
        11205 => "HTTP connection failure: Twilio could not connect to the URL",
        11210 => "HTTP bad host name: Twilio could not resolve the URL's host",
        11220 => "SSL/TLS handshake error: Twilio could not set up HTTPS with the URL's server",
        11235 => "certificate invalid: the certificate does not name the URL's host",
        11236 => "certificate invalid: the certificate has expired",
        11237 => {
            "certificate invalid: no path to a trusted authority (self-signed, or a missing \
             intermediate certificate)"
        }
        11750 => "TwiML response body too large: Twilio reads at most 64 kB",
        12100 => "document parse failure: the answer is not well-formed XML",
        12200 => "schema validation warning: the answer is XML, but not TwiML Twilio understands",
        12300 => "invalid Content-Type: Twilio reads TwiML only from an XML Content-Type",
        14109 => "reply message limit exceeded: Twilio sends at most 10 replies to one message",
        21617 => "the message body exceeds the 1600 character limit",
        _ => return None,
    })
}

/// `code` (as Twilio sends it, a decimal number) and what it means, for a
/// log line: `63016: outside the 24-hour session window: ...`, or the URL of
/// Twilio's page for codes not explained here.
pub fn describe(code: &str) -> String {
    match code.trim().parse::<u32>() {
        Ok(number) => match explain(number) {
            Some(meaning) => format!("{number}: {meaning}"),
            None => format!("{number} (see {})", docs_url(number)),
        },
        Err(_) => format!("\"{}\"", crate::logging::Escaped(code)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_codes_a_whatsapp_sender_meets_are_explained() {
        for code in [
            63016, 63015, 63003, 63024, 30003, 30005, 30006, 30007, 30008, 21211, 21610, 20003,
            21608, 21614, 63007,
        ] {
            assert!(explain(code).is_some(), "{code}");
        }
        assert_eq!(
            describe("63016"),
            "63016: outside the 24-hour session window: only an approved template can be sent \
             until the recipient writes again"
        );
    }

    #[test]
    fn the_webhook_errors_check_reports_are_explained_under_twilios_names() {
        // Each code's title on Twilio's page, which the explanation starts
        // with.
        for (code, title) in [
            (11200, "HTTP retrieval failure"),
            (11205, "HTTP connection failure"),
            (11210, "HTTP bad host name"),
            (11220, "SSL/TLS handshake error"),
            (11235, "certificate invalid: the certificate does not name"),
            (11236, "certificate invalid: the certificate has expired"),
            (11237, "certificate invalid: no path to a trusted authority"),
            (11750, "TwiML response body too large"),
            (12100, "document parse failure"),
            (12200, "schema validation warning"),
            (12300, "invalid Content-Type"),
            (14109, "reply message limit exceeded"),
            (21617, "the message body exceeds the 1600 character limit"),
        ] {
            let explained = explain(code).unwrap_or_else(|| panic!("{code} is not explained"));
            assert!(explained.starts_with(title), "{code}: {explained}");
        }
    }

    #[test]
    fn other_codes_point_to_twilios_page() {
        assert_eq!(
            describe("12345"),
            "12345 (see https://www.twilio.com/docs/api/errors/12345)"
        );
        assert_eq!(describe("oops\n"), r#""oops\n""#);
    }
}
