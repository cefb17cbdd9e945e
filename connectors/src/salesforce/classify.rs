//! Salesforce's answers: the error array of a refused request, and the per-record results of a
//! collection upsert.

use serde_json::Value;

use crate::outcome::summarize_body;
use crate::{classify_status, Failure, Outcome, Reason};

/// Codes that ask to come back later.
const THROTTLE_CODES: &[&str] = &["REQUEST_LIMIT_EXCEEDED", "SERVER_UNAVAILABLE"];

/// Codes that mean several records carry the same external id: a data problem to fix in
/// Salesforce, never retried.
const SEVERAL_MATCH_CODES: &[&str] = &["DUPLICATE_EXTERNAL_ID", "MULTIPLE_RECORDS_MATCH"];

/// One entry of an error array: `{message, errorCode | statusCode, fields}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SfError {
    pub code: String,
    pub message: String,
    pub fields: Vec<String>,
}

impl SfError {
    fn from_value(v: &Value) -> SfError {
        SfError {
            code: v["errorCode"]
                .as_str()
                .or(v["statusCode"].as_str())
                .unwrap_or("UNKNOWN")
                .to_string(),
            message: v["message"].as_str().unwrap_or_default().to_string(),
            fields: v["fields"]
                .as_array()
                .map(|f| {
                    f.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    fn describe(&self) -> String {
        let fields = if self.fields.is_empty() {
            String::new()
        } else {
            format!(" (fields: {})", self.fields.join(", "))
        };
        format!("{}: {}{fields}", self.code, self.message)
    }
}

/// The errors of a body that is an error array (or one error object).
pub fn errors(body: &str) -> Vec<SfError> {
    match serde_json::from_str::<Value>(body) {
        Ok(Value::Array(items)) => items.iter().map(SfError::from_value).collect(),
        Ok(v @ Value::Object(_)) => vec![SfError::from_value(&v)],
        _ => Vec::new(),
    }
}

/// The outcome of one record from its errors.
fn record_outcome(errors: &[SfError], external_id: &str) -> Outcome {
    let Some(first) = errors.first() else {
        return Outcome::failed(
            Reason::ServerError,
            "salesforce: the record failed without an error",
        );
    };
    let text = errors
        .iter()
        .map(SfError::describe)
        .collect::<Vec<_>>()
        .join("; ");
    let code = first.code.as_str();
    if SEVERAL_MATCH_CODES.contains(&code) {
        return Outcome::failed(Reason::InvalidItem, format!(
            "several records: more than one Salesforce record has this {external_id}; merge them ({text})"
        ));
    }
    let reason = match code {
        // Another transaction holds the record: the same record goes through a moment later.
        "UNABLE_TO_LOCK_ROW" => Reason::ServerError,
        c if THROTTLE_CODES.contains(&c) => Reason::Throttled,
        _ => Reason::InvalidItem,
    };
    Outcome::failed(reason, format!("salesforce: {text}"))
}

/// One outcome per record, from a collection upsert's results (in request order).
pub fn per_record(body: &str, count: usize, external_id: &str) -> Vec<Outcome> {
    let results: Vec<Value> = serde_json::from_str(body).unwrap_or_default();
    (0..count)
        .map(|i| match results.get(i) {
            Some(r) if r["success"] == Value::Bool(true) => Outcome::Delivered {
                record_id: r["id"].as_str().map(str::to_string),
            },
            Some(r) => {
                let errors: Vec<SfError> = r["errors"]
                    .as_array()
                    .map(|e| e.iter().map(SfError::from_value).collect())
                    .unwrap_or_default();
                record_outcome(&errors, external_id)
            }
            None => Outcome::failed(Reason::ServerError, "salesforce: no result for this record"),
        })
        .collect()
}

/// Each record's outcome of a collection delete, in order. A record already gone
/// (`ENTITY_IS_DELETED`, `INVALID_CROSS_REFERENCE_KEY`, `NOT_FOUND`) counts as deleted.
pub fn per_deletion(body: &str, ids: &[String]) -> Vec<Outcome> {
    let results: Vec<Value> = serde_json::from_str(body).unwrap_or_default();
    ids.iter()
        .enumerate()
        .map(|(i, id)| {
            let Some(r) = results.get(i) else {
                return Outcome::failed(
                    Reason::ServerError,
                    "salesforce: no result for this record",
                );
            };
            let errors: Vec<SfError> = r["errors"]
                .as_array()
                .map(|e| e.iter().map(SfError::from_value).collect())
                .unwrap_or_default();
            let gone = errors.iter().all(|e| {
                matches!(
                    e.code.as_str(),
                    "ENTITY_IS_DELETED" | "INVALID_CROSS_REFERENCE_KEY" | "NOT_FOUND"
                )
            });
            if r["success"] == Value::Bool(true) || gone {
                Outcome::Delivered {
                    record_id: Some(id.clone()),
                }
            } else {
                record_outcome(&errors, "Id")
            }
        })
        .collect()
}

/// What a refused request (any status but 200) means for every record in it.
pub fn refused(status: u16, body: &str, external_id: &str) -> Refusal {
    let errors = errors(body);
    let code = errors.first().map(|e| e.code.as_str()).unwrap_or_default();
    let text = if errors.is_empty() {
        summarize_body(body)
    } else {
        errors
            .iter()
            .map(SfError::describe)
            .collect::<Vec<_>>()
            .join("; ")
    };
    match (status, code) {
        (401, _) => Refusal::Session(text),
        (_, "REQUEST_LIMIT_EXCEEDED") => {
            let daily = errors
                .iter()
                .any(|e| e.message.contains("TotalRequests"));
            Refusal::Limit { daily, text }
        }
        (300, _) => Refusal::Final(Failure::new(Reason::InvalidItem, format!(
            "several records: more than one Salesforce record matches this {external_id}; merge them (HTTP 300)"
        ))),
        (_, "UNABLE_TO_LOCK_ROW") => {
            Refusal::Final(Failure::new(Reason::ServerError, format!("salesforce: {text}")))
        }
        // The user lacks a permission, or the API is off for the org: no record gets through.
        (403, _) => Refusal::Final(Failure::new(
            Reason::Auth,
            format!("salesforce: HTTP 403: {text}; check the integration user's permission set"),
        )),
        // The object or the API version does not exist.
        (404, _) => Refusal::Final(Failure::new(
            Reason::NotFound,
            format!("salesforce: HTTP 404: {text}; check `object` and `api_version`"),
        )),
        (400..=499, _) if !errors.is_empty() => Refusal::Final(Failure::new(
            Reason::InvalidItem,
            format!("salesforce: HTTP {status}: {text}"),
        )),
        _ => Refusal::Final(match classify_status(status, None, &text) {
            Outcome::Failed(f) => f.context("salesforce"),
            Outcome::Delivered { .. } => {
                Failure::new(Reason::ServerError, format!("salesforce: unexpected HTTP {status}"))
            }
        }),
    }
}

/// How a refused request is handled.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// 401: mint a new token and try once more.
    Session(String),
    /// `REQUEST_LIMIT_EXCEEDED`: the daily allocation (park) or concurrent requests (back off).
    Limit { daily: bool, text: String },
    /// Every record shares this failure.
    Final(Failure),
}
