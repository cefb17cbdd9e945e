use std::collections::HashMap;

use rusqlite::{params, OptionalExtension};

use super::Outbox;
use crate::lead::Level;
use crate::routing::LastFire;

/// A delivery to enqueue.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub key: String,
    pub route: String,
    pub connector: String,
    pub visitor_id: String,
    pub trigger_kind: String,
    /// The payload, or why rendering failed: such a delivery is stored as a dead letter at
    /// once (reason `render`), so nothing is lost.
    pub payload: Result<String, String>,
    /// The render input (`{lead, trigger, route, crm}`), kept with every delivery: digests are
    /// rendered from it, and a replay renders it again with the current config.
    pub context: String,
    /// How long it waits before it is due: the connector's `batch_wait`, or the route's
    /// `group_wait` for digest members.
    pub delay_ms: i64,
    /// For routes with `group_wait`: the digest it belongs to (deliveries with the same key
    /// for one connector go out as one message).
    pub group_key: Option<String>,
    /// A newer sync of the same lead to the same CRM connector: queued ones it replaces are
    /// marked `superseded`, so a lead that changes five times costs one write.
    pub supersedes: bool,
    /// When the prospect did what caused it (ms), for alert latency.
    pub origin_ms: Option<i64>,
}

/// What a hand-over committed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Committed {
    /// Deliveries that were new (an existing key is a no-op).
    pub added: usize,
    /// (route, connector) of each queued delivery a newer one superseded.
    pub superseded: Vec<(String, String)>,
}

/// What a source has seen of a lead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    pub level: Level,
    pub version: i64,
}

/// A route that fired for a lead.
#[derive(Debug, Clone)]
pub struct Fire {
    pub route: String,
    pub visitor_id: String,
    pub at_ms: i64,
    pub level: Level,
}

/// Everything one source step produced, committed in one transaction.
#[derive(Debug, Default)]
pub struct HandOver {
    pub deliveries: Vec<NewDelivery>,
    pub seen: Vec<(String, Seen)>,
    pub fires: Vec<Fire>,
    /// (source name, position) to remember.
    pub position: Option<(String, i64)>,
    /// (source name, cursor) to remember, for sources that page by a compound key.
    pub cursors: Vec<(String, String)>,
    /// Routes whose match `repeat_after` held back (for metrics; nothing is stored).
    pub suppressed: Vec<String>,
}

impl Outbox {
    /// Commits a hand-over.
    pub fn hand_over(&self, h: &HandOver, now_ms: i64) -> anyhow::Result<Committed> {
        self.with(|c| {
            let tx = c.transaction()?;
            let mut committed = Committed::default();
            for d in &h.deliveries {
                if insert(&tx, d, now_ms)? == 0 {
                    continue;
                }
                committed.added += 1;
                if d.supersedes {
                    committed.superseded.extend(supersede(&tx, d, now_ms)?);
                }
            }
            for (visitor, seen) in &h.seen {
                tx.prepare_cached(
                    "INSERT INTO lead_seen (visitor_id, level, version) VALUES (?1, ?2, ?3)
                     ON CONFLICT (visitor_id) DO UPDATE SET level = excluded.level, version = excluded.version",
                )?
                .execute(params![visitor, seen.level.as_str(), seen.version])?;
            }
            for f in &h.fires {
                tx.prepare_cached(
                    "INSERT INTO route_fires (route, visitor_id, at, level) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (route, visitor_id) DO UPDATE SET at = excluded.at, level = excluded.level",
                )?
                .execute(params![f.route, f.visitor_id, f.at_ms, f.level.as_str()])?;
            }
            if let Some((source, position)) = &h.position {
                tx.execute(
                    "INSERT INTO source_state (source, position) VALUES (?1, ?2)
                     ON CONFLICT (source) DO UPDATE SET position = excluded.position",
                    params![source, position],
                )?;
            }
            for (source, cursor) in &h.cursors {
                tx.execute(
                    "INSERT INTO source_cursor (source, cursor) VALUES (?1, ?2)
                     ON CONFLICT (source) DO UPDATE SET cursor = excluded.cursor",
                    params![source, cursor],
                )?;
            }
            tx.commit()?;
            Ok(committed)
        })
    }

    /// Where a source left off (0 when it never ran).
    pub fn position(&self, source: &str) -> anyhow::Result<i64> {
        self.with(|c| {
            c.query_row(
                "SELECT position FROM source_state WHERE source = ?1",
                [source],
                |r| r.get(0),
            )
            .optional()
            .map(|p| p.unwrap_or(0))
        })
    }

    /// Where a paging source left off (`None` when it never ran).
    pub fn cursor(&self, source: &str) -> anyhow::Result<Option<String>> {
        self.with(|c| {
            c.query_row(
                "SELECT cursor FROM source_cursor WHERE source = ?1",
                [source],
                |r| r.get(0),
            )
            .optional()
        })
    }

    /// What the source saw last of each lead in `visitors`.
    pub fn seen(&self, visitors: &[&str]) -> anyhow::Result<HashMap<String, Seen>> {
        self.with(|c| {
            crate::sqlite::snapshot(c, |c| {
                let mut stmt =
                    c.prepare_cached("SELECT level, version FROM lead_seen WHERE visitor_id = ?1")?;
                let mut out = HashMap::new();
                for v in visitors {
                    let row = stmt
                        .query_row([v], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
                        .optional()?;
                    if let Some((level, version)) = row {
                        let level = Level::parse(&level).unwrap_or(Level::Cold);
                        out.insert(v.to_string(), Seen { level, version });
                    }
                }
                Ok(out)
            })
        })
    }

    /// When each route last fired for each of `visitors` (one lock for the whole page).
    pub fn last_fires(
        &self,
        visitors: &[&str],
    ) -> anyhow::Result<HashMap<String, HashMap<String, LastFire>>> {
        self.with(|c| {
            crate::sqlite::snapshot(c, |c| {
                let mut stmt = c.prepare_cached(
                    "SELECT route, at, level FROM route_fires WHERE visitor_id = ?1",
                )?;
                let mut out = HashMap::new();
                for v in visitors {
                    let rows = stmt.query_map([v], |r| {
                        let level: String = r.get(2)?;
                        Ok((
                            r.get::<_, String>(0)?,
                            LastFire {
                                at_ms: r.get(1)?,
                                level: Level::parse(&level).unwrap_or(Level::Cold),
                            },
                        ))
                    })?;
                    let fires: HashMap<String, LastFire> = rows.collect::<Result<_, _>>()?;
                    if !fires.is_empty() {
                        out.insert(v.to_string(), fires);
                    }
                }
                Ok(out)
            })
        })
    }
}

fn insert(tx: &rusqlite::Transaction, d: &NewDelivery, now_ms: i64) -> rusqlite::Result<usize> {
    let (payload, state, reason, error) = match &d.payload {
        Ok(p) => (Some(p.as_str()), "queued", None, None),
        Err(error) => (None, "dead", Some("render"), Some(error.as_str())),
    };
    let added = tx
        .prepare_cached(
            "INSERT INTO deliveries (key, route, connector, visitor_id, trigger_kind, group_key,
                                     state, created_at, next_at, updated_at, last_error, reason, origin_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?8, ?10, ?11, ?12)
             ON CONFLICT (key) DO NOTHING",
        )?
        .execute(params![
            d.key,
            d.route,
            d.connector,
            d.visitor_id,
            d.trigger_kind,
            d.group_key,
            state,
            now_ms,
            now_ms + d.delay_ms.max(0),
            error,
            reason,
            d.origin_ms
        ])?;
    if added == 1 {
        tx.prepare_cached(
            "INSERT INTO delivery_bodies (delivery_id, payload, context) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![tx.last_insert_rowid(), payload, d.context])?;
    }
    Ok(added)
}

/// Marks the queued syncs of `d`'s lead and connector that `d` replaces; returns their
/// (route, connector).
fn supersede(
    tx: &rusqlite::Transaction,
    d: &NewDelivery,
    now_ms: i64,
) -> rusqlite::Result<Vec<(String, String)>> {
    let mut stmt = tx.prepare_cached(
        "UPDATE deliveries SET state = 'superseded', reason = 'superseded', updated_at = ?4,
                last_error = 'a newer sync of this lead replaced it before it was sent'
         WHERE connector = ?1 AND visitor_id = ?2 AND state = 'queued' AND trigger_kind = 'sync'
           AND key <> ?3
         RETURNING route, connector",
    )?;
    let rows = stmt.query_map(params![d.connector, d.visitor_id, d.key, now_ms], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })?;
    rows.collect()
}
