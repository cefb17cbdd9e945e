//! A lead's timeline from BigQuery: its sessions and events of the window (partition-pruned,
//! clustered by visitor; events de-duplicated by id as the scoring queries do) and its level
//! changes.

use anyhow::Context;
use serde_json::{json, Value};

use super::BigQueryStore;
use crate::bigquery::query::Param;
use crate::store::timeline::{assemble, EVENTS, SESSIONS, WINDOW_MS};

impl BigQueryStore {
    pub async fn lead_timeline(&self, visitor: &str, now_ms: i64) -> anyhow::Result<Value> {
        let params = || {
            vec![
                Param::string("v", visitor),
                Param::int("since", now_ms - WINDOW_MS),
            ]
        };
        let sessions_sql = format!(
            "SELECT sessionId, startedAt, endedAt, pageviews, activeMs, maxScrollDepth,
                    formSubmissions, landingPath, exitPath
             FROM `${{dataset}}.sessions`
             WHERE startTime >= TIMESTAMP_MILLIS(@since - 86400000) AND visitorId = @v
               AND endedAt >= @since
             ORDER BY startedAt DESC LIMIT {SESSIONS}"
        );
        let events_sql = format!(
            "SELECT sessionId, eventType, timestamp, path, TO_JSON_STRING(data) AS data FROM (
               SELECT *, ROW_NUMBER() OVER (PARTITION BY eventId ORDER BY receivedAt) AS rn
               FROM `${{dataset}}.events`
               WHERE receivedAt >= TIMESTAMP_MILLIS(@since - 86400000) AND visitorId = @v
                 AND timestamp >= @since)
             WHERE rn = 1
             ORDER BY timestamp DESC LIMIT {EVENTS}"
        );
        let levels_sql = "SELECT previousLevel, newLevel, intentScore, changedAt
             FROM `${dataset}.level_changes`
             WHERE changeTime >= TIMESTAMP_MILLIS(@since) AND visitorId = @v
             ORDER BY changedAt";
        // Three independent jobs: the page waits for the slowest, not for their sum.
        let (sessions, events, levels) = tokio::try_join!(
            async {
                let rows = self.wh.query(&sessions_sql, params()).await;
                rows.context("reading the lead's sessions")
            },
            async {
                let rows = self.wh.query(&events_sql, params()).await;
                rows.context("reading the lead's events")
            },
            async {
                let rows = self.wh.query(levels_sql, params()).await;
                rows.context("reading the lead's level changes")
            },
        )?;
        let sessions = sessions
            .iter()
            .map(|r| {
                let mut s = Value::Object(r.clone());
                s["events"] = json!([]);
                s
            })
            .collect();
        let events = events
            .iter()
            .map(|r| {
                let data = r["data"]
                    .as_str()
                    .and_then(|d| serde_json::from_str::<Value>(d).ok())
                    .unwrap_or(Value::Null);
                json!({"sessionId": r["sessionId"], "type": r["eventType"], "at": r["timestamp"],
                       "path": r["path"], "data": data})
            })
            .collect();
        let levels = levels
            .iter()
            .map(|r| {
                json!({"previousLevel": r["previousLevel"], "level": r["newLevel"],
                       "score": r["intentScore"], "at": r["changedAt"]})
            })
            .collect();
        Ok(assemble(sessions, events, levels))
    }
}
