//! Erasure in BigQuery: requests in `erasure_requests` (by a SHA-256 of the visitor id, as the
//! Worker records them), the visitor's rows deleted table by table, and the request marked done.

use anyhow::Context;
use gcp_bigquery_client::model::table_data_insert_all_request::TableDataInsertAllRequest;
use serde_json::json;

use super::BigQueryStore;
use crate::bigquery::query::Param;

/// Every table that holds a visitor, and the column that names it.
pub const TABLES: &[(&str, &str)] = &[
    ("events", "visitorId"),
    ("sessions", "visitorId"),
    ("lead_profiles", "visitorId"),
    ("identity_map", "shortId"),
    ("email_clicks", "visitorId"),
    ("hot_lead_alerts", "visitorId"),
    ("level_changes", "visitorId"),
    ("crm_sync_log", "visitorId"),
    ("crm_sync_state", "visitorId"),
];

/// Why a table's rows could not be deleted yet.
#[derive(Debug)]
pub enum NotYet {
    /// Some rows were streamed in the last ~30–90 minutes: BigQuery refuses DML on them.
    StreamingBuffer,
    Other(anyhow::Error),
}

impl BigQueryStore {
    /// Hashes of requests not done yet, oldest first.
    pub async fn pending_erasures(&self) -> anyhow::Result<Vec<String>> {
        let rows = self
            .wh
            .query(
                "SELECT visitorHash, MIN(requestedAt) AS first
                 FROM `${dataset}.erasure_requests` WHERE doneAt IS NULL
                 GROUP BY visitorHash ORDER BY first",
                vec![],
            )
            .await
            .context("reading erasure_requests")?;
        Ok(rows
            .iter()
            .filter_map(|r| r["visitorHash"].as_str().map(str::to_string))
            .collect())
    }

    /// The visitor ids with this hash that a profile or an identity still names.
    pub async fn visitors_hashed(&self, hash: &str) -> anyhow::Result<Vec<String>> {
        let rows = self
            .wh
            .query(
                "SELECT visitorId AS id FROM `${dataset}.lead_profiles` WHERE TO_HEX(SHA256(visitorId)) = @hash
                 UNION DISTINCT
                 SELECT shortId AS id FROM `${dataset}.identity_map` WHERE TO_HEX(SHA256(shortId)) = @hash",
                vec![Param::string("hash", hash)],
            )
            .await
            .context("finding the visitor of an erasure request")?;
        Ok(rows
            .iter()
            .filter_map(|r| r["id"].as_str().map(str::to_string))
            .collect())
    }

    /// Deletes the rows of `table` whose `column` hashes to `hash`; returns how many.
    pub async fn delete_hashed(
        &self,
        table: &str,
        column: &str,
        hash: &str,
    ) -> Result<i64, NotYet> {
        let sql =
            format!("DELETE FROM `${{dataset}}.{table}` WHERE TO_HEX(SHA256({column})) = @hash");
        self.wh
            .dml(&sql, vec![Param::string("hash", hash)])
            .await
            .map_err(|e| {
                if e.to_string().contains("streaming buffer") {
                    NotYet::StreamingBuffer
                } else {
                    NotYet::Other(e.context(format!("deleting from {table}")))
                }
            })
    }

    /// Marks the requests for `hash` done, with the rows deleted per table.
    pub async fn mark_erased(&self, hash: &str, deleted: &str) -> Result<i64, NotYet> {
        self.wh
            .dml(
                "UPDATE `${dataset}.erasure_requests` SET doneAt = CURRENT_TIMESTAMP(), deleted = @deleted
                 WHERE visitorHash = @hash AND doneAt IS NULL",
                vec![Param::string("hash", hash), Param::string("deleted", deleted)],
            )
            .await
            .map_err(|e| {
                if e.to_string().contains("streaming buffer") {
                    NotYet::StreamingBuffer
                } else {
                    NotYet::Other(e.context("marking an erasure request done"))
                }
            })
    }

    /// Records a request (`oie visitors erase`), as the Worker does.
    pub async fn request_erasure(&self, hash: &str, now_ms: i64) -> anyhow::Result<()> {
        let mut request = TableDataInsertAllRequest::new();
        request.add_row(
            Some(format!("{hash}:{now_ms}")),
            json!({
                "visitorHash": hash,
                "requestedAt": now_ms,
                "erased": json!({"requestedBy": "oie visitors erase"}).to_string(),
                "requestTime": crate::routing::trigger_rfc3339(now_ms),
            }),
        )?;
        let answer = self
            .wh
            .client
            .tabledata()
            .insert_all(
                &self.wh.project,
                &self.wh.dataset,
                "erasure_requests",
                request,
            )
            .await?;
        if let Some(e) = answer.insert_errors.and_then(|e| e.into_iter().next()) {
            anyhow::bail!("BigQuery refused the erasure request: {:?}", e.errors);
        }
        Ok(())
    }
}
