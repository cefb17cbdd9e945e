use oie_connectors::Reason;
use rusqlite::{params, OptionalExtension};

use super::Outbox;

/// A delivery taken for an attempt.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: i64,
    pub key: String,
    pub route: String,
    pub visitor_id: String,
    pub payload: String,
    /// Attempts made before this one that counted against `max_attempts`.
    pub attempts: u32,
    /// Failed requests before this one that set the backoff.
    pub tries: u32,
    pub created_at: i64,
    /// Digest membership, and the render data the digest is made from.
    pub group_key: Option<String>,
    pub context: Option<String>,
    /// `hot_lead`, `sync`, `erasure`, …
    pub trigger_kind: String,
    /// When the prospect acted, for alert latency.
    pub origin_at: Option<i64>,
}

const CLAIMED: &str =
    "id, key, route, visitor_id, attempts, tries, created_at, group_key, trigger_kind, origin_at";

/// A claimed row, without its body yet.
fn claimed(r: &rusqlite::Row) -> rusqlite::Result<Claimed> {
    Ok(Claimed {
        id: r.get(0)?,
        key: r.get(1)?,
        route: r.get(2)?,
        visitor_id: r.get(3)?,
        payload: String::new(),
        attempts: r.get(4)?,
        tries: r.get(5)?,
        created_at: r.get(6)?,
        group_key: r.get(7)?,
        context: None,
        trigger_kind: r.get(8)?,
        origin_at: r.get(9)?,
    })
}

/// Fills in what the claimed deliveries send: the payload, and for digest members the render
/// input the digest is made from.
fn with_bodies(
    c: &rusqlite::Connection,
    mut claimed: Vec<Claimed>,
) -> rusqlite::Result<Vec<Claimed>> {
    let (Some(first), Some(last)) = (claimed.first(), claimed.last()) else {
        return Ok(claimed);
    };
    let (low, high) = (first.id, last.id);
    // A claim is mostly a run of neighbouring ids: read their bodies in one range scan, and
    // look each up alone only when the ids are scattered (old retries among new work).
    if high - low < 2 * claimed.len() as i64 {
        let mut stmt = c.prepare_cached(
            "SELECT delivery_id, payload, context FROM delivery_bodies
             WHERE delivery_id BETWEEN ?1 AND ?2 ORDER BY delivery_id",
        )?;
        let mut rows = stmt.query(params![low, high])?;
        let mut wanted = claimed.iter_mut().peekable();
        while let Some(row) = rows.next()? {
            let id: i64 = row.get(0)?;
            while wanted.next_if(|d| d.id < id).is_some() {}
            if let Some(d) = wanted.next_if(|d| d.id == id) {
                d.payload = row.get::<_, Option<String>>(1)?.unwrap_or_default();
                if d.group_key.is_some() {
                    d.context = row.get(2)?;
                }
            }
        }
        return Ok(claimed);
    }
    let mut stmt = c.prepare_cached(
        "SELECT payload, CASE WHEN ?2 THEN context END FROM delivery_bodies WHERE delivery_id = ?1",
    )?;
    for d in &mut claimed {
        let body = stmt
            .query_row(params![d.id, d.group_key.is_some()], |r| {
                Ok((r.get::<_, Option<String>>(0)?, r.get(1)?))
            })
            .optional()?;
        if let Some((payload, context)) = body {
            d.payload = payload.unwrap_or_default();
            d.context = context;
        }
    }
    Ok(claimed)
}

/// What to do with a delivery after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    Delivered {
        record_id: Option<String>,
    },
    /// Queued again for `next_at`; `counted` when the attempt spent one of `max_attempts`.
    Retry {
        next_at: i64,
        counted: bool,
        reason: Reason,
        error: String,
    },
    Dead {
        reason: Reason,
        error: String,
    },
    /// Back in the queue as it was, due at once: the connector is held, not the delivery.
    Held {
        reason: Reason,
        error: String,
    },
    /// Not attempted (shutdown, a held connector): back to the queue as it was.
    Released,
    /// Not sent: its visitor was erased after it was claimed. The row goes.
    Erased,
}

impl Applied {
    /// The attempt log's word for it, and the `outcome` label of `oie_deliveries_total`.
    pub fn label(&self) -> &'static str {
        match self {
            Applied::Delivered { .. } => "delivered",
            Applied::Retry { .. } => "retry",
            Applied::Dead { .. } => "dead",
            Applied::Held { .. } => "held",
            Applied::Released => "released",
            Applied::Erased => "erased",
        }
    }

    /// The failure's reason (`None` for a delivery or a release).
    pub fn reason(&self) -> Option<Reason> {
        match self {
            Applied::Retry { reason, .. }
            | Applied::Dead { reason, .. }
            | Applied::Held { reason, .. } => Some(*reason),
            Applied::Delivered { .. } | Applied::Released | Applied::Erased => None,
        }
    }
}

/// One attempt's result, to record.
#[derive(Debug, Clone)]
pub struct Report {
    pub id: i64,
    pub at_ms: i64,
    pub millis: i64,
    pub applied: Applied,
    /// It carried an erased person's data (a CRM `erasure`): once settled its payload and
    /// render input go, and a delivered one goes whole.
    pub forget: bool,
}

/// A delivery past `max_age`, with what last went wrong.
#[derive(Debug, Clone)]
pub struct Expired {
    pub delivery: Claimed,
    pub reason: Option<Reason>,
    pub error: Option<String>,
}

/// Which due delivery a probe takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeFrom {
    Oldest,
    /// The first after this id, or the oldest when there is none.
    After(i64),
}

impl Outbox {
    /// Takes up to `limit` due deliveries of `connector`, oldest first, marking them in flight.
    /// Oldest first means a retry of an old delivery goes before newer work, as in any queue.
    pub fn claim(
        &self,
        connector: &str,
        limit: usize,
        now_ms: i64,
    ) -> anyhow::Result<Vec<Claimed>> {
        self.with(|c| {
            // The limit is part of the text, not a parameter: a bound LIMIT in the subquery
            // makes SQLite compile the statement again on every call. Each connector uses one.
            let sql = format!(
                "UPDATE deliveries SET state = 'inflight', updated_at = ?2
                 WHERE id IN (SELECT id FROM deliveries INDEXED BY queued_by_age
                              WHERE connector = ?1 AND state = 'queued' AND next_at <= ?2
                              ORDER BY id LIMIT {limit})
                 RETURNING {CLAIMED}"
            );
            let mut stmt = c.prepare_cached(&sql)?;
            let rows = stmt.query_map(params![connector, now_ms], claimed)?;
            let mut claimed: Vec<Claimed> = rows.collect::<Result<_, _>>()?;
            // RETURNING gives no order guarantee; keep the queue's.
            claimed.sort_by_key(|d| d.id);
            drop(stmt);
            with_bodies(c, claimed)
        })
    }

    /// Takes the one due delivery a probe sends.
    pub fn claim_probe(
        &self,
        connector: &str,
        from: ProbeFrom,
        now_ms: i64,
    ) -> anyhow::Result<Option<Claimed>> {
        let after = match from {
            ProbeFrom::Oldest => 0,
            ProbeFrom::After(id) => id,
        };
        self.with(|c| {
            let sql = format!(
                "UPDATE deliveries SET state = 'inflight', updated_at = ?3
                 WHERE id = COALESCE(
                   (SELECT id FROM deliveries INDEXED BY queued_by_age
                    WHERE connector = ?1 AND state = 'queued' AND next_at <= ?3 AND id > ?2
                    ORDER BY id LIMIT 1),
                   (SELECT id FROM deliveries INDEXED BY queued_by_age
                    WHERE connector = ?1 AND state = 'queued' AND next_at <= ?3
                    ORDER BY id LIMIT 1))
                 RETURNING {CLAIMED}"
            );
            let one = c
                .prepare_cached(&sql)?
                .query_row(params![connector, after, now_ms], claimed)
                .optional()?;
            Ok(with_bodies(c, one.into_iter().collect())?.pop())
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
            drop(stmt);
            with_bodies(c, members)
        })
    }

    /// Takes up to `limit` queued deliveries of `connector` created before `before_ms`, due or
    /// not, with their last failure: they are past `max_age`, and are to be given up.
    pub fn claim_expired(
        &self,
        connector: &str,
        before_ms: i64,
        limit: usize,
        now_ms: i64,
    ) -> anyhow::Result<Vec<Expired>> {
        self.with(|c| {
            let sql = format!(
                "UPDATE deliveries SET state = 'inflight', updated_at = ?3
                 WHERE id IN (SELECT id FROM deliveries INDEXED BY queued_by_age
                              WHERE connector = ?1 AND state = 'queued' AND created_at < ?2
                              ORDER BY id LIMIT {limit})
                 RETURNING {CLAIMED}, reason, last_error"
            );
            let mut stmt = c.prepare_cached(&sql)?;
            let rows = stmt.query_map(params![connector, before_ms, now_ms], |r| {
                let reason: Option<String> = r.get(10)?;
                Ok(Expired {
                    delivery: claimed(r)?,
                    reason: reason.as_deref().and_then(Reason::parse),
                    error: r.get(11)?,
                })
            })?;
            rows.collect()
        })
    }

    /// When the next queued delivery of `connector` is due. (`ORDER BY … LIMIT 1` seeks the
    /// index; SQLite scans every queued row for `MIN(next_at)` under these constraints.)
    pub fn next_due(&self, connector: &str) -> anyhow::Result<Option<i64>> {
        self.with(|c| {
            c.prepare_cached(
                "SELECT next_at FROM deliveries INDEXED BY queued_by_due
                 WHERE connector = ?1 AND state = 'queued' ORDER BY next_at LIMIT 1",
            )?
            .query_row([connector], |r| r.get(0))
            .optional()
        })
    }

    /// Records attempt results in one transaction (and when each connector last delivered).
    pub fn record(&self, reports: &[Report]) -> anyhow::Result<()> {
        self.with(|c| {
            let tx = c.transaction()?;
            for r in reports {
                apply(&tx, r)?;
            }
            let delivered: Vec<String> = reports
                .iter()
                .filter(|r| matches!(r.applied, Applied::Delivered { .. }) && !r.forget)
                .map(|r| r.id.to_string())
                .collect();
            if !delivered.is_empty() {
                // Ids are integers: safe to inline, one statement per batch.
                tx.execute(
                    &format!(
                        "INSERT INTO connector_success (connector, at)
                         SELECT connector, MAX(updated_at) FROM deliveries WHERE id IN ({})
                         GROUP BY connector
                         ON CONFLICT (connector) DO UPDATE SET at = MAX(at, excluded.at)",
                        delivered.join(",")
                    ),
                    [],
                )?;
            }
            tx.commit()
        })
    }
}

fn apply(tx: &rusqlite::Transaction, r: &Report) -> rusqlite::Result<()> {
    let (reason, error) = match &r.applied {
        Applied::Delivered { record_id } => {
            tx.prepare_cached(
                "UPDATE deliveries SET state = 'delivered', attempts = attempts + 1, last_error = NULL,
                        reason = NULL, record_id = ?3, updated_at = ?2 WHERE id = ?1",
            )?
            .execute(params![r.id, r.at_ms, record_id])?;
            if r.forget {
                delete(tx, r.id)?;
            }
            // The row's state says it; `attempts` keeps what went wrong.
            return Ok(());
        }
        Applied::Retry {
            next_at,
            counted,
            reason,
            error,
        } => {
            let n = tx
                .prepare_cached(
                    "UPDATE deliveries SET state = 'queued', attempts = attempts + ?5, tries = tries + 1,
                        last_error = ?3, reason = ?6, next_at = ?4, updated_at = ?2 WHERE id = ?1",
                )?
                .execute(params![
                    r.id,
                    r.at_ms,
                    error,
                    next_at,
                    i64::from(*counted),
                    reason.as_str()
                ])?;
            if n == 0 {
                return Ok(()); // erased meanwhile
            }
            (Some(*reason), Some(error))
        }
        Applied::Dead { reason, error } => {
            let n = tx
                .prepare_cached(
                    "UPDATE deliveries SET state = 'dead', attempts = attempts + 1, last_error = ?3,
                        reason = ?4, updated_at = ?2 WHERE id = ?1",
                )?
                .execute(params![r.id, r.at_ms, error, reason.as_str()])?;
            if n == 0 {
                return Ok(());
            }
            if r.forget {
                // The dead letter stays for the operator; the person's data does not.
                tx.prepare_cached(
                    "UPDATE delivery_bodies SET payload = NULL, context = NULL WHERE delivery_id = ?1",
                )?
                .execute([r.id])?;
            }
            (Some(*reason), Some(error))
        }
        Applied::Held { reason, error } => {
            let n = tx
                .prepare_cached(
                    "UPDATE deliveries SET state = 'queued', last_error = ?3, reason = ?4, updated_at = ?2
                 WHERE id = ?1",
                )?
                .execute(params![r.id, r.at_ms, error, reason.as_str()])?;
            if n == 0 {
                return Ok(());
            }
            (Some(*reason), Some(error))
        }
        Applied::Released => {
            tx.prepare_cached(
                "UPDATE deliveries SET state = 'queued' WHERE id = ?1 AND state = 'inflight'",
            )?
            .execute([r.id])?;
            return Ok(());
        }
        Applied::Erased => return delete(tx, r.id),
    };
    tx.prepare_cached(
        "INSERT INTO attempts (delivery_id, at, outcome, reason, error, millis)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        r.id,
        r.at_ms,
        r.applied.label(),
        reason.map(Reason::as_str),
        error,
        r.millis
    ])?;
    Ok(())
}

/// Removes a delivery with its body and attempts.
fn delete(tx: &rusqlite::Transaction, id: i64) -> rusqlite::Result<()> {
    for sql in [
        "DELETE FROM attempts WHERE delivery_id = ?1",
        "DELETE FROM delivery_bodies WHERE delivery_id = ?1",
        "DELETE FROM deliveries WHERE id = ?1",
    ] {
        tx.prepare_cached(sql)?.execute([id])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::{HandOver, NewDelivery};

    fn delivery(n: usize, group: Option<&str>) -> NewDelivery {
        NewDelivery {
            key: format!("k{n}"),
            route: "r".into(),
            connector: "hook".into(),
            visitor_id: format!("v{n}"),
            trigger_kind: "hot_lead".into(),
            payload: Ok(format!("{{\"n\":{n}}}")),
            context: format!("{{\"lead\":{{\"n\":{n}}}}}"),
            delay_ms: 0,
            group_key: group.map(str::to_string),
            supersedes: false,
            origin_ms: None,
        }
    }

    /// Whether every claimed delivery carries its own body, in runs and when scattered.
    #[test]
    fn each_claim_carries_its_own_body() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(&dir.path().join("outbox.db")).unwrap();
        let mut deliveries: Vec<NewDelivery> = (0..40).map(|n| delivery(n, None)).collect();
        deliveries.push(delivery(40, Some("digest")));
        let out = HandOver {
            deliveries,
            ..HandOver::default()
        };
        outbox.hand_over(&out, 1).unwrap();
        // Leave holes: every third delivery is taken and delivered first.
        let first = outbox.claim("hook", 41, 2).unwrap();
        let reports: Vec<Report> = first
            .iter()
            .filter(|d| d.id % 3 != 0)
            .map(|d| Report {
                id: d.id,
                at_ms: 3,
                millis: 1,
                applied: Applied::Released,
                forget: false,
            })
            .collect();
        outbox.record(&reports).unwrap();
        let check = |claimed: &[Claimed]| {
            for d in claimed {
                let n = &d.key[1..];
                assert_eq!(d.payload, format!("{{\"n\":{n}}}"), "{}", d.key);
                let context = d
                    .group_key
                    .as_ref()
                    .map(|_| format!("{{\"lead\":{{\"n\":{n}}}}}"));
                assert_eq!(d.context, context, "{}", d.key);
            }
        };
        check(&first);
        // Two of every three ids are queued again: a run with small gaps.
        let run = outbox.claim("hook", 41, 4).unwrap();
        assert_eq!(run.len(), reports.len());
        check(&run);
        // Scattered: the first and the last queued.
        let ends: Vec<Report> = [run[0].id, run[run.len() - 1].id]
            .into_iter()
            .map(|id| Report {
                id,
                at_ms: 5,
                millis: 1,
                applied: Applied::Released,
                forget: false,
            })
            .collect();
        outbox.record(&ends).unwrap();
        let scattered = outbox.claim("hook", 41, 6).unwrap();
        assert_eq!(scattered.len(), 2);
        check(&scattered);
    }
}
