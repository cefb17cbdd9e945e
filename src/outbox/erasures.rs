//! Erasure requests from the command line to a running daemon (`erasure_queue`).

use rusqlite::{params, OptionalExtension};

use super::Outbox;

impl Outbox {
    /// Asks the running daemon to erase `visitor`; returns the request's id.
    pub fn request_erasure(&self, visitor: &str, now_ms: i64) -> anyhow::Result<String> {
        let request = format!("r{now_ms:x}{:08x}", rand::random::<u32>());
        self.with(|c| {
            c.execute(
                "INSERT INTO erasure_queue (request, visitor_id, requested_at) VALUES (?1, ?2, ?3)",
                params![request, visitor, now_ms],
            )
        })?;
        Ok(request)
    }

    /// Requests not yet done: (request, visitor).
    pub fn erasure_requests(&self) -> anyhow::Result<Vec<(String, String)>> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT request, visitor_id FROM erasure_queue WHERE report IS NULL AND visitor_id IS NOT NULL
                 ORDER BY requested_at",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect()
        })
    }

    /// Answers a request and forgets whom it was about.
    pub fn answer_erasure(&self, request: &str, report: &str) -> anyhow::Result<()> {
        self.with(|c| {
            c.execute(
                "UPDATE erasure_queue SET visitor_id = NULL, report = ?2 WHERE request = ?1",
                params![request, report],
            )
        })?;
        Ok(())
    }

    /// The answer to a request, once there is one (the row is removed then).
    pub fn take_erasure_answer(&self, request: &str) -> anyhow::Result<Option<String>> {
        self.with(|c| {
            let report: Option<Option<String>> = c
                .query_row(
                    "SELECT report FROM erasure_queue WHERE request = ?1",
                    [request],
                    |r| r.get(0),
                )
                .optional()?;
            let report = report.flatten();
            if report.is_some() {
                c.execute("DELETE FROM erasure_queue WHERE request = ?1", [request])?;
            }
            Ok(report)
        })
    }
}

/// Where this replica is with one cloud erasure request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CloudErasure {
    pub outbox_done: bool,
    /// Rows deleted per table so far (tables absent: not done yet).
    pub deleted: serde_json::Map<String, serde_json::Value>,
    pub marked: bool,
}

impl Outbox {
    pub fn cloud_erasure(&self, hash: &str) -> anyhow::Result<CloudErasure> {
        let row: Option<(bool, String, bool)> = self.with(|c| {
            c.query_row(
                "SELECT outbox_done, deleted, marked FROM cloud_erasures WHERE visitor_hash = ?1",
                [hash],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
        })?;
        Ok(match row {
            Some((outbox_done, deleted, marked)) => CloudErasure {
                outbox_done,
                deleted: serde_json::from_str(&deleted).unwrap_or_default(),
                marked,
            },
            None => CloudErasure::default(),
        })
    }

    pub fn save_cloud_erasure(
        &self,
        hash: &str,
        e: &CloudErasure,
        now_ms: i64,
    ) -> anyhow::Result<()> {
        let deleted = serde_json::Value::Object(e.deleted.clone()).to_string();
        self.with(|c| {
            c.execute(
                "INSERT INTO cloud_erasures (visitor_hash, outbox_done, deleted, marked, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (visitor_hash) DO UPDATE SET outbox_done = excluded.outbox_done,
                   deleted = excluded.deleted, marked = excluded.marked, updated_at = excluded.updated_at",
                params![hash, e.outbox_done, deleted, e.marked, now_ms],
            )
        })?;
        Ok(())
    }
}
