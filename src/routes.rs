//! Routing: which endpoint a request is for, decided from its method and URL
//! alone.
//!
//! Paths are matched exactly as received: no decoding, no trailing-slash
//! rewriting. Any query string is allowed. Methods are matched exactly too:
//! `get` is not `GET`.

/// The path Twilio posts inbound messages to.
pub const WEBHOOK_PATH: &str = "/whatsapp";

/// The path Twilio posts delivery statuses to, when it is set as a status
/// callback URL (`/whatsapp` takes them too).
pub const STATUS_PATH: &str = "/status";

/// The path load balancers and uptime checks poll.
pub const HEALTH_PATH: &str = "/healthz";

/// The `Allow` header of a `405` from [`WEBHOOK_PATH`] and [`STATUS_PATH`].
pub const WEBHOOK_METHODS: &str = "GET, HEAD, POST";

/// The `Allow` header of a `405` from [`HEALTH_PATH`].
pub const HEALTH_METHODS: &str = "GET, HEAD";

/// Where a request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `GET`, `HEAD` or `POST` on [`WEBHOOK_PATH`]: an inbound message, or
    /// a delivery status.
    Webhook,
    /// `GET`, `HEAD` or `POST` on [`STATUS_PATH`]: a delivery status only.
    Status,
    /// `GET` or `HEAD` on [`HEALTH_PATH`].
    Health,
    /// A path this server does not serve.
    NotFound,
    /// A served path with a method it does not serve.
    MethodNotAllowed {
        /// The value of the `Allow` header: the methods the path serves.
        allow: &'static str,
    },
}

/// Routes a request by its method (such as `GET`) and its URL (path and
/// optional query).
pub fn route(method: &str, url: &str) -> Route {
    let (path, _) = split_url(url);
    match path {
        WEBHOOK_PATH | STATUS_PATH => match method {
            "GET" | "HEAD" | "POST" if path == WEBHOOK_PATH => Route::Webhook,
            "GET" | "HEAD" | "POST" => Route::Status,
            _ => Route::MethodNotAllowed {
                allow: WEBHOOK_METHODS,
            },
        },
        HEALTH_PATH => match method {
            "GET" | "HEAD" => Route::Health,
            _ => Route::MethodNotAllowed {
                allow: HEALTH_METHODS,
            },
        },
        _ => Route::NotFound,
    }
}

/// Splits a request URL into its path and its query string (without the `?`;
/// empty when there is none).
pub fn split_url(url: &str) -> (&str, &str) {
    url.split_once('?').unwrap_or((url, ""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_serves_get_head_and_post_with_any_query() {
        for method in ["GET", "HEAD", "POST"] {
            assert_eq!(route(method, "/whatsapp"), Route::Webhook);
            assert_eq!(route(method, "/whatsapp?From=x&Body=y"), Route::Webhook);
            assert_eq!(route(method, "/whatsapp?"), Route::Webhook);
        }
    }

    #[test]
    fn status_callbacks_have_a_path_of_their_own() {
        for method in ["GET", "HEAD", "POST"] {
            assert_eq!(route(method, "/status?x=1"), Route::Status);
        }
        assert_eq!(
            route("PUT", "/status"),
            Route::MethodNotAllowed {
                allow: "GET, HEAD, POST"
            }
        );
        assert_eq!(route("GET", "/status/"), Route::NotFound);
    }

    #[test]
    fn other_methods_on_the_webhook_are_not_allowed() {
        for method in [
            "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "CONNECT", "BREW", "get",
        ] {
            assert_eq!(
                route(method, "/whatsapp"),
                Route::MethodNotAllowed {
                    allow: "GET, HEAD, POST"
                }
            );
        }
    }

    #[test]
    fn health_serves_get_and_head_only() {
        assert_eq!(route("GET", "/healthz"), Route::Health);
        assert_eq!(route("HEAD", "/healthz?probe=1"), Route::Health);
        assert_eq!(
            route("POST", "/healthz"),
            Route::MethodNotAllowed { allow: "GET, HEAD" }
        );
    }

    #[test]
    fn paths_match_exactly_as_received() {
        for url in [
            "/",
            "",
            "*",
            "/whatsapp/",
            "/WhatsApp",
            "/whats%61pp",
            "//whatsapp",
            "/whatsapp/../whatsapp",
            "http://example.com/whatsapp",
            "/healthz/",
            "/whatsapp#frag",
        ] {
            assert_eq!(route("GET", url), Route::NotFound, "{url:?}");
        }
    }

    #[test]
    fn split_url_separates_path_and_query_at_the_first_question_mark() {
        assert_eq!(split_url("/whatsapp"), ("/whatsapp", ""));
        assert_eq!(split_url("/whatsapp?a=1?b=2"), ("/whatsapp", "a=1?b=2"));
        assert_eq!(split_url("?x"), ("", "x"));
    }
}
