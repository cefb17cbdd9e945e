use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;
use tokio_util::task::TaskTracker;

use super::{Chores, CrmRecord, LeadStore, SyncRecord};
use crate::account::Account;
use crate::lead::{stored_fields, FieldType, Lead, FIELDS};
use crate::sources::leads::LeadsSource;
use crate::sources::stage::Stage;
use crate::sources::Source;

const SCHEMA: &str = include_str!("../../sql/sqlite/schema.sql");

/// The embedded lead store.
pub struct SqliteStore {
    conn: Mutex<Connection>,
    /// A read-only connection for the ingest API's lookups (`/identify`, `/personalize`): in
    /// WAL mode it reads beside the writer, so a flood of lookups never waits on (or stalls)
    /// event writes and scoring.
    reader: Mutex<Connection>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database and its tables.
    pub fn open(path: &Path) -> anyhow::Result<SqliteStore> {
        let conn = crate::sqlite::open(path, SCHEMA)?;
        conn.execute_batch(crate::scoring::PAGE_CLASSES)?;
        conn.execute_batch(crate::scoring::FREE_MAIL_DOMAINS)?;
        let reader = crate::sqlite::open_reader(path)?;
        Ok(SqliteStore {
            conn: Mutex::new(conn),
            reader: Mutex::new(reader),
        })
    }

    /// Runs `f` on the read-only connection.
    pub(crate) fn with_reader<T>(
        &self,
        f: impl FnOnce(&Connection) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        // A poisoned lock means a panic mid-call; the connection only reads, so it is usable.
        let conn = self.reader.lock().unwrap_or_else(|p| p.into_inner());
        f(&conn)
    }

    pub(crate) fn with_conn<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        // A poisoned lock means a panic mid-call; SQLite rolled back, so the connection is usable.
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut conn)
    }

    /// Replaces the page classes (pageviews are classified by these patterns from the next
    /// scoring run on; profiles already scored keep their counts until rescored).
    pub fn set_page_classes(&self, rows: &[(&str, &str)]) -> anyhow::Result<()> {
        self.with_conn(|c| {
            let tx = c.transaction()?;
            tx.execute("DELETE FROM page_classes", [])?;
            for (class, pattern) in rows {
                tx.execute(
                    "INSERT OR IGNORE INTO page_classes (pageClass, pattern) VALUES (?1, ?2)",
                    params![class, pattern],
                )?;
            }
            tx.commit()?;
            Ok(())
        })
    }

    /// The page classes in use: (class, pattern).
    pub fn page_classes(&self) -> anyhow::Result<Vec<(String, String)>> {
        self.with_conn(|c| {
            let mut stmt = c.prepare(
                "SELECT pageClass, pattern FROM page_classes ORDER BY pageClass, pattern",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// Runs the incremental scoring steps (sql/sqlite/queries 1, 2, 6, 3) at `now_ms`.
    /// Returns how many leads were rescored.
    pub fn rescore(&self, now_ms: i64) -> anyhow::Result<usize> {
        self.with_conn(|c| Ok(crate::scoring::rescore(c, now_ms)?))
    }

    /// Rolls changed leads up into their accounts (step 6 alone, incremental): leads change
    /// outside scoring too (an import, Not a fit).
    pub fn score_accounts(&self, now_ms: i64) -> anyhow::Result<()> {
        self.with_conn(|c| {
            crate::scoring::run_step(c, crate::scoring::ACCOUNTS.sql, now_ms)?;
            Ok(())
        })
    }

    /// One lead by visitor id.
    pub fn lead(&self, visitor_id: &str) -> anyhow::Result<Option<Lead>> {
        self.with_conn(|c| {
            let sql = format!(
                "SELECT {} FROM lead_profiles WHERE visitorId = ?1",
                columns()
            );
            Ok(c.query_row(&sql, [visitor_id], row_to_lead).optional()?)
        })
    }

    /// The `crm_sync_state` row of a lead and connector:
    /// (crmContactId, syncedToCRM, lastSyncedAt, lastError, ownerEmail).
    pub fn sync_state(
        &self,
        visitor_id: &str,
        connector: &str,
    ) -> anyhow::Result<Option<SyncState>> {
        self.with_conn(|c| {
            Ok(c.query_row(
                "SELECT crmContactId, syncedToCRM, lastSyncedAt, lastError, ownerEmail FROM crm_sync_state
                 WHERE visitorId = ?1 AND connector = ?2",
                params![visitor_id, connector],
                |r| {
                    Ok(SyncState {
                        crm_contact_id: r.get(0)?,
                        synced: r.get::<_, i64>(1)? != 0,
                        last_synced_at: r.get(2)?,
                        last_error: r.get(3)?,
                        owner_email: r.get(4)?,
                    })
                },
            )
            .optional()?)
        })
    }
}

/// A `crm_sync_state` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncState {
    pub crm_contact_id: Option<String>,
    pub synced: bool,
    pub last_synced_at: Option<i64>,
    pub last_error: Option<String>,
    pub owner_email: Option<String>,
}

pub(crate) fn columns() -> String {
    stored_fields()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

fn row_to_lead(row: &rusqlite::Row) -> rusqlite::Result<Lead> {
    let mut values = Vec::with_capacity(FIELDS.len());
    for (i, (_, ty)) in stored_fields().enumerate() {
        let value = match ty {
            FieldType::Text | FieldType::Json => row.get::<_, Option<String>>(i)?.map(Value::from),
            FieldType::Integer => row.get::<_, Option<i64>>(i)?.map(Value::from),
            FieldType::Bool => row.get::<_, Option<bool>>(i)?.map(Value::from),
            FieldType::Real => row
                .get::<_, Option<f64>>(i)?
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number),
        };
        values.push(value.unwrap_or(Value::Null));
    }
    Ok(Lead::from_values(values))
}

/// What the lead source reads.
impl SqliteStore {
    /// Leads whose `changeSeq` is above `after`, in change order, at most `limit`.
    pub fn changed_leads(&self, after: i64, limit: usize) -> anyhow::Result<Vec<Lead>> {
        self.with_conn(|c| {
            let sql = format!(
                "SELECT {} FROM lead_profiles WHERE changeSeq > ?1 ORDER BY changeSeq LIMIT ?2",
                columns()
            );
            let mut stmt = c.prepare_cached(&sql)?;
            let rows = stmt.query_map(params![after, limit as i64], row_to_lead)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    /// The known CRM records of each lead, newest first.
    pub fn crm_ids(&self, visitor_ids: &[&str]) -> anyhow::Result<HashMap<String, Vec<CrmRecord>>> {
        self.with_conn(|c| {
            Ok(crate::sqlite::snapshot(c, |c| {
                let mut stmt = c.prepare_cached(
                    "SELECT connector, crmContactId, ownerEmail FROM crm_sync_state
                 WHERE visitorId = ?1 AND crmContactId IS NOT NULL ORDER BY lastSyncedAt DESC",
                )?;
                let mut out = HashMap::new();
                for v in visitor_ids {
                    let ids = stmt
                        .query_map([v], |r| {
                            Ok(CrmRecord {
                                connector: r.get(0)?,
                                id: r.get(1)?,
                                owner_email: r.get(2)?,
                            })
                        })?
                        .collect::<Result<Vec<_>, _>>()?;
                    if !ids.is_empty() {
                        out.insert(v.to_string(), ids);
                    }
                }
                Ok(out)
            })?)
        })
    }
}

/// What the account source and the leads source read of accounts.
impl SqliteStore {
    /// Accounts whose `changeSeq` is above `after`, in change order, at most `limit`.
    pub fn changed_accounts(&self, after: i64, limit: usize) -> anyhow::Result<Vec<Account>> {
        self.with_conn(|c| {
            let sql = format!(
                "SELECT {} FROM account_profiles WHERE changeSeq > ?1 ORDER BY changeSeq LIMIT ?2",
                account_columns("")
            );
            let mut stmt = c.prepare_cached(&sql)?;
            let rows = stmt.query_map(params![after, limit as i64], row_to_account)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    /// The account of each of `visitor_ids` that has one, with `othersThisWeek`: its other
    /// people seen in the 7 days before `now_ms`.
    pub fn accounts_of(
        &self,
        visitor_ids: &[&str],
        now_ms: i64,
    ) -> anyhow::Result<HashMap<String, Account>> {
        self.with_conn(|c| {
            Ok(crate::sqlite::snapshot(c, |c| {
                let sql = format!(
                    "SELECT {} FROM account_members m
                     JOIN account_profiles a ON a.accountDomain = m.accountDomain
                     WHERE m.visitorId = ?1",
                    account_columns("a.")
                );
                let mut account = c.prepare_cached(&sql)?;
                let mut others = c.prepare_cached(
                    "SELECT COUNT(*) FROM account_members m
                     JOIN lead_profiles p ON p.visitorId = m.visitorId
                     WHERE m.accountDomain = ?1 AND m.visitorId != ?2 AND p.lastVisitAt >= ?3",
                )?;
                let mut out = HashMap::new();
                for v in visitor_ids {
                    let Some(mut a) = account.query_row([v], row_to_account).optional()? else {
                        continue;
                    };
                    let week_ago = now_ms - 7 * 86_400_000;
                    let n: i64 =
                        others.query_row(params![a.domain(), v, week_ago], |r| r.get(0))?;
                    a.set("othersThisWeek", Value::from(n));
                    out.insert(v.to_string(), a);
                }
                Ok(out)
            })?)
        })
    }

    /// The CRM records of an account's members, `[{connector, id}]`.
    pub fn member_records(&self, domain: &str) -> anyhow::Result<Value> {
        self.with_conn(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT s.connector, s.crmContactId FROM account_members m
                 JOIN crm_sync_state s ON s.visitorId = m.visitorId
                 WHERE m.accountDomain = ?1 AND s.crmContactId IS NOT NULL
                 ORDER BY s.connector, s.crmContactId",
            )?;
            let rows = stmt.query_map([domain], |r| {
                Ok(serde_json::json!({"connector": r.get::<_, String>(0)?, "id": r.get::<_, String>(1)?}))
            })?;
            Ok(Value::Array(rows.collect::<Result<Vec<_>, _>>()?))
        })
    }

    /// The engaged people of an account (score ≥ 40, seen in the 90 days before `now_ms`),
    /// best first, at most 10: what an account alert lists.
    pub fn engaged_people(&self, domain: &str, now_ms: i64) -> anyhow::Result<Value> {
        self.with_conn(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT p.visitorId, p.firstName, p.lastName, p.title, p.intentScore,
                        p.engagementLevel, p.lastVisitAt
                 FROM account_members m JOIN lead_profiles p ON p.visitorId = m.visitorId
                 WHERE m.accountDomain = ?1 AND p.intentScore >= 40 AND p.lastVisitAt >= ?2
                 ORDER BY p.intentScore DESC, p.lastVisitAt DESC, p.visitorId LIMIT 10",
            )?;
            let rows = stmt.query_map(params![domain, now_ms - 7_776_000_000], |r| {
                Ok(serde_json::json!({
                    "visitorId": r.get::<_, String>(0)?,
                    "firstName": r.get::<_, Option<String>>(1)?,
                    "lastName": r.get::<_, Option<String>>(2)?,
                    "title": r.get::<_, Option<String>>(3)?,
                    "intentScore": r.get::<_, i64>(4)?,
                    "engagementLevel": r.get::<_, String>(5)?,
                    "lastVisitAt": r.get::<_, Option<i64>>(6)?,
                }))
            })?;
            Ok(Value::Array(rows.collect::<Result<Vec<_>, _>>()?))
        })
    }
}

/// The `account_profiles` columns of [`Account`], prefixed with `table` (`"a."`).
fn account_columns(table: &str) -> String {
    crate::account::FIELDS
        .iter()
        .map(|(n, _)| format!("{table}{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn row_to_account(row: &rusqlite::Row) -> rusqlite::Result<Account> {
    let mut values = Vec::with_capacity(crate::account::FIELDS.len());
    for (i, (_, ty)) in crate::account::FIELDS.iter().enumerate() {
        let value = match ty {
            FieldType::Integer => row.get::<_, Option<i64>>(i)?.map(Value::from),
            _ => row.get::<_, Option<String>>(i)?.map(Value::from),
        };
        values.push(value.unwrap_or(Value::Null));
    }
    Ok(Account::from_values(values))
}

impl SqliteStore {
    /// Writes CRM outcomes back (blocking). A failure never marks a lead as synced.
    pub fn record_sync(&self, records: &[SyncRecord]) -> anyhow::Result<()> {
        self.with_conn(|c| {
            let tx = c.transaction()?;
            for r in records {
                write_sync(&tx, r)?;
            }
            tx.commit()?;
            Ok(())
        })
    }
}

#[async_trait::async_trait]
impl LeadStore for SqliteStore {
    async fn write_back(self: Arc<Self>, records: Arc<Vec<SyncRecord>>) -> anyhow::Result<()> {
        tokio::task::spawn_blocking(move || self.record_sync(&records)).await?
    }

    async fn disqualify(
        self: Arc<Self>,
        visitor: &str,
        by: &str,
        at_ms: i64,
    ) -> anyhow::Result<()> {
        let (visitor, by) = (visitor.to_string(), by.to_string());
        tokio::task::spawn_blocking(move || {
            self.with_conn(|c| {
                c.execute(
                    "UPDATE lead_profiles SET disqualified = 1, disqualifiedBy = ?2, disqualifiedAt = ?3
                     WHERE visitorId = ?1",
                    params![visitor, by, at_ms],
                )?;
                Ok(())
            })
        })
        .await?
    }

    async fn profiles(
        self: Arc<Self>,
        visitor_ids: Vec<String>,
    ) -> anyhow::Result<HashMap<String, Lead>> {
        tokio::task::spawn_blocking(move || {
            let mut out = HashMap::new();
            for v in visitor_ids {
                if let Some(lead) = self.lead(&v)? {
                    out.insert(v, lead);
                }
            }
            Ok(out)
        })
        .await?
    }

    async fn timeline(self: Arc<Self>, visitor: &str, now_ms: i64) -> anyhow::Result<Value> {
        use super::timeline::{assemble, EVENTS, SESSIONS, WINDOW_MS};
        let visitor = visitor.to_string();
        tokio::task::spawn_blocking(move || {
            self.with_reader(|c| {
                let since = now_ms - WINDOW_MS;
                let mut stmt = c.prepare_cached(
                    "SELECT sessionId, startedAt, endedAt, pageviews, activeMs, maxScrollDepth,
                            formSubmissions, landingPath, exitPath
                     FROM sessions WHERE visitorId = ?1 AND endedAt >= ?2
                     ORDER BY startedAt DESC LIMIT ?3",
                )?;
                let sessions = stmt
                    .query_map(params![visitor, since, SESSIONS as i64], |r| {
                        Ok(serde_json::json!({
                            "sessionId": r.get::<_, String>(0)?, "startedAt": r.get::<_, i64>(1)?,
                            "endedAt": r.get::<_, i64>(2)?, "pageviews": r.get::<_, i64>(3)?,
                            "activeMs": r.get::<_, i64>(4)?, "maxScrollDepth": r.get::<_, i64>(5)?,
                            "formSubmissions": r.get::<_, i64>(6)?,
                            "landingPath": r.get::<_, Option<String>>(7)?,
                            "exitPath": r.get::<_, Option<String>>(8)?, "events": [],
                        }))
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                let mut stmt = c.prepare_cached(
                    "SELECT sessionId, eventType, timestamp, path, data FROM events
                     WHERE visitorId = ?1 AND timestamp >= ?2 ORDER BY timestamp DESC LIMIT ?3",
                )?;
                let events = stmt
                    .query_map(params![visitor, since, EVENTS as i64], |r| {
                        let data: Option<String> = r.get(4)?;
                        Ok(serde_json::json!({
                            "sessionId": r.get::<_, Option<String>>(0)?, "type": r.get::<_, String>(1)?,
                            "at": r.get::<_, i64>(2)?, "path": r.get::<_, Option<String>>(3)?,
                            "data": data.and_then(|d| serde_json::from_str::<Value>(&d).ok()),
                        }))
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                let mut stmt = c.prepare_cached(
                    "SELECT previousLevel, newLevel, intentScore, changedAt
                     FROM level_changes WHERE visitorId = ?1 ORDER BY changedAt",
                )?;
                let levels = stmt
                    .query_map([&visitor], |r| {
                        Ok(serde_json::json!({
                            "previousLevel": r.get::<_, Option<String>>(0)?, "level": r.get::<_, String>(1)?,
                            "score": r.get::<_, i64>(2)?, "at": r.get::<_, i64>(3)?,
                        }))
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(assemble(sessions, events, levels))
            })
        })
        .await?
    }

    async fn accounts(
        self: Arc<Self>,
        domains: Vec<String>,
    ) -> anyhow::Result<HashMap<String, Account>> {
        tokio::task::spawn_blocking(move || {
            self.with_conn(|c| {
                let sql = format!(
                    "SELECT {} FROM account_profiles WHERE accountDomain = ?1",
                    account_columns("")
                );
                let mut stmt = c.prepare_cached(&sql)?;
                let mut out = HashMap::new();
                for d in domains {
                    if let Some(a) = stmt.query_row([&d], row_to_account).optional()? {
                        out.insert(d, a);
                    }
                }
                Ok(out)
            })
        })
        .await?
    }

    async fn crm_records_of(
        self: Arc<Self>,
        visitors: Vec<String>,
    ) -> anyhow::Result<HashMap<String, Vec<CrmRecord>>> {
        tokio::task::spawn_blocking(move || {
            let ids: Vec<&str> = visitors.iter().map(String::as_str).collect();
            self.crm_ids(&ids)
        })
        .await?
    }

    async fn crm_records(self: Arc<Self>, visitor: &str) -> anyhow::Result<Vec<CrmRecord>> {
        let visitor = visitor.to_string();
        tokio::task::spawn_blocking(move || {
            Ok(self
                .crm_ids(&[&visitor])?
                .remove(&visitor)
                .unwrap_or_default())
        })
        .await?
    }

    fn source(
        self: Arc<Self>,
        stage: &dyn Fn(&'static str) -> Stage,
        page: usize,
    ) -> Arc<dyn Source> {
        Arc::new(LeadsSource {
            store: self,
            stage: stage(crate::sources::leads::SOURCE),
            accounts: stage(crate::sources::accounts::SOURCE),
            page,
        })
    }

    /// Nothing beside the source: scoring, erasure and pruning of events run in the front.
    fn chores(self: Arc<Self>, _chores: Chores, _tasks: &TaskTracker) {}

    fn embedded(self: Arc<Self>) -> Option<Arc<SqliteStore>> {
        Some(self)
    }
}

fn write_sync(tx: &rusqlite::Transaction, r: &SyncRecord) -> rusqlite::Result<usize> {
    match &r.result {
        Ok(record_id) => tx.execute(
            "INSERT INTO crm_sync_state (visitorId, connector, crmContactId, syncedToCRM, lastSyncedAt, lastError, updatedAt, ownerEmail)
             VALUES (?1, ?2, ?3, 1, ?4, NULL, ?4, NULLIF(?5, ''))
             ON CONFLICT (visitorId, connector) DO UPDATE SET
               crmContactId = COALESCE(excluded.crmContactId, crmContactId),
               syncedToCRM = 1, lastSyncedAt = excluded.lastSyncedAt, lastError = NULL,
               updatedAt = excluded.updatedAt,
               ownerEmail = CASE WHEN ?5 IS NULL THEN ownerEmail ELSE excluded.ownerEmail END",
            params![r.visitor_id, r.connector, record_id, r.at_ms, r.owner_email],
        ),
        // A failure records the error and leaves syncedToCRM and lastSyncedAt as they were.
        Err(error) => tx.execute(
            "INSERT INTO crm_sync_state (visitorId, connector, syncedToCRM, lastError, updatedAt)
             VALUES (?1, ?2, 0, ?3, ?4)
             ON CONFLICT (visitorId, connector) DO UPDATE SET
               lastError = excluded.lastError, updatedAt = excluded.updatedAt",
            params![r.visitor_id, r.connector, error, r.at_ms],
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(result: Result<Option<String>, String>, at_ms: i64) -> SyncRecord {
        SyncRecord {
            delivery_id: format!("d{at_ms}"),
            visitor_id: "v1".into(),
            connector: "crm".into(),
            at_ms,
            result,
            owner_email: None,
        }
    }

    #[test]
    fn writeback_marks_synced_only_on_success() {
        use crate::store::tests::store;
        let (_dir, store) = store();
        store
            .record_sync(&[record(Err("VALIDATION".into()), 5)])
            .unwrap();
        let s = store.sync_state("v1", "crm").unwrap().unwrap();
        assert!(!s.synced);
        assert_eq!(s.last_synced_at, None);
        assert_eq!(s.last_error.as_deref(), Some("VALIDATION"));

        store
            .record_sync(&[record(Ok(Some("003A".into())), 10)])
            .unwrap();
        let s = store.sync_state("v1", "crm").unwrap().unwrap();
        assert_eq!(
            (s.crm_contact_id.as_deref(), s.synced, s.last_synced_at),
            (Some("003A"), true, Some(10))
        );
        assert_eq!(s.last_error, None);

        // A later failure keeps the earlier success and its record id.
        store
            .record_sync(&[record(Err("boom".into()), 20)])
            .unwrap();
        let s = store.sync_state("v1", "crm").unwrap().unwrap();
        assert_eq!(
            (s.crm_contact_id.as_deref(), s.synced, s.last_synced_at),
            (Some("003A"), true, Some(10))
        );
        assert_eq!(s.last_error.as_deref(), Some("boom"));
    }

    #[test]
    fn the_owner_is_kept_until_an_outcome_reads_it_again() {
        use crate::store::tests::store;
        let (_dir, store) = store();
        let owned = |at: i64, owner: Option<&str>| SyncRecord {
            owner_email: owner.map(str::to_string),
            ..record(Ok(Some("003A".into())), at)
        };
        let owner =
            |store: &SqliteStore| store.sync_state("v1", "crm").unwrap().unwrap().owner_email;
        store
            .record_sync(&[owned(1, Some("rep@acme.example"))])
            .unwrap();
        assert_eq!(owner(&store).as_deref(), Some("rep@acme.example"));
        // Not read this time (or a failure): kept.
        store.record_sync(&[owned(2, None)]).unwrap();
        store.record_sync(&[record(Err("boom".into()), 3)]).unwrap();
        assert_eq!(owner(&store).as_deref(), Some("rep@acme.example"));
        assert_eq!(
            store.crm_ids(&["v1"]).unwrap()["v1"][0]
                .owner_email
                .as_deref(),
            Some("rep@acme.example")
        );
        // Read, and the record has no owner any more.
        store.record_sync(&[owned(4, Some(""))]).unwrap();
        assert_eq!(owner(&store), None);
    }
}
