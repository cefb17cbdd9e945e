//! `/api/v1/`: what an operator asks of a running `oie`, as JSON, for scripts (and the
//! console to come), behind `Authorization: Bearer <[server] admin_token>`. Without a token
//! configured every endpoint answers 403 with how to turn it on; a missing or wrong token is a
//! 401. The same in both modes: the outbox, and the lead store for who the leads are.
//!
//! - `GET  /api/v1/now?level=&route=&q=&limit=&after=`: the rises of the last 7 days.
//! - `GET  /api/v1/leads/{id}`: a lead's (or `account:<domain>`'s) page: profile, account,
//!   CRM records, sessions with events, rises, deliveries with attempts.
//! - `GET  /api/v1/connectors`: each connector's state, queue, dead letters, vendor limits.
//! - `POST /api/v1/connectors/{name}/resume`: probe a held connector now.
//! - `GET  /api/v1/deadletters`, `GET /api/v1/deadletters/{id}` (payload, every attempt).
//! - `POST /api/v1/deadletters/replay` `{"ids": [..] | "all": true, "dryRun": bool}`: each
//!   letter rendered again from today's config (the payload before and now), then requeued.
//! - `GET  /api/v1/actions`: what operators did (replays, resumes), through the API or the
//!   console, newest first.

pub mod connectors;
pub mod lead;
pub mod now;
pub mod replay;

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use oie_connectors::Secret;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::clock::now_ms;
use crate::outbox::Outbox;
use crate::pipeline::Pipeline;

#[derive(Clone)]
pub struct Api {
    pub outbox: Arc<Outbox>,
    pub pipeline: Arc<Pipeline>,
    pub store: Arc<dyn crate::store::LeadStore>,
    pub token: Option<Secret>,
    /// Wakes the connector loops (a replay or a resume has work for them).
    pub wake: Arc<dyn Fn() + Send + Sync>,
}

pub fn router(api: Api) -> Router {
    Router::new()
        .route("/api/v1/now", get(now_page))
        .route("/api/v1/leads/{id}", get(lead_page))
        .route("/api/v1/connectors", get(connectors_status))
        .route("/api/v1/connectors/{name}/resume", post(resume))
        .route("/api/v1/deadletters", get(dead_letters))
        .route("/api/v1/deadletters/{id}", get(dead_letter))
        .route("/api/v1/deadletters/replay", post(replay_letters))
        .route("/api/v1/actions", get(actions))
        .layer(axum::middleware::from_fn_with_state(
            api.clone(),
            authorized,
        ))
        .with_state(api)
}

/// An error answer: `{"error": "…"}`.
fn refuse(status: StatusCode, error: impl Into<String>) -> Response {
    (status, Json(json!({ "error": error.into() }))).into_response()
}

fn failed(e: anyhow::Error) -> Response {
    tracing::error!(error = %format!("{e:#}"), "an API request failed");
    refuse(
        StatusCode::INTERNAL_SERVER_ERROR,
        "the request failed; see oie's log",
    )
}

/// Lets a request through with the admin token, compared in constant time.
async fn authorized(State(api): State<Api>, request: Request, next: Next) -> Response {
    let Some(token) = &api.token else {
        return refuse(
            StatusCode::FORBIDDEN,
            "the API is off: set [server] admin_token = \"${OIE_ADMIN_TOKEN}\" and restart oie",
        );
    };
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if !given.is_some_and(|g| crate::ingest::same_secret(g, token.expose())) {
        let mut answer = refuse(StatusCode::UNAUTHORIZED, "a valid admin token is required");
        answer.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            "Bearer".parse().expect("header value"),
        );
        return answer;
    }
    next.run(request).await
}

/// A CRM record as the API shows it: `{connector, id, ownerEmail, url}` (`url` when the
/// connector has a `record_url`).
pub fn crm_json(api: &Api, record: &crate::store::CrmRecord) -> Value {
    let mut v = record.to_json();
    v["url"] = api
        .pipeline
        .connectors
        .get(&record.connector)
        .and_then(|h| h.connector.record_url(&record.id))
        .map_or(Value::Null, Value::String);
    v
}

/// Replays dead letters `ids` (each rendered again from today's config; with `dry_run`,
/// requeues none) and keeps what was done `via` the console or the API: which letters were (or
/// would be) requeued, and which were refused.
pub fn replay_recorded(
    api: &Api,
    via: &str,
    ids: &[i64],
    dry_run: bool,
) -> anyhow::Result<replay::Replay> {
    let done = replay::replay(
        &api.pipeline.connectors,
        &api.outbox,
        ids,
        dry_run,
        now_ms(),
    )?;
    tracing::info!(via, requeued = ?done.requeued, dry_run, "dead letters replayed");
    let refused: Vec<i64> = done
        .plans
        .iter()
        .filter(|p| p.now.is_err())
        .map(|p| p.id)
        .collect();
    let action = if dry_run { "replay_dry_run" } else { "replay" };
    let detail = json!({"requeued": done.requeued, "refused": refused, "notFound": done.not_found});
    api.outbox.record_action(via, action, &detail, now_ms())?;
    Ok(done)
}

/// Asks the daemon to probe connector `name` now, and keeps that it was asked `via` the
/// console or the API.
pub fn resume_recorded(outbox: &Outbox, via: &str, name: &str) -> anyhow::Result<()> {
    outbox.request_resume(name, now_ms())?;
    tracing::info!(via, connector = %name, "resume asked for");
    outbox.record_action(via, "resume", &json!({ "connector": name }), now_ms())
}

async fn actions(State(api): State<Api>) -> Response {
    match blocking(move || api.outbox.operator_actions(200)).await {
        Ok(actions) => Json(json!({ "actions": actions })).into_response(),
        Err(answer) => answer,
    }
}

/// Runs `f` on the blocking pool (the outbox is SQLite).
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> Result<T, Response> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(failed(e)),
        Err(e) => Err(failed(e.into())),
    }
}

async fn now_page(
    State(api): State<Api>,
    filter: Result<axum::extract::Query<now::Filter>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(axum::extract::Query(filter)) = filter else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "the filters are level, route, q, limit and after",
        );
    };
    match now::page(&api, filter, now_ms()).await {
        Ok(page) => Json(page).into_response(),
        Err(e) => failed(e),
    }
}

/// A lead's page (or an account's, `account:<domain>`): see [`lead::page`].
async fn lead_page(State(api): State<Api>, Path(id): Path<String>) -> Response {
    if !crate::lead::is_id(&id) {
        return refuse(StatusCode::BAD_REQUEST, "not a visitor id");
    }
    match lead::page(&api, &id, now_ms()).await {
        Ok(Some(page)) => Json(page).into_response(),
        Ok(None) => refuse(StatusCode::NOT_FOUND, format!("no lead or account `{id}`")),
        Err(e) => failed(e),
    }
}

async fn connectors_status(State(api): State<Api>) -> Response {
    match blocking(move || connectors::report(&api.pipeline.connectors, &api.outbox, true)).await {
        Ok(report) => Json(json!({ "connectors": report })).into_response(),
        Err(answer) => answer,
    }
}

async fn resume(State(api): State<Api>, Path(name): Path<String>) -> Response {
    if !api.pipeline.connectors.contains_key(&name) {
        return refuse(StatusCode::NOT_FOUND, format!("no connector `{name}`"));
    }
    let outbox = api.outbox.clone();
    let asked = name.clone();
    let resumed = blocking(move || resume_recorded(&outbox, "api", &asked));
    if let Err(answer) = resumed.await {
        return answer;
    }
    (api.wake)();
    (
        StatusCode::ACCEPTED,
        Json(json!({"connector": name, "resume": "requested: the connector probes now"})),
    )
        .into_response()
}

async fn dead_letters(State(api): State<Api>) -> Response {
    match blocking(move || api.outbox.dead_letters()).await {
        Ok(letters) => Json(json!({ "deadLetters": letters })).into_response(),
        Err(answer) => answer,
    }
}

async fn dead_letter(State(api): State<Api>, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<i64>() else {
        return refuse(StatusCode::BAD_REQUEST, "a dead letter id is a number");
    };
    match blocking(move || api.outbox.dead_letter(id)).await {
        Ok(Some(detail)) => Json(detail).into_response(),
        Ok(None) => refuse(StatusCode::NOT_FOUND, format!("no dead letter {id}")),
        Err(answer) => answer,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ReplayRequest {
    #[serde(default)]
    ids: Vec<i64>,
    #[serde(default)]
    all: bool,
    #[serde(default)]
    dry_run: bool,
}

async fn replay_letters(State(api): State<Api>, body: axum::body::Bytes) -> Response {
    let asked: ReplayRequest = match serde_json::from_slice(&body) {
        Ok(asked) => asked,
        Err(e) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                format!("expected {{\"ids\": [..]}} or {{\"all\": true}}, with \"dryRun\": true to see first: {e}"),
            )
        }
    };
    if asked.ids.is_empty() && !asked.all {
        return refuse(
            StatusCode::BAD_REQUEST,
            "name dead letter ids, or \"all\": true",
        );
    }
    let worker = api.clone();
    let done = blocking(move || {
        let ids = if asked.all {
            worker.outbox.dead_letters()?.iter().map(|d| d.id).collect()
        } else {
            asked.ids
        };
        let done = replay_recorded(&worker, "api", &ids, asked.dry_run)?;
        Ok((done, asked.dry_run))
    })
    .await;
    let (done, dry_run) = match done {
        Ok(done) => done,
        Err(answer) => return answer,
    };
    if !dry_run && !done.requeued.is_empty() {
        (api.wake)();
    }
    let plans: Vec<Value> = done.plans.iter().map(replay::Plan::to_json).collect();
    Json(json!({
        "dryRun": dry_run,
        "requeued": done.requeued,
        "notFound": done.not_found,
        "letters": plans,
    }))
    .into_response()
}
