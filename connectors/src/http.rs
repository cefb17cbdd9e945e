//! Pieces every HTTP connector shares.

use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};

use crate::{parse_retry_after, Failure, Reason};

/// A request that got no answer: `timeout`, or `transport` (the URL is stripped because it may
/// carry a token).
pub fn transport_failure(error: reqwest::Error, timeout: Duration) -> Failure {
    if error.is_timeout() {
        return Failure::new(Reason::Timeout, format!("no answer within {timeout:?}"));
    }
    let kind = if error.is_connect() {
        "cannot connect"
    } else {
        "connection failed"
    };
    Failure::new(
        Reason::Transport,
        format!("{kind}: {}", error_chain(&error.without_url())),
    )
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

/// The `Retry-After` header, if any.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after)
}

/// A client that never follows redirects.
pub fn client() -> reqwest::ClientBuilder {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none())
}

/// The client for vendor APIs — no redirects, `oie/<version>` as user agent — shared by every
/// connector of the process: one connection pool and one set of TLS roots, however many
/// connectors there are. Timeouts are set per request, by each connector.
pub fn api_client() -> Result<reqwest::Client, String> {
    static SHARED: std::sync::OnceLock<Result<reqwest::Client, String>> =
        std::sync::OnceLock::new();
    SHARED
        .get_or_init(|| {
            client()
                .user_agent(concat!("oie/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| format!("cannot build HTTP client: {e}"))
        })
        .clone()
}
