//! Reading BigQuery: changed profiles, new alerts, profiles and CRM record ids by visitor.

use std::collections::HashMap;

use anyhow::Context;
use serde_json::Value;

use super::{Alert, BigQueryStore, Cursor};
use crate::bigquery::query::{Param, Row};
use crate::lead::{stored_fields, Lead, Level};
use crate::store::CrmRecord;

impl BigQueryStore {
    /// The newest `updatedAt` in `lead_profiles` (ms), `None` when it is empty.
    pub async fn latest_change(&self) -> anyhow::Result<Option<i64>> {
        self.latest_update("lead_profiles").await
    }

    /// The newest `updatedAt` in `table` (ms), `None` when it is empty: one column read, to
    /// learn whether a poll has anything to read.
    pub(super) async fn latest_update(&self, table: &str) -> anyhow::Result<Option<i64>> {
        let rows = self
            .wh
            .query(
                &format!(
                    "SELECT UNIX_MILLIS(MAX(updatedAt)) AS latest FROM `${{dataset}}.{table}`"
                ),
                vec![],
            )
            .await
            .with_context(|| format!("probing {table} for changes"))?;
        Ok(rows.first().and_then(|r| r["latest"].as_i64()))
    }

    /// Profiles changed after `after`, in `(updatedAt, visitorId)` order, at most `limit`.
    pub async fn changed_profiles(
        &self,
        after: &Cursor,
        limit: usize,
    ) -> anyhow::Result<Vec<Lead>> {
        self.select_profiles(
            &format!(
                "WHERE (updatedAt > TIMESTAMP_MILLIS(@ms)) OR (updatedAt = TIMESTAMP_MILLIS(@ms) AND visitorId > @id)
                 ORDER BY updatedAt, visitorId
                 LIMIT {limit}"
            ),
            keyset(after),
            "reading changed lead_profiles",
        )
        .await
    }

    /// The profiles of `visitor_ids` (those that exist).
    pub async fn profiles(&self, visitor_ids: &[&str]) -> anyhow::Result<HashMap<String, Lead>> {
        if visitor_ids.is_empty() {
            return Ok(HashMap::new());
        }
        let leads = self
            .select_profiles(
                "WHERE visitorId IN UNNEST(@ids)",
                vec![Param::strings("ids", visitor_ids)],
                "reading lead_profiles",
            )
            .await?;
        Ok(leads
            .into_iter()
            .map(|l| (l.visitor_id().to_string(), l))
            .collect())
    }

    /// `SELECT <lead columns> FROM lead_profiles <tail>`, as leads.
    async fn select_profiles(
        &self,
        tail: &str,
        params: Vec<Param>,
        what: &'static str,
    ) -> anyhow::Result<Vec<Lead>> {
        let sql = format!(
            "SELECT {} FROM `${{dataset}}.lead_profiles` {tail}",
            profile_columns()
        );
        let rows = self.wh.query(&sql, params).await.context(what)?;
        Ok(rows.iter().map(lead).collect())
    }

    /// Alerts after `after`, in `(alertedAt, alertId)` order, at most `limit`; only the
    /// partitions since the cursor are read. The Worker's streaming scorer's rows (`source =
    /// 'edge'`) are left out: it published those moments to Pub/Sub itself.
    pub async fn alerts_after(&self, after: &Cursor, limit: usize) -> anyhow::Result<Vec<Alert>> {
        let sql = format!(
            "SELECT alertId, visitorId, newLevel, previousLevel, alertedAt
             FROM `${{dataset}}.hot_lead_alerts`
             WHERE alertTime >= TIMESTAMP_MILLIS(@ms)
               AND ((alertedAt > @ms) OR (alertedAt = @ms AND alertId > @id))
               AND source IS DISTINCT FROM 'edge'
             ORDER BY alertedAt, alertId
             LIMIT {limit}"
        );
        let rows = self
            .wh
            .query(&sql, keyset(after))
            .await
            .context("reading hot_lead_alerts")?;
        rows.iter()
            .map(|r| {
                let text = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or_default();
                Ok(Alert {
                    alert_id: text("alertId").to_string(),
                    visitor_id: text("visitorId").to_string(),
                    level: Level::parse(text("newLevel")).with_context(|| {
                        format!("alert {}: newLevel {:?}", text("alertId"), text("newLevel"))
                    })?,
                    previous_level: Level::parse(text("previousLevel")),
                    alerted_at: r["alertedAt"].as_i64().unwrap_or_default(),
                })
            })
            .collect()
    }

    /// The known CRM records of each lead, newest first: from `crm_sync_state` and the
    /// outcomes of the last 2 days not folded yet.
    pub async fn crm_ids(
        &self,
        visitor_ids: &[&str],
    ) -> anyhow::Result<HashMap<String, Vec<CrmRecord>>> {
        if visitor_ids.is_empty() {
            return Ok(HashMap::new());
        }
        let rows = self
            .wh
            .query(
                "SELECT visitorId, connector, crmContactId, COALESCE(ownerEmail, '') AS ownerEmail,
                        lastSyncedAt AS at
                 FROM `${dataset}.crm_sync_state`
                 WHERE visitorId IN UNNEST(@ids) AND crmContactId IS NOT NULL
                 UNION ALL
                 SELECT visitorId, connector, crmContactId, ownerEmail, syncedAt AS at
                 FROM `${dataset}.crm_sync_log`
                 WHERE syncTime >= TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL 2 DAY)
                   AND visitorId IN UNNEST(@ids) AND success AND crmContactId IS NOT NULL",
                vec![Param::strings("ids", visitor_ids)],
            )
            .await
            .context("reading CRM record ids")?;
        Ok(newest_ids(&rows))
    }
}

/// `@ms` and `@id`: the cursor a keyset page starts after.
fn keyset(after: &Cursor) -> Vec<Param> {
    vec![Param::int("ms", after.ms), Param::string("id", &after.id)]
}

/// The `lead_profiles` columns a [`Lead`] has, `updatedAt` as epoch ms.
fn profile_columns() -> String {
    stored_fields()
        .filter(|(name, _)| *name != "changeSeq")
        .map(|(name, _)| *name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A lead from a `lead_profiles` row; its version (`changeSeq`) is `updatedAt`.
fn lead(row: &Row) -> Lead {
    let mut fields = row.clone();
    fields.insert(
        "changeSeq".into(),
        row.get("updatedAt").cloned().unwrap_or(Value::Null),
    );
    Lead::from_json(&fields)
}

/// visitorId → its records, newest first, one per connector: the newest record id, and the
/// owner the newest row that read one says (`ownerEmail` '' for none, NULL for not read).
fn newest_ids(rows: &[Row]) -> HashMap<String, Vec<CrmRecord>> {
    let mut all: Vec<(&str, &str, &str, Option<&str>, i64)> = rows
        .iter()
        .filter_map(|r| {
            Some((
                r.get("visitorId")?.as_str()?,
                r.get("connector")?.as_str()?,
                r.get("crmContactId")?.as_str()?,
                r.get("ownerEmail").and_then(Value::as_str),
                r.get("at").and_then(Value::as_i64).unwrap_or(0),
            ))
        })
        .collect();
    all.sort_by_key(|r| std::cmp::Reverse(r.4));
    let mut out: HashMap<String, Vec<CrmRecord>> = HashMap::new();
    let mut owner_read: HashMap<(&str, &str), bool> = HashMap::new();
    for (visitor, connector, id, owner, _) in all {
        let records = out.entry(visitor.to_string()).or_default();
        if !records.iter().any(|r| r.connector == connector) {
            records.push(CrmRecord {
                connector: connector.to_string(),
                id: id.to_string(),
                owner_email: None,
            });
        }
        let read = owner_read.entry((visitor, connector)).or_default();
        if let (Some(owner), false) = (owner, *read) {
            *read = true;
            if let Some(r) = records.iter_mut().find(|r| r.connector == connector) {
                r.owner_email = Some(owner.to_string()).filter(|o| !o.is_empty());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_newest_id_per_connector_wins() {
        let row = |v: &str, c: &str, id: &str, at: i64| -> Row {
            json!({"visitorId": v, "connector": c, "crmContactId": id, "at": at})
                .as_object()
                .unwrap()
                .clone()
        };
        let owned = |mut r: Row, owner: &str| {
            r.insert("ownerEmail".into(), json!(owner));
            r
        };
        let ids = newest_ids(&[
            row("v1", "hubspot", "old", 1),
            owned(row("v1", "hubspot", "new", 4), "rep@acme.example"),
            // The newest outcome did not read the owner: the one before it did.
            row("v1", "hubspot", "new", 5),
            owned(row("v1", "salesforce", "00Q", 3), ""),
            owned(row("v1", "salesforce", "00Q", 2), "old@acme.example"),
        ]);
        let record = |c: &str, id: &str, owner: Option<&str>| CrmRecord {
            connector: c.into(),
            id: id.into(),
            owner_email: owner.map(str::to_string),
        };
        assert_eq!(
            ids["v1"],
            vec![
                record("hubspot", "new", Some("rep@acme.example")),
                record("salesforce", "00Q", None)
            ]
        );
    }
}
