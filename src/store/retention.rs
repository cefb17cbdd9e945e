//! Retention of the embedded store ([store] `events_retention`, `identity_retention`,
//! `clicks_retention`): old rows are deleted a few thousand at a time, each batch its own short
//! transaction, so ingest and scoring wait at most one batch for the connection. Lead profiles
//! stay (they mirror the CRM) unless erased. The freed pages go back to the file system with
//! incremental vacuum.

use std::time::Duration;

use rusqlite::params;

use super::SqliteStore;

/// What each table keeps, by which column, for how long.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub events: Duration,
    pub identities: Duration,
    pub clicks: Duration,
}

/// Rows deleted per table by one prune.
pub type Pruned = Vec<(&'static str, usize)>;

/// Rows per batch: a few milliseconds of work.
const BATCH: i64 = 2_000;

/// Pages returned to the file system per vacuum step.
const VACUUM_STEP: i64 = 2_000;

impl Retention {
    /// (table, time column, kept for).
    fn rules(&self) -> [(&'static str, &'static str, Duration); 7] {
        [
            ("events", "receivedAt", self.events),
            // Sessions and alerts go with their events.
            ("sessions", "endedAt", self.events),
            ("hot_lead_alerts", "alertedAt", self.events),
            ("level_changes", "changedAt", self.events),
            ("crm_sync_log", "syncedAt", self.events),
            ("identity_map", "createdAt", self.identities),
            ("email_clicks", "timestamp", self.clicks),
        ]
    }
}

impl SqliteStore {
    /// Deletes what `retention` no longer keeps at `now_ms`, batch by batch, calling `between`
    /// after each batch (the daemon yields there); then gives the space back.
    pub fn prune(
        &self,
        retention: &Retention,
        now_ms: i64,
        mut between: impl FnMut(),
    ) -> anyhow::Result<Pruned> {
        let mut pruned = Vec::new();
        for (table, column, keep) in retention.rules() {
            let cutoff = now_ms - keep.as_millis() as i64;
            let mut total = 0;
            loop {
                let n = self.prune_batch(table, column, cutoff)?;
                total += n;
                between();
                if n < BATCH as usize {
                    break;
                }
            }
            pruned.push((table, total));
        }
        if pruned.iter().any(|(_, n)| *n > 0) {
            self.vacuum(between)?;
        }
        Ok(pruned)
    }

    fn prune_batch(&self, table: &str, column: &str, cutoff: i64) -> anyhow::Result<usize> {
        self.with_conn(|c| {
            let sql = format!(
                "DELETE FROM {table} WHERE rowid IN
                   (SELECT rowid FROM {table} WHERE {column} < ?1 LIMIT ?2)"
            );
            Ok(c.prepare_cached(&sql)?.execute(params![cutoff, BATCH])?)
        })
    }

    /// Returns free pages to the file system, a step at a time (databases made before
    /// `auto_vacuum = INCREMENTAL` need `oie store compact` once; for them this does nothing).
    fn vacuum(&self, mut between: impl FnMut()) -> anyhow::Result<()> {
        loop {
            let free: i64 = self.with_conn(|c| {
                c.execute_batch(&format!("PRAGMA incremental_vacuum({VACUUM_STEP})"))?;
                Ok(c.query_row("PRAGMA freelist_count", [], |r| r.get(0))?)
            })?;
            between();
            if free == 0 || !self.incremental()? {
                return Ok(());
            }
        }
    }

    fn incremental(&self) -> anyhow::Result<bool> {
        self.with_conn(|c| Ok(c.query_row("PRAGMA auto_vacuum", [], |r| r.get::<_, i64>(0))? == 2))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::store;
    use crate::store::EventRow;

    const DAY: i64 = 86_400_000;
    const NOW: i64 = 1_800_000_000_000;

    fn event(id: &str, visitor: &str, at: i64, kind: &str, path: &str) -> EventRow {
        EventRow::from_json(
            serde_json::json!({"eventId": id, "type": kind, "sessionId": format!("{visitor}-{at}"),
                "visitorId": visitor, "timestamp": at, "path": path,
                "data": if kind == "form_submit" { serde_json::json!({"formId": "demo", "fields": []}) } else { serde_json::json!({}) }}),
            at,
            None,
            None,
        )
    }

    fn count(store: &SqliteStore, sql: &str) -> i64 {
        store
            .with_conn(|c| Ok(c.query_row(sql, [], |r| r.get(0))?))
            .unwrap()
    }

    fn scores(store: &SqliteStore) -> Vec<(String, i64, String)> {
        store
            .with_conn(|c| {
                let mut stmt = c.prepare(
                    "SELECT visitorId, intentScore, engagementLevel FROM lead_profiles ORDER BY visitorId",
                )?;
                let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
            .unwrap()
    }

    const KEEP: Retention = Retention {
        events: Duration::from_secs(730 * 86_400),
        identities: Duration::from_secs(90 * 86_400),
        clicks: Duration::from_secs(730 * 86_400),
    };

    /// On a fixed clock: 731 days gone, 729 kept; an identity 91 days old gone, 89 kept; and
    /// every lead's score and level the same before and after.
    #[test]
    fn retention_removes_what_is_past_it_and_never_moves_a_score() {
        let (_dir, store) = store();
        let mut rows = Vec::new();
        for (i, age) in [731, 729, 30, 2, 0].iter().enumerate() {
            let at = NOW - age * DAY - 1;
            for v in ["hot", "warm", "old"] {
                if v == "old" && *age < 700 {
                    continue;
                }
                rows.push(event(&format!("{v}-{i}-p"), v, at, "pageview", "/pricing"));
                if v == "hot" && *age < 3 {
                    rows.push(event(&format!("{v}-{i}-f"), v, at, "form_submit", "/demo"));
                }
            }
        }
        store.insert_events(&rows).unwrap();
        store
            .with_conn(|c| {
                for (id, age) in [("i91", 91), ("i89", 89)] {
                    c.execute(
                        "INSERT INTO identity_map (shortId, email, createdAt) VALUES (?1, 'x@y.example', ?2)",
                        params![id, NOW - age * DAY],
                    )?;
                }
                for (id, age) in [("c731", 731), ("c729", 729)] {
                    c.execute(
                        "INSERT INTO email_clicks (clickId, visitorId, target, timestamp) VALUES (?1, 'hot', '/', ?2)",
                        params![id, NOW - age * DAY],
                    )?;
                }
                Ok(())
            })
            .unwrap();
        store.rescore(NOW).unwrap();
        let before = scores(&store);
        assert!(before.iter().any(|(_, s, _)| *s > 40), "{before:?}");
        let pruned = store.prune(&KEEP, NOW, || {}).unwrap();
        let of = |t: &str| pruned.iter().find(|(n, _)| *n == t).unwrap().1;
        assert_eq!(of("events"), 3, "{pruned:?}");
        assert_eq!(of("identity_map"), 1);
        assert_eq!(of("email_clicks"), 1);
        assert!(of("sessions") >= 3, "{pruned:?}");
        let oldest = count(&store, "SELECT MIN(receivedAt) FROM events");
        assert_eq!(oldest, NOW - 729 * DAY - 1);
        assert_eq!(count(&store, "SELECT COUNT(*) FROM identity_map"), 1);
        assert_eq!(
            count(
                &store,
                "SELECT COUNT(*) FROM email_clicks WHERE clickId = 'c729'"
            ),
            1
        );
        assert_eq!(
            count(&store, "SELECT COUNT(*) FROM lead_profiles"),
            3,
            "profiles are kept"
        );
        store.rescore(NOW).unwrap();
        assert_eq!(scores(&store), before);
    }

    /// Events a day old go while new ones arrive: after a few days the file stops growing.
    #[test]
    fn with_pruning_the_file_stops_growing() {
        let (dir, store) = store();
        let short = Retention {
            events: Duration::from_secs(86_400),
            ..KEEP
        };
        let size = || {
            store
                .with_conn(|c| Ok(c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")?))
                .unwrap();
            std::fs::metadata(dir.path().join("oie.db")).unwrap().len()
        };
        let mut at = NOW;
        let mut sizes = Vec::new();
        for tick in 0..40 {
            // Every 6 hours, 1,000 events.
            let rows: Vec<EventRow> = (0..1_000)
                .map(|i| {
                    event(
                        &format!("e{tick}-{i}"),
                        &format!("v{}", i % 50),
                        at,
                        "pageview",
                        "/docs",
                    )
                })
                .collect();
            store.insert_events(&rows).unwrap();
            store.prune(&short, at, || {}).unwrap();
            sizes.push(size());
            at += DAY / 4;
        }
        let (day3, day10) = (sizes[11], sizes[39]);
        assert!(
            day10 as f64 <= day3 as f64 * 1.25,
            "grew from {day3} to {day10} bytes: {sizes:?}"
        );
        assert_eq!(count(&store, "SELECT COUNT(*) FROM events"), 5_000);
    }
}
