//! The lead store of cloud mode: BigQuery (`[store] kind = "bigquery"`). Reads profile changes
//! from `lead_profiles` and level rises from `hot_lead_alerts`, each paged by a compound key
//! past a cursor the outbox keeps (`reads`); appends CRM outcomes to `crm_sync_log` with
//! `insertAll` and folds that log into `crm_sync_state` (`writeback`).
//!
//! Cost: `hot_lead_alerts` reads are pruned to the partitions since the cursor; `lead_profiles`
//! is first probed for its newest `updatedAt` (one column), and read only when that moved.

mod accounts;
mod chores;
mod erasure;
mod identities;
mod reads;
mod timeline;
mod writeback;

pub use erasure::{NotYet, TABLES as ERASED_TABLES};

use std::sync::Arc;

use anyhow::Context;
use tokio_util::task::TaskTracker;

use super::{Chores, CrmRecord, LeadStore, SqliteStore, SyncRecord};
use crate::bigquery::query::Warehouse;
use crate::config::StoreConfig;
use crate::lead::Level;
use crate::sources::bigquery::BigQuerySource;
use crate::sources::stage::Stage;
use crate::sources::Source;

/// How far back the first read of `hot_lead_alerts` looks (the alert query's own window).
pub const ALERT_LOOKBACK_MS: i64 = 7 * 86_400_000;

/// A position in a table read in `(ms, id)` order: everything up to and including it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub ms: i64,
    pub id: String,
}

impl Cursor {
    /// `"<ms>:<id>"` (the id may itself hold colons).
    pub fn encode(&self) -> String {
        format!("{}:{}", self.ms, self.id)
    }

    pub fn decode(text: &str) -> Option<Cursor> {
        let (ms, id) = text.split_once(':')?;
        Some(Cursor {
            ms: ms.parse().ok()?,
            id: id.to_string(),
        })
    }
}

/// One `hot_lead_alerts` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub alert_id: String,
    pub visitor_id: String,
    pub level: Level,
    pub previous_level: Option<Level>,
    pub alerted_at: i64,
}

pub struct BigQueryStore {
    wh: Warehouse,
}

impl BigQueryStore {
    /// Connects (credentials as `oie bigquery apply` uses them). Call inside the runtime.
    pub async fn connect(store: &StoreConfig) -> anyhow::Result<BigQueryStore> {
        let project = store
            .project
            .clone()
            .context("[store] kind = \"bigquery\" needs `project`")?;
        Ok(BigQueryStore {
            wh: Warehouse {
                client: crate::bigquery::client::connect(store).await?,
                project,
                dataset: store.dataset.clone(),
                location: store.location.clone(),
                max_bytes_billed: store.max_bytes_billed,
            },
        })
    }
}

#[async_trait::async_trait]
impl LeadStore for BigQueryStore {
    async fn write_back(self: Arc<Self>, records: Arc<Vec<SyncRecord>>) -> anyhow::Result<()> {
        self.append_outcomes(&records).await
    }

    fn source(
        self: Arc<Self>,
        stage: &dyn Fn(&'static str) -> Stage,
        page: usize,
    ) -> Arc<dyn Source> {
        Arc::new(BigQuerySource {
            store: self,
            stage: Arc::new(stage(crate::sources::bigquery::SOURCE)),
            page,
        })
    }

    fn chores(self: Arc<Self>, chores: Chores, tasks: &TaskTracker) {
        chores::spawn(self, chores, tasks);
    }

    fn embedded(self: Arc<Self>) -> Option<Arc<SqliteStore>> {
        None
    }

    /// A DML update: `lead_profiles` rows come from the scoring MERGE, never from the
    /// streaming buffer, so they can be updated at once.
    async fn disqualify(
        self: Arc<Self>,
        visitor: &str,
        by: &str,
        at_ms: i64,
    ) -> anyhow::Result<()> {
        use crate::bigquery::query::Param;
        self.wh
            .dml(
                "UPDATE `${dataset}.lead_profiles`
                 SET disqualified = TRUE, disqualifiedBy = @by, disqualifiedAt = @at,
                     updatedAt = TIMESTAMP_MILLIS(@at)
                 WHERE visitorId = @visitor",
                vec![
                    Param::string("visitor", visitor),
                    Param::string("by", by),
                    Param::int("at", at_ms),
                ],
            )
            .await
            .context("marking a lead disqualified in lead_profiles")?;
        Ok(())
    }

    async fn profiles(
        self: Arc<Self>,
        visitor_ids: Vec<String>,
    ) -> anyhow::Result<std::collections::HashMap<String, crate::lead::Lead>> {
        let ids: Vec<&str> = visitor_ids.iter().map(String::as_str).collect();
        BigQueryStore::profiles(&self, &ids).await
    }

    async fn timeline(
        self: Arc<Self>,
        visitor: &str,
        now_ms: i64,
    ) -> anyhow::Result<serde_json::Value> {
        self.lead_timeline(visitor, now_ms).await
    }

    async fn accounts(
        self: Arc<Self>,
        domains: Vec<String>,
    ) -> anyhow::Result<std::collections::HashMap<String, crate::account::Account>> {
        let domains: Vec<&str> = domains.iter().map(String::as_str).collect();
        BigQueryStore::accounts(&self, &domains).await
    }

    async fn crm_records_of(
        self: Arc<Self>,
        visitors: Vec<String>,
    ) -> anyhow::Result<std::collections::HashMap<String, Vec<CrmRecord>>> {
        let ids: Vec<&str> = visitors.iter().map(String::as_str).collect();
        self.crm_ids(&ids).await
    }

    async fn crm_records(self: Arc<Self>, visitor: &str) -> anyhow::Result<Vec<CrmRecord>> {
        Ok(self
            .crm_ids(&[visitor])
            .await?
            .remove(visitor)
            .unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_ids_with_colons() {
        let c = Cursor {
            ms: 1_795_700_000_000,
            id: "ab3f9:1795699999000".into(),
        };
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        assert_eq!(Cursor::decode("nonsense"), None);
    }
}
