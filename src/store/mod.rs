//! The lead store: where profiles are read from and CRM outcomes are written back.
//! Embedded mode uses SQLite (`<data_dir>/oie.db`); cloud mode BigQuery.

mod bigquery;
mod events;
mod identity;
pub mod ids;
mod import;
mod retention;
mod sqlite;
pub mod timeline;

pub use bigquery::{Alert, BigQueryStore, Cursor, NotYet, ALERT_LOOKBACK_MS, ERASED_TABLES};
pub use events::{ClickRow, EventRow};
pub use identity::{public_identity, public_personalization, Erased};
pub use import::{import_file, import_identities, IdentitiesReport, IdentityTarget, ImportReport};
pub use retention::{Pruned, Retention};
pub use sqlite::SqliteStore;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Config, StoreKind};
use crate::outbox::Outbox;
use crate::pipeline::Pipeline;
use crate::sources::stage::Stage;
use crate::sources::Source;

/// The outcome of one CRM delivery, for `crm_sync_state`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncRecord {
    /// The delivery's idempotency key (BigQuery's `crm_sync_log.deliveryId` and insertId).
    pub delivery_id: String,
    pub visitor_id: String,
    pub connector: String,
    pub at_ms: i64,
    /// `Ok(record id)` on success, `Err(reason)` on a permanent failure.
    pub result: Result<Option<String>, String>,
    /// The record's owner in the CRM as this outcome learnt it: `None` when it did not look,
    /// `Some("")` when the record has no owner (or none with an e-mail), else the e-mail.
    pub owner_email: Option<String>,
}

/// A lead's record in a CRM, as `crm_sync_state` knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrmRecord {
    pub connector: String,
    pub id: String,
    /// The e-mail of the record's owner in the CRM, when oie read one.
    pub owner_email: Option<String>,
}

impl CrmRecord {
    /// What templates see in `crm`: `{connector, id, ownerEmail}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({"connector": self.connector, "id": self.id, "ownerEmail": self.owner_email})
    }
}

/// What the daemon needs from a lead store, embedded or in the warehouse: it never asks
/// which kind it has.
#[async_trait::async_trait]
pub trait LeadStore: Send + Sync {
    /// Writes CRM outcomes back. A failure never marks a lead as synced.
    async fn write_back(self: Arc<Self>, records: Arc<Vec<SyncRecord>>) -> anyhow::Result<()>;

    /// The source that turns this store's lead changes into triggers, handing over through
    /// the stage `stage` makes for its label, in pages of at most `page`.
    fn source(
        self: Arc<Self>,
        stage: &dyn Fn(&'static str) -> Stage,
        page: usize,
    ) -> Arc<dyn Source>;

    /// Spawns on `tasks` what the store needs done beside its source until `chores.stop`
    /// (BigQuery: the fold of outcomes into `crm_sync_state`, and erasure requests).
    fn chores(self: Arc<Self>, chores: Chores, tasks: &TaskTracker);

    /// The embedded store, for what only embedded mode has: ingest, scoring, erasure on
    /// request, and its file to checkpoint.
    fn embedded(self: Arc<Self>) -> Option<Arc<SqliteStore>>;

    /// The CRM records oie synced for a lead, newest first.
    async fn crm_records(self: Arc<Self>, visitor: &str) -> anyhow::Result<Vec<CrmRecord>>;

    /// The CRM records of each of `visitors` that has some (one read for all).
    async fn crm_records_of(
        self: Arc<Self>,
        visitors: Vec<String>,
    ) -> anyhow::Result<std::collections::HashMap<String, Vec<CrmRecord>>>;

    /// The profiles of `visitor_ids` that exist.
    async fn profiles(
        self: Arc<Self>,
        visitor_ids: Vec<String>,
    ) -> anyhow::Result<std::collections::HashMap<String, crate::lead::Lead>>;

    /// A lead's sessions with their events and its rises ([`timeline`]), at `now_ms`.
    async fn timeline(
        self: Arc<Self>,
        visitor: &str,
        now_ms: i64,
    ) -> anyhow::Result<serde_json::Value>;

    /// The accounts of `domains` that exist, by domain.
    async fn accounts(
        self: Arc<Self>,
        domains: Vec<String>,
    ) -> anyhow::Result<std::collections::HashMap<String, crate::account::Account>>;

    /// Not a fit: marks the lead's profile `disqualified` by `by` (a Slack user id) at `at_ms`
    /// (a profile change: a sync route carries it to the CRMs).
    async fn disqualify(self: Arc<Self>, visitor: &str, by: &str, at_ms: i64)
        -> anyhow::Result<()>;
}

/// What a store's chores work with.
pub struct Chores {
    /// How often outcomes are folded (`[store] fold` and `fold_interval`), if at all.
    pub fold_every: Option<Duration>,
    pub outbox: Arc<Outbox>,
    pub pipeline: Arc<Pipeline>,
    /// Wakes the connector loops after work was handed over outside a source.
    pub wake: Arc<dyn Fn() + Send + Sync>,
    /// The source's polling interval.
    pub interval: Duration,
    pub stop: CancellationToken,
}

/// Opens the store `config` names: SQLite under `data_dir` (created if missing, with the page
/// classes of `[scoring]`), or a connection to BigQuery. Call inside the runtime.
pub async fn open(config: &Config, data_dir: &Path) -> anyhow::Result<Arc<dyn LeadStore>> {
    Ok(match config.store.kind {
        StoreKind::Sqlite => {
            let store = SqliteStore::open(&data_dir.join("oie.db"))?;
            if let Some(classes) = &config.scoring.page_classes {
                store.set_page_classes(&classes.rows())?;
            }
            Arc::new(store)
        }
        StoreKind::Bigquery => Arc::new(BigQueryStore::connect(&config.store).await?),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    /// A lead store in a temporary folder (kept alive by the returned guard).
    pub fn store() -> (tempfile::TempDir, super::SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = super::SqliteStore::open(&dir.path().join("oie.db")).unwrap();
        (dir, store)
    }
}
