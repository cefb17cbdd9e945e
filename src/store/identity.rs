//! Identities (short id → person), e-mail clicks, lookups for pages, and erasure.

use rusqlite::{params, OptionalExtension};
use serde_json::{json, Map, Value};

use super::SqliteStore;

/// What a page may show about a short id: never the e-mail or the last name.
pub fn public_identity(row: Option<(Option<String>, Option<String>, Option<String>)>) -> Value {
    let (first, company, campaign) = row.unwrap_or_default();
    json!({"firstName": first, "company": company, "campaignName": campaign})
}

/// The row of a hot lead as a page may see it (`None`: not a hot lead; the same shape).
type Personalization = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// What `/personalize` answers: the same shape whether the visitor is a hot lead or not.
pub fn public_personalization(row: Option<Personalization>) -> Value {
    let (first, company, campaign, level) = row.unwrap_or_default();
    json!({"firstName": first, "company": company, "campaignName": campaign, "level": level})
}

/// What was erased for a visitor.
#[derive(Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Erased {
    pub events: usize,
    pub sessions: usize,
    pub profiles: usize,
    pub identities: usize,
    pub clicks: usize,
    pub alerts: usize,
    pub sync_state: usize,
    pub sync_log: usize,
}

impl SqliteStore {
    /// Upserts identities (`shortId` required; email, firstName, lastName, company, title,
    /// campaignId, campaignName optional).
    pub fn insert_identity(&self, row: &Map<String, Value>, now_ms: i64) -> anyhow::Result<()> {
        let t = |k: &str| {
            row.get(k)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let id = t("shortId").unwrap_or_default();
        super::import::check_short_id(&id).map_err(|e| anyhow::anyhow!(e))?;
        self.with_conn(|c| {
            c.execute("DELETE FROM identity_map WHERE shortId = ?1", [&id])?;
            c.execute(
                "INSERT INTO identity_map (shortId, email, firstName, lastName, company, title, campaignId, campaignName, createdAt)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![id, t("email"), t("firstName"), t("lastName"), t("company"), t("title"), t("campaignId"), t("campaignName"), now_ms],
            )?;
            Ok(())
        })
    }

    /// The id an e-mail address was last imported with, if any.
    pub fn id_of(&self, email: &str) -> anyhow::Result<Option<String>> {
        self.with_conn(|c| {
            Ok(c.query_row(
                "SELECT shortId FROM identity_map WHERE lower(email) = lower(?1)
                 ORDER BY createdAt DESC LIMIT 1",
                [email],
                |r| r.get(0),
            )
            .optional()?)
        })
    }

    /// Whether an identity with this short id was imported.
    pub fn has_identity(&self, short_id: &str) -> anyhow::Result<bool> {
        self.with_reader(|c| {
            Ok(c.query_row(
                "SELECT 1 FROM identity_map WHERE shortId = ?1 LIMIT 1",
                [short_id],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
        })
    }

    /// `/identify`: the page-safe part of an identity, the same shape for unknown ids.
    pub fn identify(&self, short_id: &str) -> anyhow::Result<Value> {
        self.with_reader(|c| {
            let row = c
                .query_row(
                    "SELECT firstName, company, campaignName FROM identity_map WHERE shortId = ?1
                     ORDER BY createdAt DESC LIMIT 1",
                    [short_id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            Ok(public_identity(row))
        })
    }

    /// `/personalize`: for a hot or burning lead seen in the last 30 days (the export of
    /// sql/sqlite/queries/4), what a page may adapt to; the same shape otherwise.
    pub fn personalize(&self, visitor_id: &str, now_ms: i64) -> anyhow::Result<Value> {
        self.with_reader(|c| {
            let row = c
                .query_row(
                    "SELECT firstName, company, campaignName, engagementLevel FROM lead_profiles
                     WHERE visitorId = ?1 AND engagementLevel IN ('hot', 'burning') AND lastVisitAt >= ?2 - 2592000000",
                    params![visitor_id, now_ms],
                    |r| Ok((r.get::<_, Option<String>>(0)?, r.get::<_, Option<String>>(1)?, r.get::<_, Option<String>>(2)?, r.get::<_, Option<String>>(3)?)),
                )
                .optional()?;
            Ok(public_personalization(row))
        })
    }

    /// Records that an erasure happened, by a hash of the id.
    pub fn record_erasure(
        &self,
        visitor_hash: &str,
        now_ms: i64,
        erased: &Value,
    ) -> anyhow::Result<()> {
        self.with_conn(|c| {
            c.execute(
                "INSERT INTO erasure_requests (visitorHash, requestedAt, erased) VALUES (?1, ?2, ?3)",
                params![visitor_hash, now_ms, erased.to_string()],
            )?;
            Ok(())
        })
    }

    /// Removes everything stored about a visitor, in one transaction.
    pub fn erase(&self, visitor_id: &str) -> anyhow::Result<Erased> {
        self.with_conn(|c| {
            let tx = c.transaction()?;
            let del = |sql: &str| tx.execute(sql, [visitor_id]);
            let erased = Erased {
                events: del("DELETE FROM events WHERE visitorId = ?1")?,
                sessions: del("DELETE FROM sessions WHERE visitorId = ?1")?,
                profiles: del("DELETE FROM lead_profiles WHERE visitorId = ?1")?,
                identities: del("DELETE FROM identity_map WHERE shortId = ?1")?,
                clicks: del("DELETE FROM email_clicks WHERE visitorId = ?1")?,
                alerts: del("DELETE FROM hot_lead_alerts WHERE visitorId = ?1")?,
                sync_state: del("DELETE FROM crm_sync_state WHERE visitorId = ?1")?,
                sync_log: del("DELETE FROM crm_sync_log WHERE visitorId = ?1")?,
            };
            // The account it counted in is rescored without it at the next scoring run (and
            // deleted if it was the only member).
            del("INSERT OR IGNORE INTO account_pending (accountDomain)
                 SELECT accountDomain FROM account_members WHERE visitorId = ?1")?;
            del("DELETE FROM account_members WHERE visitorId = ?1")?;
            del("DELETE FROM level_changes WHERE visitorId = ?1")?;
            tx.commit()?;
            Ok(erased)
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::store::tests::store;

    /// Erasing the newest profile must not hand its change number to the next change: a
    /// source positioned at it would skip that change.
    #[test]
    fn change_numbers_never_go_back_after_an_erasure() {
        let (_dir, store) = store();
        let upsert = |id: &str, score: i64| {
            store
                .with_conn(|c| {
                    c.execute(
                        "INSERT INTO lead_profiles (visitorId, intentScore, engagementLevel) VALUES (?1, ?2, 'cold')
                         ON CONFLICT (visitorId) DO UPDATE SET intentScore = excluded.intentScore",
                        rusqlite::params![id, score],
                    )?;
                    Ok(())
                })
                .unwrap()
        };
        upsert("a", 1);
        upsert("b", 2);
        let newest = store
            .changed_leads(0, 10)
            .unwrap()
            .last()
            .unwrap()
            .version();
        store.erase("b").unwrap();
        upsert("a", 3);
        let after = store.changed_leads(newest, 10).unwrap();
        assert_eq!(after.len(), 1, "the change after the erasure is seen");
        assert!(after[0].version() > newest);
    }

    /// An erased lead leaves its account at the next scoring run; the account goes with its
    /// last member.
    #[test]
    fn an_erased_lead_leaves_its_account() {
        let (_dir, store) = store();
        let lead = |id: &str, score: i64| {
            store
                .with_conn(|c| {
                    c.execute(
                        "INSERT INTO lead_profiles (visitorId, email, intentScore, engagementLevel, lastVisitAt)
                         VALUES (?1, ?1 || '@globex.example', ?2, 'warm', 1000)",
                        rusqlite::params![id, score],
                    )?;
                    Ok(())
                })
                .unwrap()
        };
        let account = || {
            store
                .with_conn(|c| {
                    Ok(c.query_row(
                        "SELECT people, peakScore FROM account_profiles WHERE accountDomain = 'globex.example'",
                        [],
                        |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
                    )
                    .ok())
                })
                .unwrap()
        };
        lead("ann", 70);
        lead("bo", 45);
        store.rescore(2000).unwrap();
        assert_eq!(account(), Some((2, 70)));
        store.erase("ann").unwrap();
        store.rescore(3000).unwrap();
        assert_eq!(account(), Some((1, 45)));
        store.erase("bo").unwrap();
        store.rescore(4000).unwrap();
        assert_eq!(account(), None);
    }
}
