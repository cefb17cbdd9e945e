//! The lead store of cloud mode: BigQuery (`[store] kind = "bigquery"`). Reads profile changes
//! from `lead_profiles` and level rises from `hot_lead_alerts`, each paged by a compound key
//! past a cursor the outbox keeps; appends CRM outcomes to `crm_sync_log` with `insertAll`;
//! folds that log into `crm_sync_state` (queries/5_crm_sync_state.sql).
//!
//! Cost: `hot_lead_alerts` reads are pruned to the partitions since the cursor; `lead_profiles`
//! is first probed for its newest `updatedAt` (one column), and read only when that moved.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context;
use backon::{ExponentialBuilder, Retryable};
use gcp_bigquery_client::model::table_data_insert_all_request::TableDataInsertAllRequest;
use serde_json::{json, Value};

use super::{SyncRecord, Writeback};
use crate::bigquery::query::{Param, Row, Warehouse};
use crate::config::StoreConfig;
use crate::lead::{Lead, Level, FIELDS};
use crate::routing::trigger_rfc3339;

/// The fold query, as shipped with this `oie`.
const FOLD_SQL: &str = include_str!("../../sql/bigquery/queries/5_crm_sync_state.sql");

/// insertAll takes at most this many rows per call (BigQuery recommends ≤ 500).
const INSERT_BATCH: usize = 500;

/// How far back the first read of `hot_lead_alerts` looks (the alert query's own window).
pub const ALERT_LOOKBACK_MS: i64 = 7 * 86_400_000;

/// A position in a table read in `(ms, id)` order: everything up to and including it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub ms: i64,
    pub id: String,
}

impl Cursor {
    /// `"<ms>:<id>"` (the id may itself hold colons).
    pub fn encode(&self) -> String {
        format!("{}:{}", self.ms, self.id)
    }

    pub fn decode(text: &str) -> Option<Cursor> {
        let (ms, id) = text.split_once(':')?;
        Some(Cursor {
            ms: ms.parse().ok()?,
            id: id.to_string(),
        })
    }
}

/// One `hot_lead_alerts` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub alert_id: String,
    pub visitor_id: String,
    pub level: Level,
    pub previous_level: Option<Level>,
    pub alerted_at: i64,
}

pub struct BigQueryStore {
    wh: Warehouse,
    /// The runtime the blocking [`Writeback`] calls run their requests on.
    runtime: tokio::runtime::Handle,
}

impl BigQueryStore {
    /// Connects (credentials as `oie bigquery apply` uses them). Call inside the runtime.
    pub async fn connect(store: &StoreConfig) -> anyhow::Result<BigQueryStore> {
        let project = store
            .project
            .clone()
            .context("[store] kind = \"bigquery\" needs `project`")?;
        Ok(BigQueryStore {
            wh: Warehouse {
                client: crate::bigquery::client::connect(store).await?,
                project,
                dataset: store.dataset.clone(),
                location: store.location.clone(),
                max_bytes_billed: store.max_bytes_billed,
            },
            runtime: tokio::runtime::Handle::current(),
        })
    }

    /// The newest `updatedAt` in `lead_profiles` (ms), `None` when it is empty.
    pub async fn latest_change(&self) -> anyhow::Result<Option<i64>> {
        let rows = self
            .wh
            .query(
                "SELECT UNIX_MILLIS(MAX(updatedAt)) AS latest FROM `${dataset}.lead_profiles`",
                vec![],
            )
            .await
            .context("probing lead_profiles for changes")?;
        Ok(rows.first().and_then(|r| r["latest"].as_i64()))
    }

    /// Profiles changed after `after`, in `(updatedAt, visitorId)` order, at most `limit`.
    pub async fn changed_profiles(
        &self,
        after: &Cursor,
        limit: usize,
    ) -> anyhow::Result<Vec<Lead>> {
        let sql = format!(
            "SELECT {} FROM `${{dataset}}.lead_profiles`
             WHERE (updatedAt > TIMESTAMP_MILLIS(@ms)) OR (updatedAt = TIMESTAMP_MILLIS(@ms) AND visitorId > @id)
             ORDER BY updatedAt, visitorId
             LIMIT {limit}",
            profile_columns()
        );
        let rows = self
            .wh
            .query(
                &sql,
                vec![Param::int("ms", after.ms), Param::string("id", &after.id)],
            )
            .await
            .context("reading changed lead_profiles")?;
        Ok(rows.iter().map(lead).collect())
    }

    /// The profiles of `visitor_ids` (those that exist).
    pub async fn profiles(&self, visitor_ids: &[&str]) -> anyhow::Result<HashMap<String, Lead>> {
        if visitor_ids.is_empty() {
            return Ok(HashMap::new());
        }
        let sql = format!(
            "SELECT {} FROM `${{dataset}}.lead_profiles` WHERE visitorId IN UNNEST(@ids)",
            profile_columns()
        );
        let rows = self
            .wh
            .query(&sql, vec![Param::strings("ids", visitor_ids)])
            .await
            .context("reading lead_profiles")?;
        Ok(rows
            .iter()
            .map(lead)
            .map(|l| (l.visitor_id().to_string(), l))
            .collect())
    }

    /// Alerts after `after`, in `(alertedAt, alertId)` order, at most `limit`; only the
    /// partitions since the cursor are read.
    pub async fn alerts_after(&self, after: &Cursor, limit: usize) -> anyhow::Result<Vec<Alert>> {
        let sql = format!(
            "SELECT alertId, visitorId, newLevel, previousLevel, alertedAt
             FROM `${{dataset}}.hot_lead_alerts`
             WHERE alertTime >= TIMESTAMP_MILLIS(@ms)
               AND ((alertedAt > @ms) OR (alertedAt = @ms AND alertId > @id))
             ORDER BY alertedAt, alertId
             LIMIT {limit}"
        );
        let rows = self
            .wh
            .query(
                &sql,
                vec![Param::int("ms", after.ms), Param::string("id", &after.id)],
            )
            .await
            .context("reading hot_lead_alerts")?;
        rows.iter()
            .map(|r| {
                let text = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or_default();
                Ok(Alert {
                    alert_id: text("alertId").to_string(),
                    visitor_id: text("visitorId").to_string(),
                    level: Level::parse(text("newLevel")).with_context(|| {
                        format!("alert {}: newLevel {:?}", text("alertId"), text("newLevel"))
                    })?,
                    previous_level: Level::parse(text("previousLevel")),
                    alerted_at: r["alertedAt"].as_i64().unwrap_or_default(),
                })
            })
            .collect()
    }

    /// The known CRM record ids of each lead, newest first: from `crm_sync_state` and the
    /// outcomes of the last 2 days not folded yet.
    pub async fn crm_ids(
        &self,
        visitor_ids: &[&str],
    ) -> anyhow::Result<HashMap<String, Vec<(String, String)>>> {
        if visitor_ids.is_empty() {
            return Ok(HashMap::new());
        }
        let rows = self
            .wh
            .query(
                "SELECT visitorId, connector, crmContactId, lastSyncedAt AS at
                 FROM `${dataset}.crm_sync_state`
                 WHERE visitorId IN UNNEST(@ids) AND crmContactId IS NOT NULL
                 UNION ALL
                 SELECT visitorId, connector, crmContactId, syncedAt AS at
                 FROM `${dataset}.crm_sync_log`
                 WHERE syncTime >= TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL 2 DAY)
                   AND visitorId IN UNNEST(@ids) AND success AND crmContactId IS NOT NULL",
                vec![Param::strings("ids", visitor_ids)],
            )
            .await
            .context("reading CRM record ids")?;
        Ok(newest_ids(&rows))
    }

    /// Appends outcomes to `crm_sync_log` (insertId = delivery id), ≤ 500 rows per call. Rows
    /// BigQuery could not take for a passing reason are sent again; a row it refuses is an error
    /// naming why (the caller keeps it and tries again later).
    pub async fn append_outcomes(&self, records: &[SyncRecord]) -> anyhow::Result<()> {
        for chunk in records.chunks(INSERT_BATCH) {
            let mut pending: Vec<&SyncRecord> = chunk.iter().collect();
            let policy = ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(200))
                .with_max_delay(Duration::from_secs(5))
                .with_max_times(4)
                .with_jitter();
            for round in 1.. {
                let rows = pending.clone();
                let sent = (|| async { self.insert(&rows).await })
                    .retry(policy)
                    .when(is_transport)
                    .await?;
                match sent {
                    Inserted::All => break,
                    Inserted::Refused(why) => anyhow::bail!("crm_sync_log refused rows: {why}"),
                    Inserted::Retry(indices) if round < 5 => {
                        tracing::warn!(rows = indices.len(), "crm_sync_log: rows to send again");
                        pending = indices
                            .into_iter()
                            .filter_map(|i| rows.get(i).copied())
                            .collect();
                        tokio::time::sleep(Duration::from_millis(500 * round)).await;
                    }
                    Inserted::Retry(indices) => anyhow::bail!(
                        "crm_sync_log did not take {} rows after {round} rounds",
                        indices.len()
                    ),
                }
            }
        }
        Ok(())
    }

    async fn insert(&self, records: &[&SyncRecord]) -> anyhow::Result<Inserted> {
        let mut request = TableDataInsertAllRequest::new();
        request.skip_invalid_rows();
        for r in records {
            request.add_row(Some(r.delivery_id.clone()), log_row(r))?;
        }
        let answer = self
            .wh
            .client
            .tabledata()
            .insert_all(&self.wh.project, &self.wh.dataset, "crm_sync_log", request)
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
                let visitor = records
                    .get(index)
                    .map(|r| r.visitor_id.as_str())
                    .unwrap_or("?");
                return Ok(Inserted::Refused(format!(
                    "row {index} (visitor {visitor}): {why}"
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

impl Writeback for BigQueryStore {
    fn record_sync(&self, records: &[SyncRecord]) -> anyhow::Result<()> {
        self.runtime.block_on(self.append_outcomes(records))
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

/// The `lead_profiles` columns a [`Lead`] has, `updatedAt` as epoch ms.
fn profile_columns() -> String {
    FIELDS
        .iter()
        .filter(|(name, _)| *name != "changeSeq")
        .map(|(name, _)| *name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A lead from a `lead_profiles` row; its version (`changeSeq`) is `updatedAt`.
fn lead(row: &Row) -> Lead {
    let mut fields = row.clone();
    fields.insert(
        "changeSeq".into(),
        row.get("updatedAt").cloned().unwrap_or(Value::Null),
    );
    Lead::from_json(&fields)
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
    })
}

/// visitorId → [(connector, record id)], newest first, one per connector.
fn newest_ids(rows: &[Row]) -> HashMap<String, Vec<(String, String)>> {
    let mut all: Vec<(&str, &str, &str, i64)> = rows
        .iter()
        .filter_map(|r| {
            Some((
                r.get("visitorId")?.as_str()?,
                r.get("connector")?.as_str()?,
                r.get("crmContactId")?.as_str()?,
                r.get("at").and_then(Value::as_i64).unwrap_or(0),
            ))
        })
        .collect();
    all.sort_by_key(|r| std::cmp::Reverse(r.3));
    let mut out: HashMap<String, Vec<(String, String)>> = HashMap::new();
    for (visitor, connector, id, _) in all {
        let ids = out.entry(visitor.to_string()).or_default();
        if !ids.iter().any(|(c, _)| c == connector) {
            ids.push((connector.to_string(), id.to_string()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_ids_with_colons() {
        let c = Cursor {
            ms: 1_795_700_000_000,
            id: "ab3f9:1795699999000".into(),
        };
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        assert_eq!(Cursor::decode("nonsense"), None);
    }

    #[test]
    fn the_newest_id_per_connector_wins() {
        let row = |v: &str, c: &str, id: &str, at: i64| -> Row {
            json!({"visitorId": v, "connector": c, "crmContactId": id, "at": at})
                .as_object()
                .unwrap()
                .clone()
        };
        let ids = newest_ids(&[
            row("v1", "hubspot", "old", 1),
            row("v1", "hubspot", "new", 5),
            row("v1", "salesforce", "00Q", 3),
        ]);
        assert_eq!(
            ids["v1"],
            vec![
                ("hubspot".to_string(), "new".to_string()),
                ("salesforce".to_string(), "00Q".to_string())
            ]
        );
    }

    #[test]
    fn a_failure_is_logged_without_a_record_id() {
        let row = log_row(&SyncRecord {
            delivery_id: "k1".into(),
            visitor_id: "v1".into(),
            connector: "crm".into(),
            at_ms: 1_795_700_000_000,
            result: Err("INVALID_EMAIL".into()),
        });
        assert_eq!(row["success"], json!(false));
        assert_eq!(row["crmContactId"], Value::Null);
        assert_eq!(row["error"], json!("INVALID_EMAIL"));
        assert_eq!(row["syncTime"], json!("2026-11-26T13:33:20.000Z"));
    }
}
