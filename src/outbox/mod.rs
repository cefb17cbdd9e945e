//! The durable queue of deliveries (`<data_dir>/outbox.db`, SQLite in WAL mode): enqueue,
//! claim, record outcomes, dead letters. Sources hand work in; the dispatcher takes it out.

mod claim;
mod deadletters;
mod handover;

pub use claim::{Applied, Claimed, Report};
pub use deadletters::{DeadLetter, DeadLetterDetail, ReplayResult};
pub use handover::{Fire, Group, HandOver, NewDelivery, Seen};

use std::path::Path;
use std::sync::Mutex;

use rusqlite::Connection;

const SCHEMA: &str = include_str!("schema.sql");

/// The outbox database.
pub struct Outbox {
    conn: Mutex<Connection>,
}

/// Delivery counts by connector and state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Depth {
    pub connector: String,
    pub state: String,
    pub count: i64,
}

impl Outbox {
    pub fn open(path: &Path) -> anyhow::Result<Outbox> {
        let conn = crate::sqlite::open(path, SCHEMA)?;
        Ok(Outbox {
            conn: Mutex::new(conn),
        })
    }

    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> anyhow::Result<T> {
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

    /// Erasure: drops a visitor's deliveries that have not been sent (and dead letters, which
    /// hold the payload), and what sources remember of them. Returns the deliveries removed.
    pub fn erase(&self, visitor_id: &str) -> anyhow::Result<usize> {
        self.with(|c| {
            let tx = c.transaction()?;
            tx.execute(
                "DELETE FROM attempts WHERE delivery_id IN
                   (SELECT id FROM deliveries WHERE visitor_id = ?1 AND state IN ('queued', 'dead'))",
                [visitor_id],
            )?;
            let n = tx.execute(
                "DELETE FROM deliveries WHERE visitor_id = ?1 AND state IN ('queued', 'dead')",
                [visitor_id],
            )?;
            tx.execute("DELETE FROM lead_seen WHERE visitor_id = ?1", [visitor_id])?;
            tx.execute("DELETE FROM route_fires WHERE visitor_id = ?1", [visitor_id])?;
            tx.commit()?;
            Ok(n)
        })
    }

    /// Forgets delivered rows (and their keys) older than `before_ms`.
    pub fn prune_delivered(&self, before_ms: i64) -> anyhow::Result<usize> {
        self.with(|c| {
            let tx = c.transaction()?;
            tx.execute(
                "DELETE FROM attempts WHERE delivery_id IN
                   (SELECT id FROM deliveries WHERE state = 'delivered' AND updated_at < ?1)",
                [before_ms],
            )?;
            let n = tx.execute(
                "DELETE FROM deliveries WHERE state = 'delivered' AND updated_at < ?1",
                [before_ms],
            )?;
            tx.commit()?;
            Ok(n)
        })
    }
}
