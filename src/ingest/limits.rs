//! Per-client-address request limits on the ingest API (`[server.rate_limits]`), with the
//! `governor` crate: a bucket per address that refills evenly over a minute and holds a minute's
//! worth. Past it, 429 with Retry-After. Exempt addresses (loopback by default: `oie simulate`
//! and the operator's own tools) are not counted.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use ipnet::IpNet;

use super::client::Clients;

/// One limit: a bucket per client address.
#[derive(Clone)]
pub struct Limit {
    limiter: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    clients: Arc<Clients>,
    exempt: Arc<Vec<IpNet>>,
}

impl Limit {
    /// `per_minute` requests a minute per address; `None` for 0 (no limit).
    pub fn per_minute(per_minute: u32, clients: &Arc<Clients>, exempt: &[IpNet]) -> Option<Limit> {
        let quota = Quota::per_minute(NonZeroU32::new(per_minute)?);
        let limit = Limit {
            limiter: Arc::new(RateLimiter::keyed(quota)),
            clients: clients.clone(),
            exempt: Arc::new(exempt.to_vec()),
        };
        forget_idle_addresses(&limit.limiter);
        Some(limit)
    }

    /// How long `request`'s client must wait, or `None` when it may go on.
    fn wait(&self, request: &Request) -> Option<Duration> {
        // The server records every peer; without one there is nobody to count.
        let client = self.clients.of(request)?;
        if self.exempt.iter().any(|n| n.contains(&client)) {
            return None;
        }
        let refused = self.limiter.check_key(&client).err()?;
        Some(refused.wait_time_from(DefaultClock::default().now()))
    }
}

/// The middleware: refuses a client past its limit.
pub async fn enforce(State(limit): State<Limit>, request: Request, next: Next) -> Response {
    match limit.wait(&request) {
        None => next.run(request).await,
        Some(wait) => refusal(wait),
    }
}

/// Buckets of addresses that stopped asking are dropped once a minute, so memory follows the
/// clients of the last minute, not every address ever seen.
fn forget_idle_addresses(limiter: &Arc<DefaultKeyedRateLimiter<IpAddr>>) {
    let weak = Arc::downgrade(limiter);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(60)).await;
            let Some(limiter) = weak.upgrade() else {
                return;
            };
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    });
}

fn refusal(wait: Duration) -> Response {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let body = serde_json::json!({
        "success": false,
        "error": format!("too many requests from this address; retry after {seconds} s"),
    });
    let mut response = (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    response
}
