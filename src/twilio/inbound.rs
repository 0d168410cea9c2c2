//! The request Twilio sends when a WhatsApp (or SMS) message comes in: its
//! parameters, in the order Twilio sends them, and its headers. `check`
//! builds it to play Twilio; the names are the ones [`params`](super::params)
//! reads.
//!
//! Everything here is pure: the ids that must be unique come from the
//! caller, so that tests can fix them.

use crate::twilio::params::names;
use crate::twilio::twiml::MAX_MEDIA;

/// The `User-Agent` of Twilio's webhook requests.
pub const USER_AGENT: &str = "TwilioProxy/1.1";

/// The header carrying an id that is the same for every retry of one
/// webhook request.
pub const IDEMPOTENCY_HEADER: &str = "I-Twilio-Idempotency-Token";

/// The header naming the Twilio region the request comes from.
pub const HOME_REGION_HEADER: &str = "X-Home-Region";

/// The region of accounts that did not choose one.
pub const HOME_REGION: &str = "us1";

/// The `Content-Type` of Twilio's `POST` requests.
pub const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded";

/// The sender used when none is given: a made-up US number.
pub const DEFAULT_FROM: &str = "whatsapp:+15551234567";

/// The recipient used when none is given: the WhatsApp Sandbox's number.
pub const DEFAULT_TO: &str = "whatsapp:+14155238886";

/// The text used when none is given.
pub const DEFAULT_BODY: &str = "Hello";

/// The profile name sent with WhatsApp messages.
pub const PROFILE_NAME: &str = "whatsapp-webhook check";

/// An inbound message, as its sender wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inbound {
    /// The text. Defaults to [`DEFAULT_BODY`].
    pub body: String,
    /// The sender: `whatsapp:+...` for WhatsApp, `+...` for SMS. Defaults
    /// to [`DEFAULT_FROM`].
    pub from: String,
    /// The Twilio number it was sent to. Defaults to [`DEFAULT_TO`].
    pub to: String,
    /// URLs of attached media, at most [`MAX_MEDIA`]. Defaults to none.
    pub media: Vec<String>,
    /// Parameters added to, or replacing, Twilio's, in order. Defaults to
    /// none.
    pub extra: Vec<(String, String)>,
}

impl Default for Inbound {
    fn default() -> Inbound {
        Inbound {
            body: DEFAULT_BODY.to_owned(),
            from: DEFAULT_FROM.to_owned(),
            to: DEFAULT_TO.to_owned(),
            media: Vec::new(),
            extra: Vec::new(),
        }
    }
}

/// The ids Twilio makes up for each message: 32 hexadecimal digits each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ids {
    /// The message's id, without its `SM`/`MM` prefix.
    pub message: String,
    /// The account's id, without its `AC` prefix.
    pub account: String,
}

impl Inbound {
    /// Whether the message comes through WhatsApp rather than SMS.
    pub fn is_whatsapp(&self) -> bool {
        self.from.starts_with("whatsapp:")
    }

    /// The parameters Twilio posts for this message, in Twilio's order,
    /// with [`Inbound::extra`] replacing those of the same name or added at
    /// the end.
    pub fn params(&self, ids: &Ids) -> Vec<(String, String)> {
        // `MM` marks a message with media.
        let prefix = if self.media.is_empty() { "SM" } else { "MM" };
        let message_sid = format!("{prefix}{}", ids.message);
        let whatsapp = self.is_whatsapp();
        let number = self.from.trim_start_matches("whatsapp:");
        let mut params = Vec::with_capacity(16 + 2 * self.media.len() + self.extra.len());
        for (index, url) in self.media.iter().take(MAX_MEDIA).enumerate() {
            let name = names::MEDIA_CONTENT_TYPE;
            params.push((format!("{name}{index}"), content_type(url).to_owned()));
            params.push((format!("{}{index}", names::MEDIA_URL), url.clone()));
        }
        let num_media = self.media.len().min(MAX_MEDIA).to_string();
        let twilios = [
            (names::SMS_MESSAGE_SID, Some(message_sid.clone())),
            (names::NUM_MEDIA, Some(num_media)),
            (
                names::PROFILE_NAME,
                whatsapp.then(|| PROFILE_NAME.to_owned()),
            ),
            (
                names::MESSAGE_TYPE,
                whatsapp.then(|| self.message_type().to_owned()),
            ),
            (names::SMS_SID, Some(message_sid.clone())),
            (
                names::WA_ID,
                whatsapp.then(|| number.trim_start_matches('+').to_owned()),
            ),
            (names::SMS_STATUS, Some("received".to_owned())),
            (names::BODY, Some(self.body.clone())),
            (names::TO, Some(self.to.clone())),
            (names::NUM_SEGMENTS, Some("1".to_owned())),
            (names::REFERRAL_NUM_MEDIA, whatsapp.then(|| "0".to_owned())),
            (names::MESSAGE_SID, Some(message_sid)),
            (names::ACCOUNT_SID, Some(format!("AC{}", ids.account))),
            (names::FROM, Some(self.from.clone())),
            (names::API_VERSION, Some("2010-04-01".to_owned())),
        ];
        params.extend(
            twilios
                .into_iter()
                .filter_map(|(name, value)| Some((name.to_owned(), value?))),
        );
        for (name, value) in &self.extra {
            match params.iter_mut().find(|(known, _)| known == name) {
                Some(param) => param.1.clone_from(value),
                None => params.push((name.clone(), value.clone())),
            }
        }
        params
    }

    /// `MessageType`: what WhatsApp says the message holds.
    fn message_type(&self) -> &'static str {
        match self.media.first().map(|url| content_type(url)) {
            None => "text",
            Some(kind) if kind.starts_with("image/") => "image",
            Some(kind) if kind.starts_with("video/") => "video",
            Some(kind) if kind.starts_with("audio/") => "audio",
            Some(_) => "document",
        }
    }
}

/// The parameters as a form body or query string.
pub fn encode(params: &[(String, String)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish()
}

/// The MIME type of a media file, guessed from the extension of its URL's
/// path, as Twilio would report it; `application/octet-stream` when the
/// extension is unknown.
pub fn content_type(url: &str) -> &'static str {
    let path = url.split(['?', '#']).next().unwrap_or_default();
    let file = path.rsplit('/').next().unwrap_or_default();
    let extension = match file.rsplit_once('.') {
        Some((_, extension)) => extension.to_ascii_lowercase(),
        None => String::new(),
    };
    match extension.as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "mp4" => "video/mp4",
        "3gp" => "video/3gpp",
        "mp3" => "audio/mpeg",
        "ogg" | "opus" => "audio/ogg",
        "amr" => "audio/amr",
        "m4a" => "audio/mp4",
        "pdf" => "application/pdf",
        "vcf" => "text/vcard",
        "txt" => "text/plain",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::twilio::params::{Kind, Params};

    fn ids() -> Ids {
        Ids {
            message: "0123456789abcdef0123456789abcdef".to_owned(),
            account: "fedcba9876543210fedcba9876543210".to_owned(),
        }
    }

    fn names_of(params: &[(String, String)]) -> Vec<&str> {
        params.iter().map(|(name, _)| name.as_str()).collect()
    }

    #[test]
    fn a_whatsapp_text_has_the_parameters_twilio_sends_in_its_order() {
        let params = Inbound::default().params(&ids());
        assert_eq!(
            names_of(&params),
            [
                "SmsMessageSid",
                "NumMedia",
                "ProfileName",
                "MessageType",
                "SmsSid",
                "WaId",
                "SmsStatus",
                "Body",
                "To",
                "NumSegments",
                "ReferralNumMedia",
                "MessageSid",
                "AccountSid",
                "From",
                "ApiVersion",
            ]
        );
        let value = |name: &str| {
            params
                .iter()
                .find(|(known, _)| known == name)
                .map(|(_, value)| value.as_str())
        };
        assert_eq!(
            value("MessageSid"),
            Some("SM0123456789abcdef0123456789abcdef")
        );
        assert_eq!(value("SmsSid"), value("MessageSid"));
        assert_eq!(
            value("AccountSid"),
            Some("ACfedcba9876543210fedcba9876543210")
        );
        assert_eq!(value("WaId"), Some("15551234567"));
        assert_eq!(value("MessageType"), Some("text"));
        assert_eq!(value("NumMedia"), Some("0"));
        assert_eq!(value("Body"), Some("Hello"));
        assert_eq!(value("ApiVersion"), Some("2010-04-01"));
    }

    #[test]
    fn an_sms_has_no_whatsapp_parameters() {
        let sms = Inbound {
            from: "+15551234567".to_owned(),
            to: "+15557654321".to_owned(),
            ..Inbound::default()
        };
        let params = sms.params(&ids());
        for whatsapp_only in ["ProfileName", "WaId", "MessageType", "ReferralNumMedia"] {
            assert!(
                !names_of(&params).contains(&whatsapp_only),
                "{whatsapp_only}"
            );
        }
    }

    #[test]
    fn media_come_first_numbered_from_zero_with_their_types() {
        let inbound = Inbound {
            media: vec![
                "https://e.com/cat.JPG?size=2".to_owned(),
                "https://e.com/menu.pdf".to_owned(),
            ],
            ..Inbound::default()
        };
        let params = inbound.params(&ids());
        assert_eq!(
            params[..4],
            [
                ("MediaContentType0".to_owned(), "image/jpeg".to_owned()),
                (
                    "MediaUrl0".to_owned(),
                    "https://e.com/cat.JPG?size=2".to_owned()
                ),
                ("MediaContentType1".to_owned(), "application/pdf".to_owned()),
                ("MediaUrl1".to_owned(), "https://e.com/menu.pdf".to_owned()),
            ]
        );
        let encoded = encode(&params);
        let read = Params::parse(b"", Some(encoded.as_bytes()));
        assert_eq!(read.kind(), Kind::Message);
        assert_eq!(
            read.num_media.map(|v| v.decode().into_owned()),
            Some("2".into())
        );
        assert!(
            read.message_sid
                .is_some_and(|sid| sid.decode().starts_with("MM"))
        );
        assert_eq!(
            read.media[1].content_type.map(|v| v.decode().into_owned()),
            Some("application/pdf".into())
        );
    }

    #[test]
    fn extra_parameters_replace_twilios_in_place_or_come_last() {
        let inbound = Inbound {
            extra: vec![
                ("Body".to_owned(), "replaced".to_owned()),
                ("Latitude".to_owned(), "52.37".to_owned()),
            ],
            ..Inbound::default()
        };
        let params = inbound.params(&ids());
        let body = params.iter().position(|(name, _)| name == "Body");
        assert_eq!(body, Some(7));
        assert_eq!(params[7].1, "replaced");
        assert_eq!(
            params.last(),
            Some(&("Latitude".to_owned(), "52.37".to_owned()))
        );
    }

    #[test]
    fn the_message_type_is_the_first_medias_kind() {
        let message_type = |media: &[&str]| {
            let inbound = Inbound {
                media: media.iter().map(|url| (*url).to_owned()).collect(),
                ..Inbound::default()
            };
            let params = inbound.params(&ids());
            let found = params.iter().find(|(name, _)| name == "MessageType");
            found
                .map(|(_, value)| value.clone())
                .expect("a MessageType")
        };
        assert_eq!(message_type(&[]), "text");
        assert_eq!(message_type(&["https://e.com/a.jpg"]), "image");
        assert_eq!(message_type(&["https://e.com/a.mp4"]), "video");
        assert_eq!(message_type(&["https://e.com/a.ogg"]), "audio");
        assert_eq!(message_type(&["https://e.com/a.pdf"]), "document");
        assert_eq!(
            message_type(&["https://e.com/a.pdf", "https://e.com/b.jpg"]),
            "document"
        );
    }

    #[test]
    fn every_media_type_whatsapp_takes_is_named_as_iana_registers_it() {
        for (file, expected) in [
            ("a.jpg", "image/jpeg"),
            ("a.JPEG", "image/jpeg"),
            ("a.png", "image/png"),
            ("a.gif", "image/gif"),
            ("a.webp", "image/webp"),
            ("a.mp4", "video/mp4"),
            ("a.3gp", "video/3gpp"),
            ("a.mp3", "audio/mpeg"),
            ("a.ogg", "audio/ogg"),
            ("a.opus", "audio/ogg"),
            ("a.amr", "audio/amr"),
            ("a.m4a", "audio/mp4"),
            ("a.pdf", "application/pdf"),
            ("a.vcf", "text/vcard"),
            ("a.txt", "text/plain"),
            ("a.exe", "application/octet-stream"),
        ] {
            assert_eq!(
                content_type(&format!("https://e.com/{file}")),
                expected,
                "{file}"
            );
        }
    }

    #[test]
    fn content_types_are_guessed_from_the_path_only() {
        assert_eq!(content_type("https://e.com/a.png"), "image/png");
        assert_eq!(content_type("https://e.com/a.ogg#t=1"), "audio/ogg");
        assert_eq!(content_type("https://e.com/a.mp4?x=y.pdf"), "video/mp4");
        assert_eq!(
            content_type("https://e.png/file"),
            "application/octet-stream"
        );
        assert_eq!(content_type("https://e.com/"), "application/octet-stream");
    }
}
