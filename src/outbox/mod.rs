//! The durable queue of deliveries (`<data_dir>/outbox.db`, SQLite in WAL mode): enqueue,
//! claim, record outcomes, dead letters. Sources hand work in; the dispatcher takes it out.

mod actions;
mod backups;
mod claim;
mod connectors;
mod deadletters;
mod erasures;
mod forgotten;
mod handover;
mod rises;
mod state;

pub use actions::{Action, ActionKind, Applied as ActionApplied, Marks};
pub use claim::{Applied, Claimed, Expired, ProbeFrom, Report};
pub use connectors::{ConnectorState, Queue};
pub use deadletters::{DeadLetter, DeadLetterDetail, RenderInput, ReplayResult};
pub use erasures::CloudErasure;
pub use forgotten::Forgotten;
pub use handover::{Committed, Fire, HandOver, NewDelivery, Seen};
pub use rises::{Rise, RiseDelivery, VisitorDelivery};
pub use state::OutboxState;

use std::path::Path;
use std::sync::Mutex;

use rusqlite::Connection;

const SCHEMA: &str = include_str!("schema.sql");

/// The outbox database.
pub struct Outbox {
    conn: Mutex<Connection>,
    /// Visitors erased while this process runs (see [`Forgotten`]).
    pub forgotten: Forgotten,
}

/// Delivery counts by connector and state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Depth {
    pub connector: String,
    pub state: String,
    pub count: i64,
}

/// Brings an outbox made by an older oie to this layout, keeping every row: deliveries that
/// carried their payload move it to `delivery_bodies`, and a CHECK without the `superseded`
/// state is rebuilt.
fn upgrade(conn: &mut Connection) -> anyhow::Result<()> {
    let table: String = conn.query_row(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'deliveries'",
        [],
        |r| r.get(0),
    )?;
    let has = |column: &str| -> rusqlite::Result<bool> {
        conn.query_row(
            "SELECT COUNT(*) FROM pragma_table_info('deliveries') WHERE name = ?1",
            [column],
            |r| r.get::<_, i64>(0).map(|n| n > 0),
        )
    };
    let bodies_inline = has("payload")?;
    if bodies_inline {
        let context = if has("context")? { "context" } else { "NULL" };
        conn.execute_batch(&format!(
            "INSERT OR IGNORE INTO delivery_bodies (delivery_id, payload, context)
             SELECT id, payload, {context} FROM deliveries"
        ))?;
    }
    if bodies_inline || !table.contains("'superseded'") {
        crate::sqlite::rebuild(conn, SCHEMA, "deliveries")?;
    }
    // Indexes of every delivery by state, replaced by the partial ones on the queue.
    conn.execute_batch(
        "DROP INDEX IF EXISTS deliveries_due; DROP INDEX IF EXISTS deliveries_queue;",
    )?;
    Ok(())
}

impl Outbox {
    pub fn open(path: &Path) -> anyhow::Result<Outbox> {
        let mut conn = crate::sqlite::open(path, SCHEMA)?;
        upgrade(&mut conn)?;
        Ok(Outbox {
            conn: Mutex::new(conn),
            forgotten: Forgotten::default(),
        })
    }

    pub(crate) fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> anyhow::Result<T> {
        // A poisoned lock means a panic mid-call; SQLite rolled back, so the connection is usable.
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        Ok(f(&mut conn)?)
    }

    /// After a crash, deliveries that were in flight are queued again.
    pub fn recover_inflight(&self) -> anyhow::Result<usize> {
        self.with(|c| {
            c.execute(
                "UPDATE deliveries SET state = 'queued' WHERE state = 'inflight'",
                [],
            )
        })
    }

    pub fn depth(&self) -> anyhow::Result<Vec<Depth>> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT connector, state, COUNT(*) FROM deliveries GROUP BY connector, state",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(Depth {
                    connector: r.get(0)?,
                    state: r.get(1)?,
                    count: r.get(2)?,
                })
            })?;
            rows.collect()
        })
    }

    /// Erasure: deletes every delivery of the visitor, whatever its state (with its payload,
    /// render input and attempts), and what sources and connectors remember of them. Deliveries of the
    /// `erasure` trigger (what tells CRMs to delete the person) are kept until sent. Returns
    /// the deliveries removed. Call [`Forgotten::forget`] first, so one claimed meanwhile is
    /// not sent.
    pub fn erase(&self, visitor_id: &str) -> anyhow::Result<usize> {
        self.with(|c| {
            let tx = c.transaction()?;
            let of_visitor =
                "SELECT id FROM deliveries WHERE visitor_id = ?1 AND trigger_kind <> 'erasure'";
            for table in ["attempts", "delivery_bodies"] {
                tx.execute(
                    &format!("DELETE FROM {table} WHERE delivery_id IN ({of_visitor})"),
                    [visitor_id],
                )?;
            }
            let n = tx.execute(
                "DELETE FROM deliveries WHERE visitor_id = ?1 AND trigger_kind <> 'erasure'",
                [visitor_id],
            )?;
            tx.execute("DELETE FROM lead_seen WHERE visitor_id = ?1", [visitor_id])?;
            tx.execute(
                "DELETE FROM route_fires WHERE visitor_id = ?1",
                [visitor_id],
            )?;
            for table in ["visitor_state", "lead_actions", "snoozes", "lead_marks"] {
                tx.execute(
                    &format!("DELETE FROM {table} WHERE visitor_id = ?1"),
                    [visitor_id],
                )?;
            }
            tx.commit()?;
            Ok(n)
        })
    }

    /// (attempts, tries) of the delivery with `key`, for tests.
    #[cfg(test)]
    pub fn attempts_of(&self, key: &str) -> anyhow::Result<(u32, u32)> {
        self.with(|c| {
            c.query_row(
                "SELECT attempts, tries FROM deliveries WHERE key = ?1",
                [key],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
        })
    }

    /// Forgets delivered rows (and their keys) older than `before_ms`.
    pub fn prune_delivered(&self, before_ms: i64) -> anyhow::Result<usize> {
        self.with(|c| {
            let tx = c.transaction()?;
            for table in ["attempts", "delivery_bodies"] {
                tx.execute(
                    &format!(
                        "DELETE FROM {table} WHERE delivery_id IN
                           (SELECT id FROM deliveries WHERE state IN ('delivered', 'superseded')
                            AND updated_at < ?1)"
                    ),
                    [before_ms],
                )?;
            }
            let n = tx.execute(
                "DELETE FROM deliveries WHERE state IN ('delivered', 'superseded') AND updated_at < ?1",
                [before_ms],
            )?;
            tx.commit()?;
            Ok(n)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `deliveries` as the first releases made it: payload and context inline, no
    /// `superseded` state, no `tries` or `reason`.
    const OLD: &str = "
        CREATE TABLE deliveries (
          id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, route TEXT NOT NULL,
          connector TEXT NOT NULL, visitor_id TEXT NOT NULL, trigger_kind TEXT NOT NULL,
          payload TEXT, context TEXT, group_key TEXT,
          state TEXT NOT NULL DEFAULT 'queued'
                CHECK (state IN ('queued', 'inflight', 'delivered', 'dead')),
          attempts INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL,
          next_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, last_error TEXT, record_id TEXT);
        CREATE INDEX deliveries_due ON deliveries (connector, state, next_at);
        CREATE TABLE attempts (id INTEGER PRIMARY KEY, delivery_id INTEGER NOT NULL,
          at INTEGER NOT NULL, outcome TEXT NOT NULL, error TEXT, millis INTEGER NOT NULL);
        INSERT INTO deliveries (key, route, connector, visitor_id, trigger_kind, payload, state,
                                attempts, created_at, next_at, updated_at)
          VALUES ('k1', 'r', 'hook', 'v1', 'hot_lead', '{\"n\":1}', 'queued', 0, 1, 1, 1);
        INSERT INTO deliveries (key, route, connector, visitor_id, trigger_kind, payload, context,
                                state, attempts, created_at, next_at, updated_at, last_error)
          VALUES ('k2', 'r', 'hook', 'v2', 'hot_lead', NULL, '{\"lead\":{}}', 'dead', 1, 1, 1, 1,
                  'render failed');";

    #[test]
    fn an_outbox_from_an_older_oie_keeps_its_deliveries_and_payloads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outbox.db");
        Connection::open(&path).unwrap().execute_batch(OLD).unwrap();
        let outbox = Outbox::open(&path).unwrap();
        let claimed = outbox.claim("hook", 10, 5).unwrap();
        assert_eq!(claimed.len(), 1);
        assert_eq!(claimed[0].payload, "{\"n\":1}");
        let letter = outbox.dead_letter(2).unwrap().unwrap();
        assert_eq!(letter.context, Some(serde_json::json!({"lead": {}})));
        assert_eq!(letter.letter.error.as_deref(), Some("render failed"));
        outbox
            .with(|c| {
                c.execute(
                    "UPDATE deliveries SET state = 'superseded' WHERE key = 'k1'",
                    [],
                )
            })
            .unwrap();
        drop(outbox);
        // Opening it again changes nothing.
        let outbox = Outbox::open(&path).unwrap();
        assert_eq!(outbox.dead_letters().unwrap().len(), 1);
    }
}
