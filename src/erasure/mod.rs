//! Erasure of one visitor in embedded mode: `DELETE /visitors/{id}` and `oie visitors erase`.
//!
//! In this order: the visitor is marked forgotten (so a delivery claimed but not yet sent is
//! never sent, no writeback brings sync state back, and events still in the ingest queue are
//! dropped); routes that ask for it get an `erasure` trigger while the lead is still known (a
//! CRM is told to delete the record oie synced); every delivery of the visitor goes from the
//! outbox, whatever its state; then every row of the store; and the request is recorded by a
//! hash of the id, with what was removed.

mod cloud;

pub use cloud::{CloudEraser, Progress};

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::outbox::{HandOver, Outbox};
use crate::pipeline::{Pipeline, Work};
use crate::routing::Trigger;
use crate::store::SqliteStore;

/// Erases visitors of the embedded store.
pub struct Eraser {
    pub store: Arc<SqliteStore>,
    pub outbox: Arc<Outbox>,
    pub pipeline: Arc<Pipeline>,
    /// Wakes the connector loops when CRM erasures were queued.
    pub wake: Arc<dyn Fn() + Send + Sync>,
}

impl Eraser {
    /// Erases `visitor` (blocking: SQLite); returns what was removed.
    pub fn erase(&self, visitor: &str, now_ms: i64) -> anyhow::Result<Value> {
        self.outbox.forgotten.forget(visitor, now_ms);
        let crm = self.crm_erasures(visitor, now_ms)?;
        let deliveries = self.outbox.erase(visitor)?;
        let crm_erasures = self.outbox.hand_over(&crm, now_ms)?.added;
        let store = self.store.erase(visitor)?;
        let report = json!({
            "store": store,
            "deliveries": deliveries,
            "crmErasures": crm_erasures,
        });
        self.store
            .record_erasure(&visitor_hash(visitor), now_ms, &report)?;
        if crm_erasures > 0 {
            (self.wake)();
        }
        Ok(report)
    }

    /// The deliveries of routes that send `erasure` triggers, made while the lead and its CRM
    /// records are still known.
    fn crm_erasures(&self, visitor: &str, now_ms: i64) -> anyhow::Result<HandOver> {
        let lead = match self.store.lead(visitor)? {
            Some(lead) => lead,
            // An identity that never became a lead: what holds it by visitor (a KV namespace of
            // identities) is still told to forget it.
            None if self.store.has_identity(visitor)? => crate::lead::Lead::from_json(
                json!({ "visitorId": visitor })
                    .as_object()
                    .unwrap_or(&Default::default()),
            ),
            None => return Ok(HandOver::default()),
        };
        let crm = self
            .store
            .crm_ids(&[visitor])?
            .remove(visitor)
            .unwrap_or_default();
        let work = Work {
            lead: &lead,
            triggers: vec![Trigger::erasure(lead.level(), now_ms)],
            fires: HashMap::new(),
            crm,
            snoozed: HashMap::new(),
            account: None,
        };
        Ok(self.pipeline.route_all(&[work], now_ms))
    }
}

/// What erasure records keep of the id: its SHA-256, so the log itself holds no identifier
/// (the Worker records the same).
pub fn visitor_hash(visitor: &str) -> String {
    hex::encode(Sha256::digest(visitor.as_bytes()))
}
