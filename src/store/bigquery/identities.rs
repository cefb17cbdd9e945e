//! `oie identities import` on a BigQuery store: identities appended to `identity_map` with
//! `insertAll` (the scoring query takes each short id's newest row), and the ids already given
//! to an import's e-mail addresses read back so a second import keeps them.

use std::collections::HashMap;

use anyhow::Context;
use serde_json::{json, Map, Value};

use super::BigQueryStore;
use crate::bigquery::query::Param;
use crate::routing::trigger_rfc3339;

/// E-mail addresses looked up per query.
const LOOKUP_BATCH: usize = 10_000;

impl BigQueryStore {
    /// The newest short id of each address (keys lower-cased); reads `identity_map` (its
    /// partitions expire after 90 days, as identities do).
    pub async fn ids_of(&self, emails: &[String]) -> anyhow::Result<HashMap<String, String>> {
        let mut newest: HashMap<String, (i64, String)> = HashMap::new();
        for chunk in emails.chunks(LOOKUP_BATCH) {
            let lower: Vec<String> = chunk.iter().map(|e| e.to_lowercase()).collect();
            let refs: Vec<&str> = lower.iter().map(String::as_str).collect();
            let rows = self
                .wh
                .query(
                    "SELECT LOWER(email) AS email, shortId, createdAt
                     FROM `${dataset}.identity_map`
                     WHERE LOWER(email) IN UNNEST(@emails)",
                    vec![Param::strings("emails", &refs)],
                )
                .await
                .context("reading identity_map")?;
            for r in rows {
                let (Some(email), Some(id)) = (
                    r.get("email").and_then(Value::as_str),
                    r.get("shortId").and_then(Value::as_str),
                ) else {
                    continue;
                };
                let at = r.get("createdAt").and_then(Value::as_i64).unwrap_or(0);
                if newest.get(email).is_none_or(|(known, _)| at > *known) {
                    newest.insert(email.to_string(), (at, id.to_string()));
                }
            }
        }
        Ok(newest.into_iter().map(|(e, (_, id))| (e, id)).collect())
    }

    /// Appends identities to `identity_map`; insertId = `shortId:createdAt`, so a retried call
    /// does not add a row twice.
    pub async fn insert_identities(
        &self,
        rows: &[(Map<String, Value>, i64)],
    ) -> anyhow::Result<()> {
        let rows: Vec<(String, Value)> = rows
            .iter()
            .map(|(row, created)| {
                let t = |k: &str| {
                    row.get(k)
                        .and_then(Value::as_str)
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                };
                let id = t("shortId").unwrap_or_default();
                (
                    format!("{id}:{created}"),
                    json!({"shortId": id, "email": t("email"), "firstName": t("firstName"),
                           "lastName": t("lastName"), "company": t("company"), "title": t("title"),
                           "campaignId": t("campaignId"), "campaignName": t("campaignName"),
                           "createdAt": trigger_rfc3339(*created)}),
                )
            })
            .collect();
        self.append("identity_map", &rows).await
    }
}
