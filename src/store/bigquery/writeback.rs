//! Writing BigQuery: CRM outcomes appended to `crm_sync_log` with `insertAll`, and the fold of
//! that log into `crm_sync_state` (queries/5_crm_sync_state.sql).

use std::time::Duration;

use anyhow::Context;
use backon::{ExponentialBuilder, Retryable};
use gcp_bigquery_client::model::table_data_insert_all_request::TableDataInsertAllRequest;
use serde_json::{json, Value};

use super::BigQueryStore;
use crate::bigquery::query::Param;
use crate::routing::trigger_rfc3339;
use crate::store::SyncRecord;

/// The fold query, as shipped with this `oie`.
const FOLD_SQL: &str = include_str!("../../../sql/bigquery/queries/5_crm_sync_state.sql");

/// insertAll takes at most this many rows per call (BigQuery recommends ≤ 500).
const INSERT_BATCH: usize = 500;

impl BigQueryStore {
    /// Appends outcomes to `crm_sync_log` (insertId = delivery id), ≤ 500 rows per call. Rows
    /// BigQuery could not take for a passing reason are sent again; a row it refuses is an error
    /// naming why (the caller keeps it and tries again later).
    pub async fn append_outcomes(&self, records: &[SyncRecord]) -> anyhow::Result<()> {
        let rows: Vec<(String, Value)> = records
            .iter()
            .map(|r| (r.delivery_id.clone(), log_row(r)))
            .collect();
        self.append("crm_sync_log", &rows).await
    }

    /// Appends `(insertId, row)`s to `table` with `insertAll`, ≤ 500 rows per call: transport
    /// failures and 429/5xx are retried with backoff, rows BigQuery could not take for a passing
    /// reason are sent again (5 rounds), a refused row is an error naming it and why.
    pub(super) async fn append(&self, table: &str, rows: &[(String, Value)]) -> anyhow::Result<()> {
        for chunk in rows.chunks(INSERT_BATCH) {
            let mut pending: Vec<&(String, Value)> = chunk.iter().collect();
            let policy = ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(200))
                .with_max_delay(Duration::from_secs(5))
                .with_max_times(4)
                .with_jitter();
            for round in 1.. {
                let sending = pending.clone();
                let sent = (|| async { self.insert(table, &sending).await })
                    .retry(policy)
                    .when(is_transport)
                    .await?;
                match sent {
                    Inserted::All => break,
                    Inserted::Refused(why) => anyhow::bail!("{table} refused rows: {why}"),
                    Inserted::Retry(indices) if round < 5 => {
                        tracing::warn!(table, rows = indices.len(), "rows to send again");
                        pending = indices
                            .into_iter()
                            .filter_map(|i| sending.get(i).copied())
                            .collect();
                        tokio::time::sleep(Duration::from_millis(500 * round)).await;
                    }
                    Inserted::Retry(indices) => anyhow::bail!(
                        "{table} did not take {} rows after {round} rounds",
                        indices.len()
                    ),
                }
            }
        }
        Ok(())
    }

    async fn insert(&self, table: &str, rows: &[&(String, Value)]) -> anyhow::Result<Inserted> {
        let mut request = TableDataInsertAllRequest::new();
        request.skip_invalid_rows();
        for (id, row) in rows {
            request.add_row(Some(id.clone()), row)?;
        }
        let answer = self
            .wh
            .client
            .tabledata()
            .insert_all(&self.wh.project, &self.wh.dataset, table, request)
            .await?;
        let mut retry = Vec::new();
        for e in answer.insert_errors.unwrap_or_default() {
            let index = e.index.unwrap_or_default().max(0) as usize;
            let errors = e.errors.unwrap_or_default();
            let passing = errors.iter().all(|p| {
                matches!(
                    p.reason.as_deref(),
                    Some("stopped" | "backendError" | "internalError" | "timeout")
                )
            });
            if passing {
                retry.push(index);
            } else {
                let why = errors
                    .iter()
                    .map(|p| {
                        format!(
                            "{}: {}",
                            p.reason.as_deref().unwrap_or("invalid"),
                            p.message.as_deref().unwrap_or("")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; ");
                let (id, row) = rows.get(index).map(|(id, row)| (id.as_str(), row)).unzip();
                let visitor = row
                    .and_then(|r| r.get("visitorId").or(r.get("shortId")))
                    .and_then(Value::as_str)
                    .unwrap_or("?");
                let id = id.unwrap_or("?");
                return Ok(Inserted::Refused(format!(
                    "row {index} (visitor {visitor}, {id}): {why}"
                )));
            }
        }
        Ok(if retry.is_empty() {
            Inserted::All
        } else {
            Inserted::Retry(retry)
        })
    }

    /// Runs queries/5_crm_sync_state.sql at `now_ms`.
    pub async fn fold(&self, now_ms: i64) -> anyhow::Result<()> {
        self.wh
            .query(FOLD_SQL, vec![Param::timestamp("now", now_ms)])
            .await
            .context("folding crm_sync_log into crm_sync_state")?;
        Ok(())
    }
}

enum Inserted {
    All,
    /// Indices (into the rows sent) to send again.
    Retry(Vec<usize>),
    Refused(String),
}

/// Network trouble and 5xx/429 answers are worth another try; the rest are not.
fn is_transport(e: &anyhow::Error) -> bool {
    use gcp_bigquery_client::error::BQError;
    match e.downcast_ref::<BQError>() {
        Some(BQError::RequestError(_)) => true,
        Some(BQError::ResponseError { error }) => {
            error.error.code == 429 || error.error.code >= 500
        }
        _ => false,
    }
}

fn log_row(r: &SyncRecord) -> Value {
    let (success, id, error) = match &r.result {
        Ok(id) => (true, id.clone(), None),
        Err(e) => (false, None, Some(e.clone())),
    };
    json!({
        "deliveryId": r.delivery_id,
        "visitorId": r.visitor_id,
        "connector": r.connector,
        "success": success,
        "crmContactId": id,
        "error": error,
        "syncedAt": r.at_ms,
        "syncTime": trigger_rfc3339(r.at_ms),
        "ownerEmail": r.owner_email,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StoreConfig;
    use std::sync::{Arc, Mutex};

    use axum::extract::State;
    use axum::routing::post;
    use axum::{Json, Router};

    /// An insertAll endpoint that answers each call with the next scripted `insertErrors` and
    /// keeps the rows it was sent.
    async fn insert_all_fake(script: Vec<Value>) -> (String, Arc<Mutex<Vec<Vec<Value>>>>) {
        type Shared = (Arc<Mutex<Vec<Value>>>, Arc<Mutex<Vec<Vec<Value>>>>);
        let calls: Arc<Mutex<Vec<Vec<Value>>>> = Arc::default();
        let shared: Shared = (Arc::new(Mutex::new(script)), calls.clone());
        async fn insert(
            State((script, calls)): State<Shared>,
            Json(body): Json<Value>,
        ) -> Json<Value> {
            calls
                .lock()
                .unwrap()
                .push(body["rows"].as_array().cloned().unwrap_or_default());
            let mut script = script.lock().unwrap();
            let errors = if script.is_empty() {
                json!([])
            } else {
                script.remove(0)
            };
            Json(json!({"kind": "bigquery#tableDataInsertAllResponse", "insertErrors": errors}))
        }
        let app = Router::new()
            .route(
                "/bigquery/v2/projects/{p}/datasets/{d}/tables/{t}/insertAll",
                post(insert),
            )
            .with_state(shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (format!("http://{addr}"), calls)
    }

    async fn store(endpoint: &str) -> BigQueryStore {
        let config: StoreConfig = toml::from_str(&format!(
            "kind = \"bigquery\"\nproject = \"p\"\nendpoint = \"{endpoint}\""
        ))
        .unwrap();
        BigQueryStore::connect(&config).await.unwrap()
    }

    fn outcome(i: usize) -> SyncRecord {
        SyncRecord {
            delivery_id: format!("key-{i}"),
            visitor_id: format!("v{i}"),
            connector: "crm".into(),
            at_ms: 1_795_700_000_000,
            result: Ok(Some(format!("c{i}"))),
            owner_email: None,
        }
    }

    fn ids(rows: &[Value]) -> Vec<String> {
        rows.iter()
            .map(|r| r["insertId"].as_str().unwrap().to_string())
            .collect()
    }

    #[tokio::test]
    async fn rows_bigquery_could_not_take_are_sent_again_alone() {
        let (endpoint, calls) = insert_all_fake(vec![json!([
            {"index": 1, "errors": [{"reason": "backendError", "message": "try again"}]},
            {"index": 3, "errors": [{"reason": "stopped", "message": ""}]}
        ])])
        .await;
        let store = store(&endpoint).await;
        let records: Vec<SyncRecord> = (0..4).map(outcome).collect();
        store.append_outcomes(&records).await.unwrap();
        let calls = calls.lock().unwrap().clone();
        assert_eq!(calls.len(), 2);
        assert_eq!(ids(&calls[0]), ["key-0", "key-1", "key-2", "key-3"]);
        assert_eq!(
            ids(&calls[1]),
            ["key-1", "key-3"],
            "only the rows that failed"
        );
        assert_eq!(calls[1][0]["json"]["crmContactId"], "c1");
    }

    #[tokio::test]
    async fn a_refused_row_is_an_error_naming_it() {
        let (endpoint, _) = insert_all_fake(vec![json!([
            {"index": 2, "errors": [{"reason": "invalid", "message": "no such field: crmContactId"}]}
        ])])
        .await;
        let store = store(&endpoint).await;
        let records: Vec<SyncRecord> = (0..3).map(outcome).collect();
        let e = store
            .append_outcomes(&records)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("row 2 (visitor v2, key-2): invalid: no such field"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn outcomes_go_in_calls_of_at_most_500_rows() {
        let (endpoint, calls) = insert_all_fake(vec![]).await;
        let store = store(&endpoint).await;
        let records: Vec<SyncRecord> = (0..1_201).map(outcome).collect();
        store.append_outcomes(&records).await.unwrap();
        let sizes: Vec<usize> = calls.lock().unwrap().iter().map(Vec::len).collect();
        assert_eq!(sizes, [500, 500, 201]);
    }

    #[test]
    fn a_failure_is_logged_without_a_record_id() {
        let row = log_row(&SyncRecord {
            delivery_id: "k1".into(),
            visitor_id: "v1".into(),
            connector: "crm".into(),
            at_ms: 1_795_700_000_000,
            result: Err("INVALID_EMAIL".into()),
            owner_email: None,
        });
        assert_eq!(row["success"], json!(false));
        assert_eq!(row["crmContactId"], Value::Null);
        assert_eq!(row["error"], json!("INVALID_EMAIL"));
        assert_eq!(row["syncTime"], json!("2026-11-26T13:33:20.000Z"));
    }
}
