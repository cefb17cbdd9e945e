//! What pages and links ask of the ingest API: `/identify`, `/personalize`, `/go`, and erasure.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, Query, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{reject, Ingest};
use crate::clock::now_ms;
use crate::lead::is_id;
use crate::store::ClickRow;

type Params = Query<HashMap<String, String>>;

fn json_no_store(value: serde_json::Value) -> Response {
    ([(header::CACHE_CONTROL, "no-store")], axum::Json(value)).into_response()
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> Result<T, Response> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "ingest lookup failed");
            Err(reject(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error".into(),
            ))
        }
        Err(_) => Err(reject(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error".into(),
        )),
    }
}

/// `GET /identify?i=ID`: first name, company, campaign — never e-mail or last name, and the same
/// answer shape for unknown ids, so it cannot be used to probe who is known.
pub async fn identify(State(state): State<Ingest>, Query(q): Params) -> Response {
    let id = q.get("i").cloned().unwrap_or_default();
    if !is_id(&id) {
        return json_no_store(crate::store::public_identity(None));
    }
    let store = state.store.clone();
    match blocking(move || store.identify(&id)).await {
        Ok(v) => json_no_store(v),
        Err(r) => r,
    }
}

/// `GET /personalize?v=ID`: what a page may adapt to for a hot or burning lead. The level only
/// with `[server] personalize_level = true`: anyone holding the link could read it.
pub async fn personalize(State(state): State<Ingest>, Query(q): Params) -> Response {
    let id = q.get("v").cloned().unwrap_or_default();
    let store = state.store.clone();
    let found = if is_id(&id) {
        match blocking(move || store.personalize(&id, now_ms())).await {
            Ok(v) => v,
            Err(r) => return r,
        }
    } else {
        crate::store::public_personalization(None)
    };
    let mut found = found;
    if !state.personalize_level {
        if let Some(fields) = found.as_object_mut() {
            fields.remove("level");
        }
    }
    json_no_store(found)
}

/// `GET /go?i=ID&to=URL`: records the e-mail click (through the writer's queue) and redirects.
pub async fn go(
    State(state): State<Ingest>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let (id, location) = state
        .redirects
        .resolve(query.as_deref().unwrap_or_default());
    let now = now_ms();
    let click = ClickRow {
        click_id: format!("c{now:x}{:016x}", rand::random::<u64>()),
        visitor_id: id,
        target: location.clone(),
        timestamp: now,
        ip: Some(state.clients.address(peer.ip(), &headers).to_string()),
        user_agent: super::client::user_agent(&headers),
    };
    if state.events.click(click).is_err() {
        tracing::warn!(
            "could not record an e-mail click (the write queue is full); redirecting anyway"
        );
    }
    (
        StatusCode::FOUND,
        [
            (header::LOCATION, location),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
    )
        .into_response()
}

/// `DELETE /visitors/{id}` with `Authorization: Bearer <admin token>`: erases the visitor's
/// events, sessions, profile, identity, clicks, alerts, sync state and unsent deliveries.
pub async fn erase(
    State(state): State<Ingest>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(token) = &state.admin_token else {
        return reject(
            StatusCode::FORBIDDEN,
            "erasure needs [server] admin_token".into(),
        );
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let ok = given.is_some_and(|g| same_secret(g, token.expose()));
    if !ok {
        return reject(
            StatusCode::UNAUTHORIZED,
            "a valid admin token is required".into(),
        );
    }
    if !is_id(&id) {
        return reject(StatusCode::BAD_REQUEST, "not a visitor id".into());
    }
    let Some(eraser) = state.eraser.clone() else {
        return reject(
            StatusCode::SERVICE_UNAVAILABLE,
            "erasure is not available in this mode".into(),
        );
    };
    match blocking(move || eraser.erase(&id, now_ms())).await {
        Ok(v) => json_no_store(json!({"erased": v})),
        Err(r) => r,
    }
}

/// Compares digests of the two, in time that depends on neither their contents nor their
/// lengths.
pub fn same_secret(given: &str, expected: &str) -> bool {
    let (a, b) = (
        Sha256::digest(given.as_bytes()),
        Sha256::digest(expected.as_bytes()),
    );
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}
