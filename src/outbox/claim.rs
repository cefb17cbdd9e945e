use rusqlite::params;

use super::Outbox;

/// A delivery taken for an attempt.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: i64,
    pub key: String,
    pub route: String,
    pub visitor_id: String,
    pub payload: String,
    /// Attempts made before this one.
    pub attempts: u32,
    pub created_at: i64,
    /// Digest membership, and the render data the digest is made from.
    pub group_key: Option<String>,
    pub context: Option<String>,
}

const CLAIMED: &str =
    "id, key, route, visitor_id, payload, attempts, created_at, group_key, context";

fn claimed(r: &rusqlite::Row) -> rusqlite::Result<Claimed> {
    Ok(Claimed {
        id: r.get(0)?,
        key: r.get(1)?,
        route: r.get(2)?,
        visitor_id: r.get(3)?,
        payload: r.get::<_, Option<String>>(4)?.unwrap_or_default(),
        attempts: r.get(5)?,
        created_at: r.get(6)?,
        group_key: r.get(7)?,
        context: r.get(8)?,
    })
}

/// What to do with a delivery after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    Delivered {
        record_id: Option<String>,
    },
    Retry {
        next_at: i64,
        error: String,
    },
    Dead {
        error: String,
    },
    /// Not attempted (shutdown, disabled connector): back to the queue as it was.
    Released,
}

/// One attempt's result, to record.
#[derive(Debug, Clone)]
pub struct Report {
    pub id: i64,
    pub at_ms: i64,
    pub millis: i64,
    /// The connector's outcome label (`delivered`, `retry`, `permanent`, `gone`).
    pub outcome: &'static str,
    pub applied: Applied,
}

impl Outbox {
    /// Takes up to `limit` due deliveries of `connector`, marking them in flight.
    pub fn claim(
        &self,
        connector: &str,
        limit: usize,
        now_ms: i64,
    ) -> anyhow::Result<Vec<Claimed>> {
        self.with(|c| {
            let sql = format!(
                "UPDATE deliveries SET state = 'inflight', updated_at = ?3
                 WHERE id IN (SELECT id FROM deliveries
                              WHERE connector = ?1 AND state = 'queued' AND next_at <= ?3
                              ORDER BY next_at, id LIMIT ?2)
                 RETURNING {CLAIMED}"
            );
            let mut stmt = c.prepare_cached(&sql)?;
            let rows = stmt.query_map(params![connector, limit as i64, now_ms], claimed)?;
            let mut claimed: Vec<Claimed> = rows.collect::<Result<_, _>>()?;
            // RETURNING gives no order guarantee; keep the queue's.
            claimed.sort_by_key(|d| d.id);
            Ok(claimed)
        })
    }

    /// Takes every other queued member of a digest, due or not: the first member's wait is the
    /// group's.
    pub fn claim_group(
        &self,
        connector: &str,
        group_key: &str,
        now_ms: i64,
    ) -> anyhow::Result<Vec<Claimed>> {
        self.with(|c| {
            let sql = format!(
                "UPDATE deliveries SET state = 'inflight', updated_at = ?3
                 WHERE connector = ?1 AND group_key = ?2 AND state = 'queued'
                 RETURNING {CLAIMED}"
            );
            let mut stmt = c.prepare_cached(&sql)?;
            let rows = stmt.query_map(params![connector, group_key, now_ms], claimed)?;
            let mut members: Vec<Claimed> = rows.collect::<Result<_, _>>()?;
            members.sort_by_key(|d| d.id);
            Ok(members)
        })
    }

    /// When the next queued delivery of `connector` is due.
    pub fn next_due(&self, connector: &str) -> anyhow::Result<Option<i64>> {
        self.with(|c| {
            c.prepare_cached(
                "SELECT MIN(next_at) FROM deliveries WHERE connector = ?1 AND state = 'queued'",
            )?
            .query_row([connector], |r| r.get(0))
        })
    }

    /// Records attempt results in one transaction.
    pub fn record(&self, reports: &[Report]) -> anyhow::Result<()> {
        self.with(|c| {
            let tx = c.transaction()?;
            for r in reports {
                apply(&tx, r)?;
            }
            tx.commit()
        })
    }
}

fn apply(tx: &rusqlite::Transaction, r: &Report) -> rusqlite::Result<()> {
    let error = match &r.applied {
        Applied::Delivered { record_id } => {
            tx.prepare_cached(
                "UPDATE deliveries SET state = 'delivered', attempts = attempts + 1, last_error = NULL,
                        record_id = ?3, updated_at = ?2 WHERE id = ?1",
            )?
            .execute(params![r.id, r.at_ms, record_id])?;
            None
        }
        Applied::Retry { next_at, error } => {
            tx.prepare_cached(
                "UPDATE deliveries SET state = 'queued', attempts = attempts + 1, last_error = ?3,
                        next_at = ?4, updated_at = ?2 WHERE id = ?1",
            )?
            .execute(params![r.id, r.at_ms, error, next_at])?;
            Some(error)
        }
        Applied::Dead { error } => {
            tx.prepare_cached(
                "UPDATE deliveries SET state = 'dead', attempts = attempts + 1, last_error = ?3,
                        updated_at = ?2 WHERE id = ?1",
            )?
            .execute(params![r.id, r.at_ms, error])?;
            Some(error)
        }
        Applied::Released => {
            tx.prepare_cached(
                "UPDATE deliveries SET state = 'queued' WHERE id = ?1 AND state = 'inflight'",
            )?
            .execute([r.id])?;
            return Ok(());
        }
    };
    tx.prepare_cached("INSERT INTO attempts (delivery_id, at, outcome, error, millis) VALUES (?1, ?2, ?3, ?4, ?5)")?
        .execute(params![r.id, r.at_ms, r.outcome, error, r.millis])?;
    Ok(())
}
