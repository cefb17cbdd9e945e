//! Reading accounts from BigQuery (`account_profiles`, kept by the scheduled
//! queries/6_account_profiles.sql): changed accounts past a cursor, the accounts of leads, and
//! what an account alert lists — its engaged people and its people's CRM records.

use std::collections::HashMap;

use anyhow::Context;
use serde_json::{json, Value};

use super::{BigQueryStore, Cursor};
use crate::account::{Account, FIELDS};
use crate::bigquery::query::{Param, Row};

/// A lead's account domain from its e-mail, in SQL (as queries/6_account_profiles.sql has it).
const DOMAIN: &str = "IF(STRPOS(TRIM(email), '@') > 1, LOWER(SUBSTR(TRIM(email), STRPOS(TRIM(email), '@') + 1)), NULL)";

impl BigQueryStore {
    /// The newest `updatedAt` in `account_profiles` (ms), `None` when it is empty.
    pub async fn latest_account_change(&self) -> anyhow::Result<Option<i64>> {
        self.latest_update("account_profiles").await
    }

    /// Accounts changed after `after`, in `(updatedAt, accountDomain)` order, at most `limit`;
    /// an account's version (`changeSeq`) is its `updatedAt`.
    pub async fn changed_accounts(
        &self,
        after: &Cursor,
        limit: usize,
    ) -> anyhow::Result<Vec<Account>> {
        self.select_accounts(
            &format!(
                "WHERE (updatedAt > TIMESTAMP_MILLIS(@ms)) OR (updatedAt = TIMESTAMP_MILLIS(@ms) AND accountDomain > @id)
                 ORDER BY updatedAt, accountDomain
                 LIMIT {limit}"
            ),
            vec![Param::int("ms", after.ms), Param::string("id", &after.id)],
        )
        .await
    }

    /// The accounts of `domains` (those that exist), by domain.
    pub async fn accounts(&self, domains: &[&str]) -> anyhow::Result<HashMap<String, Account>> {
        if domains.is_empty() {
            return Ok(HashMap::new());
        }
        let accounts = self
            .select_accounts(
                "WHERE accountDomain IN UNNEST(@domains)",
                vec![Param::strings("domains", domains)],
            )
            .await?;
        Ok(accounts
            .into_iter()
            .map(|a| (a.domain().to_string(), a))
            .collect())
    }

    /// Per domain: how many of its people were seen in the 7 days before `now_ms`.
    pub async fn seen_this_week(
        &self,
        domains: &[&str],
        now_ms: i64,
    ) -> anyhow::Result<HashMap<String, i64>> {
        if domains.is_empty() {
            return Ok(HashMap::new());
        }
        let sql = format!(
            "SELECT accountDomain, COUNT(*) AS n
             FROM (SELECT {DOMAIN} AS accountDomain, lastVisitAt FROM `${{dataset}}.lead_profiles`)
             WHERE accountDomain IN UNNEST(@domains) AND lastVisitAt >= @since
             GROUP BY accountDomain"
        );
        let rows = self
            .wh
            .query(
                &sql,
                vec![
                    Param::strings("domains", domains),
                    Param::int("since", now_ms - 7 * 86_400_000),
                ],
            )
            .await
            .context("counting the accounts' people seen this week")?;
        Ok(rows
            .iter()
            .filter_map(|r| Some((r["accountDomain"].as_str()?.to_string(), r["n"].as_i64()?)))
            .collect())
    }

    /// Per domain: its engaged people (score ≥ 40, seen in 90 days), best first, at most 10;
    /// and its people's CRM records (`[{connector, id}]`, from `crm_sync_state`).
    pub async fn account_people(
        &self,
        domains: &[&str],
        now_ms: i64,
    ) -> anyhow::Result<(HashMap<String, Value>, HashMap<String, Value>)> {
        if domains.is_empty() {
            return Ok(Default::default());
        }
        let engaged_sql = format!(
            "SELECT * EXCEPT (rn) FROM (
               SELECT *, ROW_NUMBER() OVER (PARTITION BY accountDomain ORDER BY intentScore DESC, lastVisitAt DESC, visitorId) AS rn
               FROM (SELECT visitorId, firstName, lastName, title, intentScore, engagementLevel, lastVisitAt,
                            {DOMAIN} AS accountDomain
                     FROM `${{dataset}}.lead_profiles`)
               WHERE accountDomain IN UNNEST(@domains) AND intentScore >= 40 AND lastVisitAt >= @since)
             WHERE rn <= 10
             ORDER BY accountDomain, intentScore DESC, lastVisitAt DESC, visitorId"
        );
        let rows = self
            .wh
            .query(
                &engaged_sql,
                vec![
                    Param::strings("domains", domains),
                    Param::int("since", now_ms - 7_776_000_000),
                ],
            )
            .await
            .context("reading the accounts' engaged people")?;
        let mut engaged: HashMap<String, Value> = HashMap::new();
        for r in &rows {
            let Some(domain) = r["accountDomain"].as_str() else {
                continue;
            };
            let person = json!({
                "visitorId": r["visitorId"], "firstName": r["firstName"], "lastName": r["lastName"],
                "title": r["title"], "intentScore": r["intentScore"],
                "engagementLevel": r["engagementLevel"], "lastVisitAt": r["lastVisitAt"],
            });
            let list = engaged
                .entry(domain.to_string())
                .or_insert_with(|| json!([]));
            if let Some(list) = list.as_array_mut() {
                list.push(person);
            }
        }
        let records_sql = format!(
            "SELECT p.accountDomain, s.connector, s.crmContactId
             FROM `${{dataset}}.crm_sync_state` s
             JOIN (SELECT visitorId, {DOMAIN} AS accountDomain FROM `${{dataset}}.lead_profiles`) p
               USING (visitorId)
             WHERE p.accountDomain IN UNNEST(@domains) AND s.crmContactId IS NOT NULL
             ORDER BY p.accountDomain, s.connector, s.crmContactId"
        );
        let rows = self
            .wh
            .query(&records_sql, vec![Param::strings("domains", domains)])
            .await
            .context("reading the accounts' people's CRM records")?;
        let mut records: HashMap<String, Value> = HashMap::new();
        for r in &rows {
            let Some(domain) = r["accountDomain"].as_str() else {
                continue;
            };
            let record = json!({"connector": r["connector"], "id": r["crmContactId"]});
            let list = records
                .entry(domain.to_string())
                .or_insert_with(|| json!([]));
            if let Some(list) = list.as_array_mut() {
                list.push(record);
            }
        }
        Ok((engaged, records))
    }

    /// `SELECT <account columns> FROM account_profiles <tail>`, as accounts.
    async fn select_accounts(
        &self,
        tail: &str,
        params: Vec<Param>,
    ) -> anyhow::Result<Vec<Account>> {
        let columns: Vec<String> = FIELDS
            .iter()
            .map(|(name, _)| match *name {
                "updatedAt" | "changeSeq" => format!("UNIX_MILLIS(updatedAt) AS {name}"),
                other => other.to_string(),
            })
            .collect();
        let sql = format!(
            "SELECT {} FROM `${{dataset}}.account_profiles` {tail}",
            columns.join(", ")
        );
        let rows = self
            .wh
            .query(&sql, params)
            .await
            .context("reading account_profiles")?;
        Ok(rows.iter().map(account).collect())
    }
}

fn account(row: &Row) -> Account {
    Account::from_values(
        FIELDS
            .iter()
            .map(|(name, _)| row.get(*name).cloned().unwrap_or(Value::Null)),
    )
}
