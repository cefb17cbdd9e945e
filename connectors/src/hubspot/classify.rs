//! HubSpot's answers, mapped to one outcome per input.

use std::time::Duration;

use serde_json::Value;

use crate::outcome::summarize_body;
use crate::{classify_status, Failure, Outcome, Reason};

/// How a 429 says to wait.
#[derive(Debug, PartialEq, Eq)]
pub enum Limit {
    /// `TEN_SECONDLY_ROLLING` (or an unnamed policy): wait for the window.
    Window,
    /// `DAILY`: the account's daily allocation is used up.
    Daily,
}

pub fn limit_policy(body: &str) -> Limit {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    match parsed.as_ref().and_then(|v| v["policyName"].as_str()) {
        Some("DAILY") => Limit::Daily,
        _ => Limit::Window,
    }
}

/// HubSpot's `message` (and `category`) from an error body; every field is optional.
pub fn message(body: &str) -> String {
    let Ok(v) = serde_json::from_str::<Value>(body) else {
        return summarize_body(body);
    };
    match (v["category"].as_str(), v["message"].as_str()) {
        (Some(c), Some(m)) => format!("{c}: {}", summarize_body(m)),
        (None, Some(m)) => summarize_body(m),
        _ => summarize_body(body),
    }
}

/// The failure shared by every input of a request HubSpot refused as a whole (429s aside).
pub fn refused(status: u16, retry_after: Option<Duration>, body: &str) -> Failure {
    let detail = message(body);
    match status {
        401 => Failure::new(Reason::Auth, format!(
            "HTTP 401: HubSpot rejected the token ({detail}); check the private-app token or Service Key, or the OAuth app's refresh token"
        )),
        403 => Failure::new(Reason::Auth, format!(
            "HTTP 403: the token lacks a scope ({detail}); grant crm.objects.contacts.write (and crm.objects.contacts.read for `oie connectors check`)"
        )),
        _ => match classify_status(status, retry_after, &detail) {
            Outcome::Failed(f) => f,
            Outcome::Delivered { .. } => {
                Failure::new(Reason::ServerError, format!("unexpected HTTP {status}"))
            }
        },
    }
}

/// The ids (lower-cased e-mails) an error of a 207 body is about.
fn error_ids(error: &Value) -> Vec<String> {
    let context = &error["context"];
    let mut ids = Vec::new();
    for key in ["ids", "id", "email"] {
        match &context[key] {
            Value::Array(items) => ids.extend(
                items
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_lowercase),
            ),
            Value::String(one) => ids.push(one.to_lowercase()),
            _ => {}
        }
    }
    ids
}

/// One outcome per input id (lower-cased values of the `key` property — e-mails for contacts —
/// in request order) from a 200 or 207 body: a result carrying the input's id is a delivery with
/// HubSpot's record id; an error naming it is `invalid_item` with HubSpot's message (`throttled`
/// for a rate limit, `server_error` for a 5xx); an input HubSpot said nothing about is retried
/// as `server_error`.
pub fn per_input(ids: &[String], key: &str, body: &Value) -> Vec<Outcome> {
    let mut out: Vec<Option<Outcome>> = vec![None; ids.len()];
    let index = |email: &str| ids.iter().position(|i| i == &email.to_lowercase());
    let results = body["results"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    for result in results {
        let email = result["properties"][key].as_str().unwrap_or_default();
        let record = match &result["id"] {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        };
        if let Some(i) = index(email) {
            out[i] = Some(Outcome::Delivered { record_id: record });
        }
    }
    let errors = body["errors"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let mut unnamed = Vec::new();
    for error in errors {
        let text = message(&error.to_string());
        let reason = if matches!(error["category"].as_str(), Some("RATE_LIMITS")) {
            Reason::Throttled
        } else if error["status"].as_str().is_some_and(|s| s.starts_with('5')) {
            Reason::ServerError
        } else {
            Reason::InvalidItem
        };
        let outcome = Outcome::failed(reason, format!("hubspot: {text}"));
        let named = error_ids(error);
        if named.is_empty() {
            unnamed.push(text);
        }
        for id in named {
            if let Some(i) = index(&id) {
                out[i].get_or_insert(outcome.clone());
            }
        }
    }
    out.into_iter()
        .map(|o| {
            o.unwrap_or_else(|| match unnamed.as_slice() {
                [] => Outcome::failed(Reason::ServerError, "hubspot: no result for this input"),
                errors => Outcome::failed(
                    Reason::ServerError,
                    format!("hubspot: {}", errors.join("; ")),
                ),
            })
        })
        .collect()
}
