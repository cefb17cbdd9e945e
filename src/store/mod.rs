//! The lead store: where profiles are read from and CRM outcomes are written back.
//! Embedded mode uses SQLite (`<data_dir>/oie.db`); cloud mode BigQuery.

mod bigquery;
mod events;
mod identity;
pub mod ids;
mod import;
mod retention;
mod sqlite;

pub use bigquery::{Alert, BigQueryStore, Cursor, NotYet, ALERT_LOOKBACK_MS, ERASED_TABLES};
pub use events::{ClickRow, EventRow};
pub use identity::{public_identity, public_personalization, Erased};
pub use import::{import_file, import_identities, IdentitiesReport, ImportReport};
pub use retention::{Pruned, Retention};
pub use sqlite::SqliteStore;

use std::collections::HashMap;

use crate::lead::Lead;

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
}

/// Where CRM outcomes are written back (blocking: the recorder calls it off the runtime).
pub trait Writeback: Send + Sync {
    /// Writes CRM outcomes back. A failure never marks a lead as synced.
    fn record_sync(&self, records: &[SyncRecord]) -> anyhow::Result<()>;
}

/// What the embedded daemon needs from a lead store.
pub trait LeadStore: Writeback {
    /// Leads whose `changeSeq` is above `after`, in change order, at most `limit`.
    fn changed_leads(&self, after: i64, limit: usize) -> anyhow::Result<Vec<Lead>>;

    /// The known CRM record ids of each lead: visitorId → [(connector, record id)].
    fn crm_ids(
        &self,
        visitor_ids: &[&str],
    ) -> anyhow::Result<HashMap<String, Vec<(String, String)>>>;
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
