//! What pages and links ask of the ingest API: `/identify`, `/personalize`, `/go`, and erasure.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{reject, Ingest};
use crate::clock::now_ms;
use crate::lead::is_id;

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

/// `GET /personalize?v=ID`: what a page may adapt to for a hot or burning lead.
pub async fn personalize(State(state): State<Ingest>, Query(q): Params) -> Response {
    let id = q.get("v").cloned().unwrap_or_default();
    if !is_id(&id) {
        return json_no_store(crate::store::public_personalization(None));
    }
    let store = state.store.clone();
    match blocking(move || store.personalize(&id, now_ms())).await {
        Ok(v) => json_no_store(v),
        Err(r) => r,
    }
}

/// Where `/go` may send a browser: a path on this site, or a URL on an allowed host; anything
/// else goes to the site root. `i` is appended so the landing page can identify the visitor.
pub fn redirect_target(to: &str, id: Option<&str>, allowed_hosts: &[String]) -> String {
    const BASE: &str = "https://oie-base.invalid/";
    // Parsed as a browser would (WHATWG): backslashes, tabs and "//host" resolve like there.
    let base = url::Url::parse(BASE).expect("the base URL parses");
    let Ok(mut target) = base.join(to) else {
        return "/".to_string();
    };
    let relative = target.host_str() == Some("oie-base.invalid") && to.starts_with('/');
    let allowed = matches!(target.scheme(), "http" | "https")
        && target
            .host_str()
            .is_some_and(|h| allowed_hosts.iter().any(|a| a.eq_ignore_ascii_case(h)))
        && target.username().is_empty()
        && target.password().is_none();
    if !(relative || allowed) {
        return "/".to_string();
    }
    if let Some(id) = id {
        target.query_pairs_mut().append_pair("i", id);
    }
    if relative {
        let mut out = target.path().to_string();
        if let Some(q) = target.query() {
            out.push('?');
            out.push_str(q);
        }
        if let Some(f) = target.fragment() {
            out.push('#');
            out.push_str(f);
        }
        out
    } else {
        target.to_string()
    }
}

/// `GET /go?i=ID&to=URL`: records the e-mail click and redirects.
pub async fn go(
    State(state): State<Ingest>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Params,
) -> Response {
    let id = q.get("i").filter(|v| is_id(v)).cloned();
    let to = q.get("to").cloned().unwrap_or_else(|| "/".into());
    let location = redirect_target(&to, id.as_deref(), &state.redirect_hosts);
    let store = state.store.clone();
    let agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let click_id = format!("c{:x}{:016x}", now_ms(), rand::random::<u64>());
    let target = location.clone();
    let ip = peer.ip().to_string();
    let recorded = blocking(move || {
        store.record_click(
            &click_id,
            id.as_deref(),
            &target,
            now_ms(),
            Some(&ip),
            agent.as_deref(),
        )
    })
    .await;
    if recorded.is_err() {
        tracing::warn!("could not record an e-mail click; redirecting anyway");
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
    let ok = given.is_some_and(|g| constant_time_eq(g.as_bytes(), token.expose().as_bytes()));
    if !ok {
        return reject(
            StatusCode::UNAUTHORIZED,
            "a valid admin token is required".into(),
        );
    }
    if !is_id(&id) {
        return reject(StatusCode::BAD_REQUEST, "not a visitor id".into());
    }
    let (store, outbox) = (state.store.clone(), state.outbox.clone());
    let result = blocking(move || {
        let erased = store.erase(&id)?;
        let deliveries = outbox.erase(&id)?;
        let hash = hex::encode(Sha256::digest(id.as_bytes()));
        store.record_erasure(
            &hash,
            now_ms(),
            &json!({"store": erased, "deliveries": deliveries}),
        )?;
        Ok(json!({"erased": erased, "deliveries": deliveries}))
    })
    .await;
    match result {
        Ok(v) => json_no_store(v),
        Err(r) => r,
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::redirect_target;

    #[test]
    fn no_open_redirect() {
        let allowed = vec!["www.acme.example".to_string()];
        let go = |to: &str| redirect_target(to, Some("ab3f9"), &allowed);
        assert_eq!(go("/pricing"), "/pricing?i=ab3f9");
        assert_eq!(go("/pricing?utm=x#plans"), "/pricing?utm=x&i=ab3f9#plans");
        assert_eq!(
            go("https://www.acme.example/demo"),
            "https://www.acme.example/demo?i=ab3f9"
        );
        for evil in [
            "https://evil.example/",
            "//evil.example/x",
            "/\\evil.example",
            "\\\\evil.example",
            "/\t/evil.example",
            "javascript:alert(1)",
            "JavaScript:alert(1)",
            "data:text/html,hi",
            "https://www.acme.example@evil.example/",
            "https://www.acme.example.evil.example/",
            "http://evil.example%2F@www.acme.example/",
            "%2F%2Fevil.example",
            "evil.example",
            "https:evil.example",
            " //evil.example",
            "",
        ] {
            let out = go(evil);
            assert!(
                out == "/"
                    || (out.starts_with('/')
                        && !out.starts_with("//")
                        && !out.contains("evil.example")),
                "{evil:?} → {out}"
            );
        }
        assert_eq!(redirect_target("/x", None, &allowed), "/x");
    }
}
