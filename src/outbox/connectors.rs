//! Each connector's health as the daemon last saw it, beside its queue, for
//! `oie connectors status`; and `oie connectors resume`, which asks the daemon to probe now.

use std::collections::HashMap;

use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use super::Outbox;

/// What the daemon writes when a connector's state changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConnectorState {
    pub connector: String,
    /// `ok`, `throttled`, `open`, `half_open` or `parked`.
    pub state: String,
    pub reason: Option<String>,
    pub detail: Option<String>,
    /// Since when it is in this state (ms).
    pub since: i64,
    /// When it tries again (ms), while held.
    pub next_try: Option<i64>,
    pub updated_at: i64,
}

/// A connector's queue.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Queue {
    pub queued: i64,
    pub inflight: i64,
    pub dead: i64,
    /// When the oldest queued delivery was made (ms).
    pub oldest_queued: Option<i64>,
}

impl Outbox {
    pub fn set_connector_state(&self, s: &ConnectorState) -> anyhow::Result<()> {
        self.with(|c| {
            c.prepare_cached(
                "INSERT INTO connector_state (connector, state, reason, detail, since, next_try, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (connector) DO UPDATE SET state = excluded.state, reason = excluded.reason,
                   detail = excluded.detail, since = excluded.since, next_try = excluded.next_try,
                   updated_at = excluded.updated_at",
            )?
            .execute(params![
                s.connector,
                s.state,
                s.reason,
                s.detail,
                s.since,
                s.next_try,
                s.updated_at
            ])
            .map(drop)
        })
    }

    pub fn connector_states(&self) -> anyhow::Result<HashMap<String, ConnectorState>> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT connector, state, reason, detail, since, next_try, updated_at FROM connector_state",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(ConnectorState {
                    connector: r.get(0)?,
                    state: r.get(1)?,
                    reason: r.get(2)?,
                    detail: r.get(3)?,
                    since: r.get(4)?,
                    next_try: r.get(5)?,
                    updated_at: r.get(6)?,
                })
            })?;
            rows.map(|r| r.map(|s| (s.connector.clone(), s))).collect()
        })
    }

    /// Each connector's queue.
    pub fn queues(&self) -> anyhow::Result<HashMap<String, Queue>> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT connector, state, COUNT(*), MIN(created_at) FROM deliveries
                 WHERE state IN ('queued', 'inflight', 'dead') GROUP BY connector, state",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, Option<i64>>(3)?,
                ))
            })?;
            let mut out: HashMap<String, Queue> = HashMap::new();
            for row in rows {
                let (connector, state, count, oldest) = row?;
                let q = out.entry(connector).or_default();
                match state.as_str() {
                    "queued" => {
                        q.queued = count;
                        q.oldest_queued = oldest;
                    }
                    "inflight" => q.inflight = count,
                    _ => q.dead = count,
                }
            }
            Ok(out)
        })
    }

    /// When each connector last delivered something (ms).
    pub fn last_successes(&self) -> anyhow::Result<HashMap<String, i64>> {
        self.with(|c| {
            let mut stmt = c.prepare("SELECT connector, at FROM connector_success")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect()
        })
    }

    /// Records what an operator did through the console or the API.
    pub fn record_action(
        &self,
        via: &str,
        action: &str,
        detail: &serde_json::Value,
        now_ms: i64,
    ) -> anyhow::Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO operator_actions (at, via, action, detail) VALUES (?1, ?2, ?3, ?4)",
                params![now_ms, via, action, detail.to_string()],
            )
            .map(|_| ())
        })
    }

    /// The newest operator actions, at most `limit`: `{at, via, action, detail}`.
    pub fn operator_actions(&self, limit: usize) -> anyhow::Result<Vec<serde_json::Value>> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT at, via, action, detail FROM operator_actions ORDER BY id DESC LIMIT ?1",
            )?;
            let rows = stmt.query_map([limit as i64], |r| {
                let detail: String = r.get(3)?;
                Ok(serde_json::json!({
                    "at": r.get::<_, i64>(0)?, "via": r.get::<_, String>(1)?,
                    "action": r.get::<_, String>(2)?,
                    "detail": serde_json::from_str::<serde_json::Value>(&detail).unwrap_or_default(),
                }))
            })?;
            rows.collect()
        })
    }

    /// Asks the running daemon to probe `connector` now.
    pub fn request_resume(&self, connector: &str, now_ms: i64) -> anyhow::Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO connector_resume (connector, requested_at) VALUES (?1, ?2)
                 ON CONFLICT (connector) DO UPDATE SET requested_at = excluded.requested_at",
                params![connector, now_ms],
            )
            .map(drop)
        })
    }

    /// Whether someone asked to probe `connector` now (the request is consumed).
    pub fn take_resume(&self, connector: &str) -> anyhow::Result<bool> {
        self.with(|c| {
            c.prepare_cached(
                "DELETE FROM connector_resume WHERE connector = ?1 RETURNING requested_at",
            )?
            .query_row([connector], |r| r.get::<_, i64>(0))
            .optional()
            .map(|r| r.is_some())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_queues_and_resume_requests() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(&dir.path().join("outbox.db")).unwrap();
        let mut state = ConnectorState {
            connector: "hook".into(),
            state: "parked".into(),
            reason: Some("not_found".into()),
            detail: Some("HTTP 404".into()),
            since: 10,
            next_try: Some(20),
            updated_at: 10,
        };
        outbox.set_connector_state(&state).unwrap();
        state.state = "ok".into();
        outbox.set_connector_state(&state).unwrap();
        assert_eq!(outbox.connector_states().unwrap()["hook"], state);

        assert!(!outbox.take_resume("hook").unwrap());
        outbox.request_resume("hook", 5).unwrap();
        assert!(outbox.take_resume("hook").unwrap());
        assert!(!outbox.take_resume("hook").unwrap(), "consumed");
        assert!(outbox.queues().unwrap().is_empty());
    }
}
