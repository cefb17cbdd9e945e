//! The ingest API of embedded mode, the same contract as the Cloudflare Worker: `POST /track`
//! (and its CORS preflight), `GET /health`, and the pixel itself at `/oie.js` with a demo page
//! at `/demo`.

mod client;
mod contract;
mod limits;
mod pages;
mod redirect;
mod signing;
mod writer;

pub use client::{Clients, MAX_USER_AGENT};
pub use contract::{parse as parse_body, MAX_BODY};
pub use pages::same_secret;
pub use redirect::Redirects;
pub use signing::{sign, HEADER as SIGNATURE_HEADER};
pub use writer::{start as start_writer, Events, Full, Written};

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::json;

use crate::clock::now_ms;
use crate::config::RateLimits;
use crate::store::{EventRow, SqliteStore};
use oie_connectors::Secret;

/// The built pixel, embedded so `oie run` needs no npm (tests check it matches the source).
pub const PIXEL: &[u8] = include_bytes!("../../pixel/dist/oie.js");
const DEMO: &str = include_str!("demo.html");

#[derive(Clone)]
pub struct Ingest {
    pub events: Events,
    /// Origins allowed to post besides the server's own.
    pub allowed_origins: Arc<Vec<String>>,
    /// Where `/go` may redirect besides paths on this site.
    pub redirects: Arc<Redirects>,
    pub admin_token: Option<Secret>,
    /// Server-side senders sign their bodies with this (`X-OIE-Signature`).
    pub signing_secret: Option<Secret>,
    /// Client addresses, believing `X-Forwarded-For` only from trusted proxies.
    pub clients: Arc<Clients>,
    /// Whether `/personalize` tells the level.
    pub personalize_level: bool,
    pub store: Arc<SqliteStore>,
    /// Erasure (`DELETE /visitors/{id}`).
    pub eraser: Option<Arc<crate::erasure::Eraser>>,
    pub metrics: Arc<crate::metrics::Metrics>,
}

/// The ingest API, with its per-address limits and the whole-request timeout.
pub fn router(state: Ingest, limits: &RateLimits, timeout: std::time::Duration) -> Router {
    let clients = state.clients.clone();
    // Validation checked the exempt list.
    let exempt = limits_exempt(limits);
    let limited = |router: Router<Ingest>, per_minute: u32| match limits::Limit::per_minute(
        per_minute, &clients, &exempt,
    ) {
        Some(limit) => router.layer(axum::middleware::from_fn_with_state(limit, limits::enforce)),
        None => router,
    };
    let lookups = Router::new()
        .route("/identify", get(pages::identify))
        .route("/personalize", get(pages::personalize));
    let go = Router::new().route("/go", get(pages::go));
    let track = Router::new().route("/track", post(track).options(preflight));
    Router::new()
        .merge(limited(lookups, limits.lookups))
        .merge(limited(go, limits.go))
        .merge(limited(track, limits.track))
        .route(
            "/health",
            get(|| async { axum::Json(json!({"status": "ok"})) }),
        )
        .route("/visitors/{id}", axum::routing::delete(pages::erase))
        .route("/oie.js", get(pixel))
        .route("/demo", get(demo))
        .route("/demo/{*page}", get(demo))
        .route_layer(axum::middleware::from_fn_with_state(
            state.metrics.clone(),
            count_request,
        ))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .with_state(state)
}

/// `oie_ingest_requests_total{endpoint,status}`.
async fn count_request(
    axum::extract::State(metrics): axum::extract::State<Arc<crate::metrics::Metrics>>,
    path: axum::extract::MatchedPath,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let endpoint = path.as_str().to_string();
    let response = next.run(request).await;
    metrics
        .ingest_requests
        .with_label_values(&[&endpoint, response.status().as_str()])
        .inc();
    response
}

fn limits_exempt(limits: &RateLimits) -> Vec<ipnet::IpNet> {
    limits.exempt_ranges().unwrap_or_default()
}

fn reject(status: StatusCode, reason: String) -> Response {
    (
        status,
        axum::Json(json!({"success": false, "error": reason})),
    )
        .into_response()
}

/// The allowed origin of a request, if it may post: its own host, or one configured.
fn allowed_origin(state: &Ingest, headers: &HeaderMap) -> Result<Option<HeaderValue>, String> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        // Server-side senders send no Origin; browsers always do on POST.
        return Ok(None);
    };
    let text = origin.to_str().unwrap_or_default();
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let same = text.split_once("://").is_some_and(|(_, h)| h == host);
    if same || state.allowed_origins.iter().any(|o| o == text || o == "*") {
        Ok(Some(origin.clone()))
    } else {
        Err(format!(
            "origin {text} is not allowed; add it to [server] allowed_origins"
        ))
    }
}

fn cors(origin: Option<HeaderValue>, mut response: Response) -> Response {
    if let Some(origin) = origin {
        let h = response.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
    response
}

async fn preflight(State(state): State<Ingest>, headers: HeaderMap) -> Response {
    match allowed_origin(&state, &headers) {
        Ok(origin) => {
            let mut r = StatusCode::NO_CONTENT.into_response();
            let h = r.headers_mut();
            h.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("POST, OPTIONS"),
            );
            h.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static("Content-Type"),
            );
            h.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static("86400"),
            );
            cors(origin, r)
        }
        Err(reason) => reject(StatusCode::FORBIDDEN, reason),
    }
}

async fn track(
    State(state): State<Ingest>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let origin = match allowed_origin(&state, &headers) {
        Ok(o) => o,
        Err(reason) => return reject(StatusCode::FORBIDDEN, reason),
    };
    let rejected = |status, reason| {
        count_events(&state, "rejected", countable(&body));
        cors(origin.clone(), reject(status, reason))
    };
    if body.len() > MAX_BODY {
        let reason = format!("body is {} bytes; the limit is {MAX_BODY}", body.len());
        return rejected(StatusCode::PAYLOAD_TOO_LARGE, reason);
    }
    if let Err(reason) = check_signature(&state, origin.is_some(), &headers, &body) {
        return rejected(StatusCode::UNAUTHORIZED, reason);
    }
    let events = match parse_body(&body) {
        Ok(e) => e,
        Err(reason) => return rejected(StatusCode::BAD_REQUEST, reason),
    };
    let received = now_ms();
    let agent = client::user_agent(&headers);
    let ip = state.clients.address(peer.ip(), &headers).to_string();
    let count = events.len();
    let rows = events
        .into_iter()
        .map(|e| EventRow::from_json(e, received, Some(ip.clone()), agent.clone()))
        .collect();
    let response = match state.events.offer(rows) {
        Ok(()) => {
            count_events(&state, "accepted", count);
            (
                StatusCode::ACCEPTED,
                axum::Json(json!({"success": true, "eventsReceived": count})),
            )
                .into_response()
        }
        Err(_) => {
            count_events(&state, "busy", count);
            let mut r = reject(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy: too many events waiting to be written; retry shortly".into(),
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            r
        }
    };
    cors(origin, response)
}

fn count_events(state: &Ingest, outcome: &str, n: usize) {
    state
        .metrics
        .ingest_events
        .with_label_values(&[outcome])
        .inc_by(n as u64);
}

/// How many events a refused body carried, if it is JSON enough to tell (else one).
fn countable(body: &[u8]) -> usize {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["events"].as_array().map(Vec::len))
        .unwrap_or(1)
}

/// Browsers send an allowed Origin; anyone else must sign the body when a signing secret is
/// configured. A signature is checked whenever one is sent.
fn check_signature(
    state: &Ingest,
    from_browser: bool,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), String> {
    let given = headers
        .get(signing::HEADER)
        .map(|v| v.to_str().unwrap_or_default());
    match (&state.signing_secret, given) {
        (Some(key), Some(given)) => {
            signing::verify(key.expose().as_bytes(), given, body, now_ms() / 1000)
        }
        (Some(_), None) if !from_browser => Err(
            "no Origin header: browsers send one; server-side senders must sign the body (X-OIE-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of \"<t>.<body>\">)"
                .into(),
        ),
        (None, Some(_)) => Err(
            "X-OIE-Signature sent, but this server has no [server] event_signing_secret".into(),
        ),
        _ => Ok(()),
    }
}

async fn pixel() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                "application/javascript; charset=utf-8",
            ),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        PIXEL,
    )
        .into_response()
}

async fn demo() -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], DEMO).into_response()
}
