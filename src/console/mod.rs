//! `/console`: the operator's web console — Now (the rises of 7 days, live), a lead's page,
//! deliveries (dead letters, replay with a dry-run diff), connectors (state, resume). Server
//! rendered from the API's data, with one small script for local times and live rows; no
//! build step. Signed in with the admin token (a session cookie, CSRF tokens on every form, a
//! strict Content-Security-Policy); off, saying how to turn it on, without a token.
//!
//! - `session`: sessions, cookies, CSRF. `html`: layout and escaping. `pages`: the pages.

mod html;
mod pages;
mod session;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::Value;

use crate::api::{now, Api};
use crate::clock::now_ms;
use html::{esc, page};
use session::Sessions;

/// A posted form's fields, in order.
type Fields = Vec<(String, String)>;

#[derive(Clone)]
pub struct Console {
    pub api: Api,
    sessions: Arc<Sessions>,
}

impl Console {
    pub fn new(api: Api) -> Console {
        Console {
            api,
            sessions: Arc::default(),
        }
    }

    /// The request's CSRF token when it is signed in; else the answer to give (the sign-in
    /// form, or how to turn the console on).
    fn signed_in(&self, headers: &HeaderMap) -> Result<String, Box<Response>> {
        if self.api.token.is_none() {
            return Err(Box::new(off()));
        }
        self.sessions
            .csrf(headers)
            .ok_or_else(|| Box::new(see_other("/console/signin")))
    }

    /// The form's fields, when its CSRF token is the session's.
    fn form(&self, headers: &HeaderMap, body: &[u8]) -> Result<(String, Fields), Box<Response>> {
        let csrf = self.signed_in(headers)?;
        let fields: Vec<(String, String)> =
            url::form_urlencoded::parse(body).into_owned().collect();
        let given = fields
            .iter()
            .find(|(k, _)| k == "csrf")
            .map(|(_, v)| v.as_str());
        if !given.is_some_and(|g| crate::ingest::same_secret(g, &csrf)) {
            return Err(Box::new(page(
                StatusCode::FORBIDDEN,
                "Form expired",
                Some(&csrf),
                "<p class=\"error\">This form has no valid CSRF token (it is from another session, or too old). Reload the page and try again.</p>",
            )));
        }
        Ok((csrf, fields))
    }
}

pub fn router(console: Console) -> Router {
    Router::new()
        .route("/console", get(now))
        .route("/console/signin", get(signin_form).post(signin))
        .route("/console/signout", post(signout))
        .route("/console/leads/{id}", get(lead))
        .route("/console/deliveries", get(deliveries))
        .route("/console/deliveries/replay", post(replay))
        .route("/console/deliveries/{id}", get(dead_letter))
        .route("/console/connectors", get(connectors))
        .route("/console/connectors/{name}/resume", post(resume))
        .route("/console/live", get(live))
        .route("/console/assets/{file}", get(asset))
        .with_state(console)
}

fn see_other(to: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        html::HEADERS,
        [(header::LOCATION, to.to_string())],
    )
        .into_response()
}

fn off() -> Response {
    page(
        StatusCode::FORBIDDEN,
        "Console off",
        None,
        "<p>The console needs an admin token: set <code>[server] admin_token = \"${OIE_ADMIN_TOKEN}\"</code> in config.toml, export <code>OIE_ADMIN_TOKEN</code>, and restart <code>oie run</code>.</p>",
    )
}

fn failed(csrf: &str, e: anyhow::Error) -> Response {
    tracing::error!(error = %format!("{e:#}"), "a console page failed");
    page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something failed",
        Some(csrf),
        "<p class=\"error\">The page could not be made; oie's log says why.</p>",
    )
}

/// Runs `f` on the blocking pool (the outbox is SQLite); a failure is the error page.
async fn blocking<T: Send + 'static>(
    csrf: &str,
    f: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> Result<T, Response> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(failed(csrf, e)),
        Err(e) => Err(failed(csrf, e.into())),
    }
}

fn signin_page(status: StatusCode, error: &str) -> Response {
    let error = if error.is_empty() {
        String::new()
    } else {
        format!("<p class=\"error\" role=\"alert\">{}</p>", esc(error))
    };
    page(
        status,
        "Sign in",
        None,
        &format!(
            "{error}<form method=\"post\" action=\"/console/signin\"><label>Admin token <input type=\"password\" name=\"token\" autocomplete=\"current-password\" autofocus required></label> <button>Sign in</button></form>"
        ),
    )
}

async fn signin_form(State(c): State<Console>) -> Response {
    if c.api.token.is_none() {
        return off();
    }
    signin_page(StatusCode::OK, "")
}

async fn signin(State(c): State<Console>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(token) = &c.api.token else {
        return off();
    };
    let given = url::form_urlencoded::parse(&body)
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned());
    if !given.is_some_and(|g| crate::ingest::same_secret(&g, token.expose())) {
        tracing::warn!("a console sign-in with a wrong token");
        return signin_page(StatusCode::UNAUTHORIZED, "That is not the admin token.");
    }
    let id = c.sessions.open();
    let mut answer = see_other("/console");
    if let Ok(v) = session::set_cookie(&id, &headers).parse() {
        answer.headers_mut().insert(header::SET_COOKIE, v);
    }
    answer
}

async fn signout(State(c): State<Console>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(answer) = c.form(&headers, &body) {
        return *answer;
    }
    c.sessions.close(&headers);
    let mut answer = see_other("/console/signin");
    if let Ok(v) = session::set_cookie("", &headers).parse() {
        answer.headers_mut().insert(header::SET_COOKIE, v);
    }
    answer
}

#[derive(Deserialize, Default)]
pub struct NowQuery {
    level: Option<String>,
    route: Option<String>,
    q: Option<String>,
    after: Option<String>,
}

async fn now(
    State(c): State<Console>,
    headers: HeaderMap,
    query: Result<Query<NowQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let csrf = match c.signed_in(&headers) {
        Ok(csrf) => csrf,
        Err(answer) => return *answer,
    };
    let query = query.map(|Query(q)| q).unwrap_or_default();
    let blank = |v: &Option<String>| v.clone().filter(|v| !v.is_empty());
    let filter = crate::api::now::Filter {
        level: blank(&query.level),
        route: blank(&query.route),
        q: blank(&query.q),
        limit: Some(50),
        after: blank(&query.after),
    };
    match crate::api::now::page(&c.api, filter, now_ms()).await {
        Ok(data) => page(
            StatusCode::OK,
            "Now",
            Some(&csrf),
            &pages::now(&data, &query),
        ),
        Err(e) => failed(&csrf, e),
    }
}

async fn lead(State(c): State<Console>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let csrf = match c.signed_in(&headers) {
        Ok(csrf) => csrf,
        Err(answer) => return *answer,
    };
    if !crate::lead::is_id(&id) {
        return page(
            StatusCode::BAD_REQUEST,
            "Not a lead",
            Some(&csrf),
            "<p>That is not a visitor id.</p>",
        );
    }
    match crate::api::lead::page(&c.api, &id, now_ms()).await {
        Ok(Some(data)) => {
            let (title, body) = pages::lead(&data);
            page(StatusCode::OK, &title, Some(&csrf), &body)
        }
        Ok(None) => page(
            StatusCode::NOT_FOUND,
            "No such lead",
            Some(&csrf),
            &format!("<p>No lead or account <code>{}</code>.</p>", esc(&id)),
        ),
        Err(e) => failed(&csrf, e),
    }
}

async fn deliveries(State(c): State<Console>, headers: HeaderMap) -> Response {
    let csrf = match c.signed_in(&headers) {
        Ok(csrf) => csrf,
        Err(answer) => return *answer,
    };
    let api = c.api.clone();
    let read = blocking(&csrf, move || {
        let report = crate::api::connectors::report(&api.pipeline.connectors, &api.outbox, true)?;
        let actions = api.outbox.operator_actions(20)?;
        Ok((report, api.outbox.dead_letters()?, actions))
    });
    match read.await {
        Ok((report, letters, actions)) => page(
            StatusCode::OK,
            "Deliveries",
            Some(&csrf),
            &(pages::queues(&report)
                + &pages::deliveries(&letters, &csrf)
                + &pages::actions(&actions)),
        ),
        Err(answer) => answer,
    }
}

async fn dead_letter(
    State(c): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let csrf = match c.signed_in(&headers) {
        Ok(csrf) => csrf,
        Err(answer) => return *answer,
    };
    let Ok(id) = id.parse::<i64>() else {
        return page(
            StatusCode::BAD_REQUEST,
            "Not a dead letter",
            Some(&csrf),
            "<p>A dead letter's id is a number.</p>",
        );
    };
    let outbox = c.api.outbox.clone();
    match blocking(&csrf, move || outbox.dead_letter(id)).await {
        Ok(Some(letter)) => {
            let letter = serde_json::to_value(&letter).unwrap_or_default();
            page(
                StatusCode::OK,
                &format!("Dead letter {id}"),
                Some(&csrf),
                &pages::dead_letter(&letter, &csrf),
            )
        }
        Ok(None) => page(
            StatusCode::NOT_FOUND,
            "No such dead letter",
            Some(&csrf),
            "<p>It was replayed or purged. <a href=\"/console/deliveries\">Deliveries</a></p>",
        ),
        Err(answer) => answer,
    }
}

async fn replay(State(c): State<Console>, headers: HeaderMap, body: Bytes) -> Response {
    let (csrf, fields) = match c.form(&headers, &body) {
        Ok(form) => form,
        Err(answer) => return *answer,
    };
    let ids: Vec<i64> = fields
        .iter()
        .filter(|(k, _)| k == "id")
        .filter_map(|(_, v)| v.parse().ok())
        .collect();
    let dry_run = fields.iter().any(|(k, v)| k == "dry" && v == "1");
    if ids.is_empty() {
        return page(
            StatusCode::BAD_REQUEST,
            "Nothing to replay",
            Some(&csrf),
            "<p>Tick the dead letters to replay. <a href=\"/console/deliveries\">Back</a></p>",
        );
    }
    let api = c.api.clone();
    let done = blocking(&csrf, move || {
        crate::api::replay_recorded(&api, "console", &ids, dry_run)
    });
    let done = match done.await {
        Ok(done) => done,
        Err(answer) => return answer,
    };
    if !dry_run && !done.requeued.is_empty() {
        (c.api.wake)();
    }
    let data = serde_json::json!({
        "dryRun": dry_run,
        "requeued": done.requeued,
        "letters": done.plans.iter().map(crate::api::replay::Plan::to_json).collect::<Vec<Value>>(),
    });
    let title = if dry_run {
        "What a replay sends"
    } else {
        "Replayed"
    };
    page(StatusCode::OK, title, Some(&csrf), &pages::replayed(&data))
}

async fn connectors(State(c): State<Console>, headers: HeaderMap) -> Response {
    let csrf = match c.signed_in(&headers) {
        Ok(csrf) => csrf,
        Err(answer) => return *answer,
    };
    let api = c.api.clone();
    let report = blocking(&csrf, move || {
        crate::api::connectors::report(&api.pipeline.connectors, &api.outbox, true)
    });
    match report.await {
        Ok(report) => page(
            StatusCode::OK,
            "Connectors",
            Some(&csrf),
            &pages::connectors(&report, &csrf),
        ),
        Err(answer) => answer,
    }
}

async fn resume(
    State(c): State<Console>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let csrf = match c.form(&headers, &body) {
        Ok((csrf, _)) => csrf,
        Err(answer) => return *answer,
    };
    if !c.api.pipeline.connectors.contains_key(&name) {
        return page(
            StatusCode::NOT_FOUND,
            "No such connector",
            Some(&csrf),
            "<p>No connector by that name.</p>",
        );
    }
    let outbox = c.api.outbox.clone();
    let resumed = blocking(&csrf, move || {
        crate::api::resume_recorded(&outbox, "console", &name)
    });
    if let Err(answer) = resumed.await {
        return answer;
    }
    (c.api.wake)();
    see_other("/console/connectors")
}

/// Server-sent events for an open Now page: each new rise (handed over after the page
/// opened), and each rise whose deliveries moved on (delivered, dead, …), as a rendered row,
/// within half a second. The outbox is read every half second; the lead store only when
/// something changed.
async fn live(State(c): State<Console>, headers: HeaderMap) -> Response {
    if let Err(answer) = c.signed_in(&headers) {
        return *answer;
    }
    let since = now_ms() - 1_000;
    let state = Live {
        api: c.api.clone(),
        shown: None,
        pending: std::collections::VecDeque::new(),
    };
    let stream = futures_util::stream::unfold(state, move |mut live| async move {
        loop {
            if let Some(event) = live.pending.pop_front() {
                return Some((Ok::<_, std::convert::Infallible>(event), live));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            live.poll(since).await;
        }
    });
    (
        html::HEADERS,
        Sse::new(stream).keep_alive(KeepAlive::default()),
    )
        .into_response()
}

/// One open Now page's stream.
struct Live {
    api: Api,
    /// Each rise's delivery states as last shown (`None` until the first poll, whose rises
    /// before the page opened are what the page shows already).
    shown: Option<std::collections::HashMap<String, String>>,
    pending: std::collections::VecDeque<Event>,
}

impl Live {
    async fn poll(&mut self, since: i64) {
        let outbox = self.api.outbox.clone();
        let Ok(Ok(rises)) = tokio::task::spawn_blocking(move || {
            outbox.recent_rises(since - now::WINDOW_MS, None, 50)
        })
        .await
        else {
            return;
        };
        let states = |r: &crate::outbox::Rise| {
            r.deliveries
                .iter()
                .map(|d| format!("{}:{}", d.connector, d.state))
                .collect::<Vec<_>>()
                .join(",")
        };
        let first = self.shown.is_none();
        let shown = self.shown.get_or_insert_with(Default::default);
        let mut changed = std::collections::HashSet::new();
        for r in &rises {
            let key = pages::rise_key(&r.visitor_id, r.at);
            let now = states(r);
            let before = shown.insert(key.clone(), now.clone());
            let fresh = before.is_none() && (!first || r.at >= since);
            if fresh || before.is_some_and(|b| b != now) {
                changed.insert(key);
            }
        }
        if changed.is_empty() {
            return;
        }
        let filter = now::Filter {
            limit: Some(50),
            ..Default::default()
        };
        let Ok(data) = now::page(&self.api, filter, now_ms()).await else {
            return;
        };
        // Oldest first, so the page ends with the newest on top.
        for item in data["items"].as_array().into_iter().flatten().rev() {
            let key = pages::now_key(item);
            if changed.contains(&key) {
                let data = serde_json::json!({"key": key, "row": pages::now_row(item)});
                self.pending
                    .push_back(Event::default().event("rise").data(data.to_string()));
            }
        }
    }
}

async fn asset(Path(file): Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "console.css" => (
            include_str!("assets/console.css"),
            "text/css; charset=utf-8",
        ),
        "console.js" => (
            include_str!("assets/console.js"),
            "text/javascript; charset=utf-8",
        ),
        "icon.svg" => (include_str!("assets/icon.svg"), "image/svg+xml"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    (html::HEADERS, [(header::CONTENT_TYPE, kind)], body).into_response()
}
