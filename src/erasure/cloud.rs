//! Erasure in cloud mode. Requests arrive in BigQuery's `erasure_requests` (from the Worker's
//! `DELETE /visitors/{id}` and from `oie visitors erase`), by a SHA-256 of the id. For each,
//! `oie run`: finds the visitor (a profile or identity that still names it), forgets it in the
//! outbox and queues the CRM erasures routes ask for; deletes its rows from every table; and
//! marks the request done with the counts. BigQuery refuses to delete rows streamed in the
//! last ~30–90 minutes: such a table is tried again on the next pass, and the request stays
//! pending until every table is clean. Progress is kept in the outbox, so a restart resumes.

use std::collections::HashMap;
use std::sync::Arc;

use crate::clock::now_ms;
use crate::outbox::{CloudErasure, HandOver, Outbox};
use crate::pipeline::{Pipeline, Work};
use crate::routing::Trigger;
use crate::store::{BigQueryStore, NotYet, ERASED_TABLES};

pub struct CloudEraser {
    pub store: Arc<BigQueryStore>,
    pub outbox: Arc<Outbox>,
    pub pipeline: Arc<Pipeline>,
    pub wake: Arc<dyn Fn() + Send + Sync>,
}

/// What one pass did with one request.
#[derive(Debug, PartialEq, Eq)]
pub enum Progress {
    Done,
    /// Some table still holds rows BigQuery will not delete yet.
    Waiting,
}

impl CloudEraser {
    /// Works on every pending request once. Returns (done, waiting).
    pub async fn pass(&self) -> anyhow::Result<(usize, usize)> {
        let (mut done, mut waiting) = (0, 0);
        for hash in self.store.pending_erasures().await? {
            match self.erase(&hash).await {
                Ok(Progress::Done) => done += 1,
                Ok(Progress::Waiting) => waiting += 1,
                Err(e) => {
                    tracing::error!(error = %e, "erasure request not done; trying again on the next pass");
                    waiting += 1;
                }
            }
        }
        Ok((done, waiting))
    }

    /// Takes one request as far as BigQuery allows now.
    pub async fn erase(&self, hash: &str) -> anyhow::Result<Progress> {
        let mut state = self.outbox.cloud_erasure(hash)?;
        if !state.outbox_done {
            self.forget(hash).await?;
            state.outbox_done = true;
            self.save(hash, &state)?;
        }
        let mut waiting = false;
        for (table, column) in ERASED_TABLES {
            if state.deleted.contains_key(*table) {
                continue;
            }
            match self.store.delete_hashed(table, column, hash).await {
                Ok(n) => {
                    state.deleted.insert(table.to_string(), n.into());
                    self.save(hash, &state)?;
                }
                Err(NotYet::StreamingBuffer) => waiting = true,
                Err(NotYet::Other(e)) => return Err(e),
            }
        }
        if waiting {
            tracing::info!(
                tables_left = ERASED_TABLES.len() - state.deleted.len(),
                "erasure waits for BigQuery's streaming buffer (rows streamed in the last ~30–90 minutes cannot be deleted yet); trying again on the next pass"
            );
            return Ok(Progress::Waiting);
        }
        if !state.marked {
            let deleted = serde_json::Value::Object(state.deleted.clone()).to_string();
            match self.store.mark_erased(hash, &deleted).await {
                Ok(_) => {
                    state.marked = true;
                    self.save(hash, &state)?;
                }
                Err(NotYet::StreamingBuffer) => return Ok(Progress::Waiting),
                Err(NotYet::Other(e)) => return Err(e),
            }
        }
        tracing::info!(deleted = %serde_json::Value::Object(state.deleted), "visitor erased from BigQuery");
        Ok(Progress::Done)
    }

    /// The outbox part, for each visitor the hash names: forgotten, CRM erasures queued, every
    /// delivery removed.
    async fn forget(&self, hash: &str) -> anyhow::Result<()> {
        let visitors = self.store.visitors_hashed(hash).await?;
        let ids: Vec<&str> = visitors.iter().map(String::as_str).collect();
        let leads = self.store.profiles(&ids).await?;
        let mut crm = self.store.crm_ids(&ids).await?;
        let now = now_ms();
        let mut queued = 0;
        for visitor in &visitors {
            self.outbox.forgotten.forget_async(visitor, now).await;
            let handed = match leads.get(visitor) {
                Some(lead) => {
                    let work = Work {
                        lead,
                        triggers: vec![Trigger::erasure(lead.level(), now)],
                        fires: HashMap::new(),
                        crm: crm.remove(visitor).unwrap_or_default(),
                        snoozed: Default::default(),
                        account: None,
                    };
                    self.pipeline.route_all(&[work], now)
                }
                None => HandOver::default(),
            };
            self.outbox.erase(visitor)?;
            queued += self.outbox.hand_over(&handed, now)?.added;
        }
        if queued > 0 {
            (self.wake)();
        }
        Ok(())
    }

    fn save(&self, hash: &str, state: &CloudErasure) -> anyhow::Result<()> {
        self.outbox.save_cloud_erasure(hash, state, now_ms())
    }
}
