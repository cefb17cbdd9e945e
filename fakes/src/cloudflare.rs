//! A local Cloudflare API for Workers KV, as `VENDORS.md` states it: bearer-token check, bulk
//! write (`PUT …/bulk`, at most 10,000 pairs and 100 MB, keys ≤ 512 bytes, `expiration_ttl`
//! ≥ 60), bulk delete (`POST …/bulk/delete`, ≤ 10,000 keys), a namespace read, the API's limit
//! (1,200 requests per 5 minutes; 429 with `Retry-After` past it), and the error envelope
//! `{success, errors: [{code, message}], messages, result}` on every answer. Values written can
//! be read back.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde_json::{json, Value};

pub const TOKEN: &str = "cf-fake-api-token";
pub const ACCOUNT: &str = "0123456789abcdef0123456789abcdef";

const MAX_PAIRS: usize = 10_000;
const MAX_BYTES: usize = 100 * 1024 * 1024;
const MAX_KEY: usize = 512;

/// One stored value.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub value: String,
    pub expiration_ttl: Option<u64>,
}

struct Inner {
    /// namespace id → key → value.
    namespaces: HashMap<String, HashMap<String, Stored>>,
    limit: usize,
    period: Duration,
    sent: VecDeque<Instant>,
    writes: u64,
    deletes: u64,
    limited: u64,
    /// Statuses to answer the next requests with, before anything else.
    fail_next: VecDeque<u16>,
}

/// The fake and what it saw.
#[derive(Clone)]
pub struct CloudflareFake {
    pub base: String,
    inner: Arc<Mutex<Inner>>,
}

impl CloudflareFake {
    /// An account with namespaces `namespaces` and the API's limit of 1,200 requests per 5 min.
    pub async fn start(namespaces: &[&str]) -> CloudflareFake {
        let inner = Arc::new(Mutex::new(Inner {
            namespaces: namespaces
                .iter()
                .map(|n| (n.to_string(), HashMap::new()))
                .collect(),
            limit: 1_200,
            period: Duration::from_secs(300),
            sent: VecDeque::new(),
            writes: 0,
            deletes: 0,
            limited: 0,
            fail_next: VecDeque::new(),
        }));
        let ns = "/client/v4/accounts/{account}/storage/kv/namespaces/{ns}";
        let app = Router::new()
            .route(ns, get(namespace))
            .route(&format!("{ns}/bulk"), put(bulk_write))
            .route(&format!("{ns}/bulk/delete"), post(bulk_delete))
            .route(&format!("{ns}/values/{{key}}"), get(read_value))
            .with_state(inner.clone());
        CloudflareFake {
            base: format!("{}/client/v4", crate::serve(app).await),
            inner,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap()
    }

    /// A stricter limit, to see 429s quickly.
    pub fn set_limit(&self, limit: usize, period: Duration) {
        let mut s = self.lock();
        s.limit = limit;
        s.period = period;
    }

    /// The next requests get these statuses (with the error envelope).
    pub fn fail_next(&self, statuses: &[u16]) {
        self.lock().fail_next.extend(statuses);
    }

    pub fn value(&self, namespace: &str, key: &str) -> Option<Stored> {
        self.lock().namespaces.get(namespace)?.get(key).cloned()
    }

    pub fn keys(&self, namespace: &str) -> usize {
        self.lock()
            .namespaces
            .get(namespace)
            .map_or(0, HashMap::len)
    }

    /// Accepted bulk writes and bulk deletes.
    pub fn calls(&self) -> (u64, u64) {
        let s = self.lock();
        (s.writes, s.deletes)
    }

    /// Requests refused with 429.
    pub fn limited(&self) -> u64 {
        self.lock().limited
    }
}

fn envelope(status: StatusCode, code: u32, message: &str) -> Response {
    let body = json!({
        "success": false,
        "errors": [{"code": code, "message": message}],
        "messages": [],
        "result": null,
    });
    (status, Json(body)).into_response()
}

fn ok(result: Value) -> Response {
    Json(json!({"success": true, "errors": [], "messages": [], "result": result})).into_response()
}

/// The checks every request goes through: injected failures, the token, the rate limit, the
/// account and the namespace.
fn admit(s: &mut Inner, headers: &HeaderMap, account: &str, ns: &str) -> Result<(), Response> {
    if let Some(status) = s.fail_next.pop_front() {
        let status = StatusCode::from_u16(status).unwrap();
        let mut answer = envelope(status, 10_000 + u32::from(status.as_u16()), "injected");
        if status == StatusCode::TOO_MANY_REQUESTS {
            answer
                .headers_mut()
                .insert("retry-after", "1".parse().unwrap());
        }
        return Err(answer);
    }
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if bearer != Some(TOKEN) {
        return Err(envelope(
            StatusCode::FORBIDDEN,
            10_000,
            "Authentication error",
        ));
    }
    let now = Instant::now();
    let period = s.period;
    while s.sent.front().is_some_and(|t| now - *t > period) {
        s.sent.pop_front();
    }
    if s.sent.len() >= s.limit {
        s.limited += 1;
        let wait = period.saturating_sub(now - *s.sent.front().unwrap());
        let mut answer = envelope(
            StatusCode::TOO_MANY_REQUESTS,
            971,
            "Please wait and consider throttling your request speed",
        );
        let secs = wait.as_secs().max(1).to_string();
        answer
            .headers_mut()
            .insert("retry-after", secs.parse().unwrap());
        return Err(answer);
    }
    s.sent.push_back(now);
    if account != ACCOUNT {
        return Err(envelope(
            StatusCode::FORBIDDEN,
            10_000,
            "Authentication error",
        ));
    }
    if !s.namespaces.contains_key(ns) {
        return Err(envelope(
            StatusCode::NOT_FOUND,
            10_013,
            "list keys: 'namespace not found'",
        ));
    }
    Ok(())
}

/// The fake, locked, for a request [`admit`] let through.
fn admitted<'a>(
    inner: &'a Mutex<Inner>,
    headers: &HeaderMap,
    account: &str,
    ns: &str,
) -> Result<std::sync::MutexGuard<'a, Inner>, Response> {
    let mut s = inner.lock().unwrap();
    admit(&mut s, headers, account, ns)?;
    Ok(s)
}

async fn namespace(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path((account, ns)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(answer) = admitted(&inner, &headers, &account, &ns) {
        return answer;
    }
    ok(json!({"id": ns, "title": format!("namespace {ns}"), "supports_url_encoding": true}))
}

/// `GET …/values/{key}`: the value itself (not in the envelope), or 404 in the envelope.
async fn read_value(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path((account, ns, key)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let s = match admitted(&inner, &headers, &account, &ns) {
        Ok(s) => s,
        Err(answer) => return answer,
    };
    match s.namespaces[&ns].get(&key) {
        Some(stored) => (
            [("content-type", "application/octet-stream")],
            stored.value.clone(),
        )
            .into_response(),
        None => envelope(StatusCode::NOT_FOUND, 10_009, "get: 'key not found'"),
    }
}

async fn bulk_write(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path((account, ns)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut s = match admitted(&inner, &headers, &account, &ns) {
        Ok(s) => s,
        Err(answer) => return answer,
    };
    if body.len() > MAX_BYTES {
        return envelope(StatusCode::PAYLOAD_TOO_LARGE, 10_011, "request too large");
    }
    let Ok(Value::Array(pairs)) = serde_json::from_slice::<Value>(&body) else {
        return envelope(
            StatusCode::BAD_REQUEST,
            10_026,
            "could not parse request body",
        );
    };
    if pairs.len() > MAX_PAIRS {
        return envelope(
            StatusCode::BAD_REQUEST,
            10_021,
            "bulk write: at most 10000 key-value pairs",
        );
    }
    let mut accepted = Vec::with_capacity(pairs.len());
    for pair in &pairs {
        let (Some(key), Some(value)) = (pair["key"].as_str(), pair["value"].as_str()) else {
            return envelope(
                StatusCode::BAD_REQUEST,
                10_026,
                "each pair needs key and value strings",
            );
        };
        if key.is_empty() || key.len() > MAX_KEY {
            return envelope(StatusCode::BAD_REQUEST, 10_019, "key longer than 512 bytes");
        }
        let ttl = pair["expiration_ttl"].as_u64();
        if ttl.is_some_and(|t| t < 60) || (!pair["expiration_ttl"].is_null() && ttl.is_none()) {
            return envelope(
                StatusCode::BAD_REQUEST,
                10_023,
                "expiration_ttl must be at least 60 seconds",
            );
        }
        accepted.push((
            key.to_string(),
            Stored {
                value: value.to_string(),
                expiration_ttl: ttl,
            },
        ));
    }
    let count = accepted.len();
    let namespace = s.namespaces.get_mut(&ns).unwrap();
    namespace.extend(accepted);
    s.writes += 1;
    ok(json!({"successful_key_count": count, "unsuccessful_keys": []}))
}

async fn bulk_delete(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path((account, ns)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut s = match admitted(&inner, &headers, &account, &ns) {
        Ok(s) => s,
        Err(answer) => return answer,
    };
    let Ok(keys) = serde_json::from_slice::<Vec<String>>(&body) else {
        return envelope(
            StatusCode::BAD_REQUEST,
            10_026,
            "could not parse request body",
        );
    };
    if keys.len() > MAX_PAIRS {
        return envelope(
            StatusCode::BAD_REQUEST,
            10_021,
            "bulk delete: at most 10000 keys",
        );
    }
    let namespace = s.namespaces.get_mut(&ns).unwrap();
    for key in &keys {
        namespace.remove(key);
    }
    s.deletes += 1;
    ok(json!({"successful_key_count": keys.len(), "unsuccessful_keys": []}))
}
