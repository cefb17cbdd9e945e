//! A local Slack: incoming webhooks (`POST /hooks/{channel}`) and `chat.postMessage`
//! (`POST /api/chat.postMessage`, each message its own `ts`, kept with it with its `thread_ts`
//! and `reply_broadcast`), with Slack's response shapes and a per-channel rate limit
//! of one message per `min_interval` that tolerates a short burst (VENDORS.md: "short bursts
//! tolerated") and answers 429 + Retry-After beyond it. Members (`add_user`) can be looked up
//! by id (`users.info`) and by e-mail (`users.lookupByEmail`), and messaged directly
//! (`chat.postMessage` with `channel` = their id; kept under that id).
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};

pub const TOKEN: &str = "xoxb-fake-token";

#[derive(Default)]
struct Inner {
    min_interval: Duration,
    /// Per channel, when the channel's allowance is next fully spent (GCRA's theoretical
    /// arrival time).
    due: HashMap<String, Instant>,
    messages: Vec<(String, Value)>,
    /// Each message's `ts`, as Slack gives one per message.
    next_ts: u64,
    rate_limited: usize,
    /// The bot token is refused (`invalid_auth`) until then: a token being rotated.
    refuse_until: Option<Instant>,
    refused: usize,
    /// `chat.update` calls that changed a message.
    updates: usize,
    /// The workspace's members: user id → e-mail.
    users: HashMap<String, String>,
    /// `users.lookupByEmail` calls.
    lookups: usize,
}

#[derive(Clone)]
pub struct SlackFake {
    pub base: String,
    inner: Arc<Mutex<Inner>>,
}

impl SlackFake {
    pub async fn start(min_interval: Duration) -> SlackFake {
        let inner = Arc::new(Mutex::new(Inner {
            min_interval,
            ..Inner::default()
        }));
        let app = Router::new()
            .route("/hooks/{channel}", post(webhook))
            .route("/api/chat.postMessage", post(post_message))
            .route("/api/auth.test", post(auth_test))
            .route("/api/chat.update", post(update_message))
            .route("/api/users.info", axum::routing::get(users_info))
            .route(
                "/api/users.lookupByEmail",
                axum::routing::get(lookup_by_email),
            )
            .with_state(inner.clone());
        SlackFake {
            base: oie_fakes::serve(app).await,
            inner,
        }
    }

    /// Messages accepted in `channel`, in order.
    pub fn messages(&self, channel: &str) -> Vec<Value> {
        self.inner
            .lock()
            .unwrap()
            .messages
            .iter()
            .filter(|(c, _)| c == channel)
            .map(|(_, m)| m.clone())
            .collect()
    }

    pub fn rate_limited(&self) -> usize {
        self.inner.lock().unwrap().rate_limited
    }

    /// `chat.postMessage` answers `invalid_auth` for `d` from now.
    pub fn refuse_tokens_for(&self, d: Duration) {
        self.inner.lock().unwrap().refuse_until = Some(Instant::now() + d);
    }

    /// A member of the workspace, with an e-mail `users.info` tells.
    pub fn add_user(&self, id: &str, email: &str) {
        self.inner
            .lock()
            .unwrap()
            .users
            .insert(id.into(), email.into());
    }

    /// `users.lookupByEmail` calls so far.
    pub fn lookups(&self) -> usize {
        self.inner.lock().unwrap().lookups
    }

    /// `chat.update` calls that changed a message so far.
    pub fn updates(&self) -> usize {
        self.inner.lock().unwrap().updates
    }

    /// Messages refused with `invalid_auth` so far.
    pub fn refused(&self) -> usize {
        self.inner.lock().unwrap().refused
    }
}

/// Whether the request carries the bot token.
fn authorized(headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|h| h.to_str().ok()) == Some(&format!("Bearer {TOKEN}"))
}

/// What a channel name means to the fake: most accept, some fail as Slack does.
fn channel_error(channel: &str) -> Option<&'static str> {
    match channel {
        "archived" => Some("is_archived"),
        "missing" => Some("channel_not_found"),
        "private" => Some("not_in_channel"),
        _ => None,
    }
}

/// Messages a channel takes back to back before the pace applies: one arriving early by
/// network jitter passes, a burst does not.
const BURST: u32 = 2;

/// Accepts the message unless it comes too soon (its `ts`); `Err(retry_after_secs)` when
/// rate-limited.
fn accept(inner: &Mutex<Inner>, channel: &str, mut message: Value) -> Result<String, u64> {
    let mut s = inner.lock().unwrap();
    let now = Instant::now();
    let interval = s.min_interval;
    let due = s.due.get(channel).copied().unwrap_or(now).max(now);
    if due.duration_since(now) > interval * (BURST - 1) {
        s.rate_limited += 1;
        return Err(1);
    }
    s.due.insert(channel.to_string(), due + interval);
    s.next_ts += 1;
    let ts = format!("1795700000.{:06}", s.next_ts);
    message["ts"] = json!(ts);
    s.messages.push((channel.to_string(), message));
    Ok(ts)
}

fn valid_blocks(message: &Value) -> bool {
    let Some(blocks) = message.get("blocks") else {
        return true;
    };
    let Some(blocks) = blocks.as_array() else {
        return false;
    };
    blocks.len() <= 50
        && blocks.iter().all(|b| match b["type"].as_str() {
            Some("header") => {
                b["text"]["type"] == "plain_text"
                    && b["text"]["text"]
                        .as_str()
                        .is_some_and(|t| t.chars().count() <= 150)
            }
            Some("section") => {
                b["text"]["text"]
                    .as_str()
                    .is_none_or(|t| t.chars().count() <= 3000)
                    && b["fields"].as_array().is_none_or(|f| {
                        f.len() <= 10
                            && f.iter().all(|x| {
                                x["text"]
                                    .as_str()
                                    .is_some_and(|t| t.chars().count() <= 2000)
                            })
                    })
            }
            Some("context" | "actions" | "divider") => true,
            _ => false,
        })
}

async fn webhook(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path(channel): Path<String>,
    body: String,
) -> Response {
    let Ok(message) = serde_json::from_str::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "invalid_payload").into_response();
    };
    if let Some(code) = channel_error(&channel) {
        let status = if code == "is_archived" {
            StatusCode::GONE
        } else {
            StatusCode::NOT_FOUND
        };
        let code = if code == "is_archived" {
            "channel_is_archived"
        } else {
            code
        };
        return (status, code).into_response();
    }
    if !valid_blocks(&message) {
        return (StatusCode::BAD_REQUEST, "invalid_blocks").into_response();
    }
    match accept(&inner, &channel, message) {
        Ok(_) => (StatusCode::OK, "ok").into_response(),
        Err(secs) => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", secs.to_string())],
            "rate_limited",
        )
            .into_response(),
    }
}

async fn auth_test(headers: HeaderMap) -> Response {
    let body = if authorized(&headers) {
        json!({"ok": true, "team": "Acme", "user": "oie", "team_id": "T0ACME", "user_id": "U0OIE"})
    } else {
        json!({"ok": false, "error": "invalid_auth"})
    };
    (StatusCode::OK, axum::Json(body)).into_response()
}

async fn post_message(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let ok = |v: Value| (StatusCode::OK, axum::Json(v)).into_response();
    let rotating = {
        let mut s = inner.lock().unwrap();
        let rotating = s.refuse_until.is_some_and(|t| Instant::now() < t);
        s.refused += usize::from(rotating);
        rotating
    };
    if rotating || !authorized(&headers) {
        return ok(json!({"ok": false, "error": "invalid_auth"}));
    }
    let Ok(message) = serde_json::from_str::<Value>(&body) else {
        return ok(json!({"ok": false, "error": "invalid_json"}));
    };
    let channel = message["channel"].as_str().unwrap_or_default().to_string();
    if let Some(code) = channel_error(&channel) {
        return ok(json!({"ok": false, "error": code}));
    }
    // A direct message: the user must be a member.
    let dm = channel.starts_with('U');
    if dm && !inner.lock().unwrap().users.contains_key(&channel) {
        return ok(json!({"ok": false, "error": "channel_not_found"}));
    }
    if !valid_blocks(&message) {
        return ok(json!({"ok": false, "error": "invalid_blocks"}));
    }
    match accept(&inner, &channel, message) {
        // Slack answers a direct message with the conversation's id.
        Ok(ts) if dm => ok(json!({"ok": true, "channel": format!("D{}", &channel[1..]), "ts": ts})),
        Ok(ts) => ok(json!({"ok": true, "channel": channel, "ts": ts})),
        Err(secs) => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", secs.to_string())],
            axum::Json(json!({"ok": false, "error": "ratelimited"})),
        )
            .into_response(),
    }
}

/// `chat.update`: replaces the text and blocks of the message at `channel` and `ts`.
async fn update_message(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let ok = |v: Value| (StatusCode::OK, axum::Json(v)).into_response();
    if !authorized(&headers) {
        return ok(json!({"ok": false, "error": "invalid_auth"}));
    }
    let Ok(update) = serde_json::from_str::<Value>(&body) else {
        return ok(json!({"ok": false, "error": "invalid_json"}));
    };
    if !valid_blocks(&update) {
        return ok(json!({"ok": false, "error": "invalid_blocks"}));
    }
    let mut s = inner.lock().unwrap();
    let found = s
        .messages
        .iter_mut()
        .find(|(c, m)| update["channel"].as_str() == Some(c.as_str()) && m["ts"] == update["ts"]);
    let Some((_, message)) = found else {
        return ok(json!({"ok": false, "error": "message_not_found"}));
    };
    message["text"] = update["text"].clone();
    message["blocks"] = update["blocks"].clone();
    s.updates += 1;
    ok(json!({"ok": true, "channel": update["channel"], "ts": update["ts"]}))
}

/// `users.info?user=U…`: `{ok, user: {id, profile: {email}}}` or `user_not_found`.
async fn users_info(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<HashMap<String, String>>,
) -> Response {
    let ok = |v: Value| (StatusCode::OK, axum::Json(v)).into_response();
    if !authorized(&headers) {
        return ok(json!({"ok": false, "error": "invalid_auth"}));
    }
    let user = q.get("user").cloned().unwrap_or_default();
    match inner.lock().unwrap().users.get(&user) {
        Some(email) => ok(json!({"ok": true, "user": {"id": user, "profile": {"email": email}}})),
        None => ok(json!({"ok": false, "error": "user_not_found"})),
    }
}

/// `users.lookupByEmail?email=…`: `{ok, user: {id, profile: {email}}}` or `users_not_found`.
async fn lookup_by_email(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<HashMap<String, String>>,
) -> Response {
    let ok = |v: Value| (StatusCode::OK, axum::Json(v)).into_response();
    if !authorized(&headers) {
        return ok(json!({"ok": false, "error": "invalid_auth"}));
    }
    let email = q.get("email").map(|e| e.to_lowercase()).unwrap_or_default();
    let mut s = inner.lock().unwrap();
    s.lookups += 1;
    let found = s
        .users
        .iter()
        .find(|(_, e)| e.to_lowercase() == email)
        .map(|(id, e)| (id.clone(), e.clone()));
    match found {
        Some((id, e)) => ok(json!({"ok": true, "user": {"id": id, "profile": {"email": e}}})),
        None => ok(json!({"ok": false, "error": "users_not_found"})),
    }
}
