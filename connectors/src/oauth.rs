//! Access tokens: the `oauth2` crate's flows sent through our own HTTP client, and a cache that
//! mints one token for any number of concurrent callers and renews it before it expires.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use oauth2::{HttpRequest, HttpResponse, RequestTokenError};
use tokio::sync::Mutex;

use crate::{Failure, Reason, Secret};

/// Renew a token this long before the vendor says it expires.
pub const RENEW_BEFORE: Duration = Duration::from_secs(60);

/// A minted access token.
#[derive(Debug)]
pub struct Token {
    pub access: Secret,
    /// Where data calls go, when the vendor says (Salesforce's `instance_url`).
    pub instance_url: Option<String>,
    /// When to mint a new one; `None` until the vendor rejects it.
    pub renew_at: Option<Instant>,
}

/// Holds the current token; concurrent callers wait for one mint instead of starting their own.
#[derive(Default)]
pub struct TokenCache {
    current: Mutex<Option<Arc<Token>>>,
    mints: std::sync::atomic::AtomicU64,
}

impl TokenCache {
    /// The cached token, or a new one from `mint` when there is none or it is due for renewal.
    pub async fn get<F, Fut>(&self, mint: F) -> Result<Arc<Token>, Failure>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Token, Failure>>,
    {
        let mut current = self.current.lock().await;
        if let Some(token) = current.as_ref() {
            if token.renew_at.is_none_or(|at| Instant::now() < at) {
                return Ok(token.clone());
            }
        }
        let token = Arc::new(mint().await?);
        self.mints
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        *current = Some(token.clone());
        Ok(token)
    }

    /// Drops `stale` (rejected by the vendor) unless another caller already replaced it.
    pub async fn invalidate(&self, stale: &Arc<Token>) {
        let mut current = self.current.lock().await;
        if current.as_ref().is_some_and(|t| Arc::ptr_eq(t, stale)) {
            *current = None;
        }
    }

    /// Tokens minted so far.
    pub fn mints(&self) -> u64 {
        self.mints.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// The error of [`send`]: a transport failure, with the URL stripped.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TransportError(String);

/// Sends `oauth2` requests with our client (no redirects, our timeout).
pub struct Http<'a> {
    pub client: &'a reqwest::Client,
    pub timeout: Duration,
}

impl<'c> oauth2::AsyncHttpClient<'c> for Http<'_> {
    type Error = TransportError;
    type Future =
        std::pin::Pin<Box<dyn Future<Output = Result<HttpResponse, TransportError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(send(self.client, self.timeout, request))
    }
}

async fn send(
    client: &reqwest::Client,
    timeout: Duration,
    request: HttpRequest,
) -> Result<HttpResponse, TransportError> {
    let (parts, body) = request.into_parts();
    let response = client
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| TransportError(crate::http::transport_failure(e, timeout).detail))?;
    let mut builder = http_response(response.status().as_u16());
    for (name, value) in response.headers() {
        builder = builder.header(name, value);
    }
    let bytes = response
        .bytes()
        .await
        .map_err(|e| TransportError(crate::http::transport_failure(e, timeout).detail))?;
    builder
        .body(bytes.to_vec())
        .map_err(|e| TransportError(e.to_string()))
}

fn http_response(status: u16) -> oauth2::http::response::Builder {
    oauth2::http::Response::builder().status(status)
}

/// Classifies a failed `oauth2` token request: the server's refusal (bad credentials, a revoked
/// grant) is `auth` and says what the server said; no answer is `transport`; an answer that is
/// not a token response is the vendor's `server_error`.
pub fn classify<RE, T>(vendor: &str, error: RequestTokenError<RE, T>) -> Failure
where
    RE: std::error::Error + 'static,
    T: oauth2::ErrorResponse + 'static,
{
    match error {
        RequestTokenError::ServerResponse(e) => Failure::new(
            Reason::Auth,
            format!("{vendor} refused the token request: {e}; check the connector's credentials"),
        ),
        RequestTokenError::Request(e) => {
            Failure::new(Reason::Transport, format!("token request failed: {e}"))
        }
        RequestTokenError::Parse(e, _) => Failure::new(
            Reason::ServerError,
            format!("unreadable token response: {e}"),
        ),
        RequestTokenError::Other(e) => {
            Failure::new(Reason::Transport, format!("token request: {e}"))
        }
    }
}
