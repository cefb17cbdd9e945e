use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use super::Outbox;

/// A dead letter, as `oie deadletters list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct DeadLetter {
    pub id: i64,
    pub key: String,
    pub route: String,
    pub connector: String,
    pub visitor_id: String,
    pub trigger_kind: String,
    pub attempts: u32,
    pub created_at: i64,
    pub updated_at: i64,
    /// Why it failed: `invalid_item`, `render`, `timeout`, …
    pub reason: Option<String>,
    /// What the destination said.
    pub error: Option<String>,
}

/// One attempt of a delivery.
#[derive(Debug, Clone, Serialize)]
pub struct AttemptRow {
    pub at: i64,
    pub outcome: String,
    pub reason: Option<String>,
    pub error: Option<String>,
    pub millis: i64,
}

/// A dead letter with its payload and every attempt.
#[derive(Debug, Clone, Serialize)]
pub struct DeadLetterDetail {
    #[serde(flatten)]
    pub letter: DeadLetter,
    /// The rendered payload (absent when rendering failed).
    pub payload: Option<serde_json::Value>,
    /// The render input; a replay renders it again with the current config.
    pub context: Option<serde_json::Value>,
    pub attempt_log: Vec<AttemptRow>,
}

/// Every recorded attempt of delivery `id`, in order.
pub(super) fn attempt_log(c: &rusqlite::Connection, id: i64) -> rusqlite::Result<Vec<AttemptRow>> {
    let mut stmt = c.prepare_cached(
        "SELECT at, outcome, reason, error, millis FROM attempts WHERE delivery_id = ?1 ORDER BY id",
    )?;
    let rows = stmt.query_map([id], |r| {
        Ok(AttemptRow {
            at: r.get(0)?,
            outcome: r.get(1)?,
            reason: r.get(2)?,
            error: r.get(3)?,
            millis: r.get(4)?,
        })
    })?;
    rows.collect()
}

/// A dead letter's connector, render input and payload, for a replay to render again.
#[derive(Debug, Clone)]
pub struct RenderInput {
    pub id: i64,
    pub connector: String,
    pub context: Option<String>,
    pub payload: Option<String>,
}

/// What `replay` did (or would do, with `--dry-run`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReplayResult {
    pub requeued: Vec<i64>,
    pub not_found: Vec<i64>,
}

const COLUMNS: &str = "id, key, route, connector, visitor_id, trigger_kind, attempts, created_at,
                       updated_at, reason, last_error";

fn row(r: &rusqlite::Row) -> rusqlite::Result<DeadLetter> {
    Ok(DeadLetter {
        id: r.get(0)?,
        key: r.get(1)?,
        route: r.get(2)?,
        connector: r.get(3)?,
        visitor_id: r.get(4)?,
        trigger_kind: r.get(5)?,
        attempts: r.get(6)?,
        created_at: r.get(7)?,
        updated_at: r.get(8)?,
        reason: r.get(9)?,
        error: r.get(10)?,
    })
}

impl Outbox {
    /// Deletes dead letters last attempted before `before_ms`, with bodies and attempts; with
    /// `dry_run`, only counts them.
    pub fn purge_dead(&self, before_ms: i64, dry_run: bool) -> anyhow::Result<usize> {
        self.with(|c| {
            let tx = c.transaction()?;
            let old = "SELECT id FROM deliveries WHERE state = 'dead' AND updated_at < ?1";
            let n: usize =
                tx.query_row(&format!("SELECT COUNT(*) FROM ({old})"), [before_ms], |r| {
                    r.get(0)
                })?;
            if !dry_run {
                for table in ["attempts", "delivery_bodies"] {
                    tx.execute(
                        &format!("DELETE FROM {table} WHERE delivery_id IN ({old})"),
                        [before_ms],
                    )?;
                }
                tx.execute(
                    "DELETE FROM deliveries WHERE state = 'dead' AND updated_at < ?1",
                    [before_ms],
                )?;
            }
            tx.commit()?;
            Ok(n)
        })
    }

    pub fn dead_letters(&self) -> anyhow::Result<Vec<DeadLetter>> {
        self.with(|c| {
            let sql = format!("SELECT {COLUMNS} FROM deliveries WHERE state = 'dead' ORDER BY id");
            let mut stmt = c.prepare(&sql)?;
            let rows = stmt.query_map([], row)?;
            rows.collect()
        })
    }

    pub fn dead_letter(&self, id: i64) -> anyhow::Result<Option<DeadLetterDetail>> {
        self.with(|c| {
            let sql = format!(
                "SELECT {COLUMNS}, b.payload, b.context FROM deliveries
                 LEFT JOIN delivery_bodies b ON b.delivery_id = id
                 WHERE state = 'dead' AND id = ?1"
            );
            let found = c
                .query_row(&sql, [id], |r| {
                    Ok((
                        row(r)?,
                        r.get::<_, Option<String>>(11)?,
                        r.get::<_, Option<String>>(12)?,
                    ))
                })
                .optional()?;
            let Some((letter, payload, context)) = found else {
                return Ok(None);
            };
            let attempt_log = attempt_log(c, id)?;
            Ok(Some(DeadLetterDetail {
                letter,
                payload: payload.and_then(|p| serde_json::from_str(&p).ok()),
                context: context.and_then(|p| serde_json::from_str(&p).ok()),
                attempt_log,
            }))
        })
    }

    /// What a replay renders again: each dead letter's connector, render input and payload.
    pub fn render_inputs(&self, ids: &[i64]) -> anyhow::Result<Vec<RenderInput>> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT connector, b.context, b.payload FROM deliveries
                 LEFT JOIN delivery_bodies b ON b.delivery_id = id
                 WHERE id = ?1 AND state = 'dead'",
            )?;
            let mut out = Vec::new();
            for id in ids {
                if let Some((connector, context, payload)) = stmt
                    .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .optional()?
                {
                    out.push(RenderInput {
                        id: *id,
                        connector,
                        context,
                        payload,
                    });
                }
            }
            Ok(out)
        })
    }

    /// Puts the dead letters `ids` back in the queue with a fresh attempt budget. `rendered`
    /// supplies the payloads rendered again from their input; a letter with neither a new nor
    /// an old payload is not replayed.
    pub fn replay(
        &self,
        ids: &[i64],
        rendered: &[(i64, String)],
        dry_run: bool,
        now_ms: i64,
    ) -> anyhow::Result<ReplayResult> {
        self.with(|c| {
            let tx = c.transaction()?;
            let mut result = ReplayResult::default();
            for &id in ids {
                let payload = rendered.iter().find(|(i, _)| *i == id).map(|(_, p)| p.as_str());
                tx.execute(
                    "UPDATE delivery_bodies SET payload = ?2
                     WHERE delivery_id = ?1 AND ?2 IS NOT NULL
                       AND EXISTS (SELECT 1 FROM deliveries WHERE id = ?1 AND state = 'dead')",
                    params![id, payload],
                )?;
                let n = tx.execute(
                    "UPDATE deliveries SET state = 'queued', attempts = 0, tries = 0, created_at = ?2,
                            next_at = ?2, updated_at = ?2
                     WHERE id = ?1 AND state = 'dead'
                       AND EXISTS (SELECT 1 FROM delivery_bodies
                                   WHERE delivery_id = ?1 AND payload IS NOT NULL)",
                    params![id, now_ms],
                )?;
                if n == 1 {
                    tx.execute(
                        "INSERT INTO attempts (delivery_id, at, outcome, error, millis) VALUES (?1, ?2, 'replayed', NULL, 0)",
                        params![id, now_ms],
                    )?;
                    result.requeued.push(id);
                } else {
                    result.not_found.push(id);
                }
            }
            if dry_run {
                tx.rollback()?;
            } else {
                tx.commit()?;
            }
            Ok(result)
        })
    }
}
