//! Writes attempt results to the outbox in batches, after writing CRM outcomes back to the
//! lead store (so a crash in between repeats a harmless upsert, never loses a writeback).

use std::sync::Arc;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use tokio::sync::{mpsc, Notify};

use crate::outbox::{Outbox, Report};
use crate::store::{LeadStore, SyncRecord};

/// One attempt's result on its way to disk.
#[derive(Debug)]
pub struct Record {
    pub report: Report,
    pub writeback: Option<SyncRecord>,
    /// For a delivery queued again (a retry, a hold, a release): its connector's loop, woken
    /// once this is on disk. Otherwise a loop that looked for due work while it was still in
    /// flight sleeps its whole idle poll past the retry's time.
    pub requeued: Option<Arc<Notify>>,
}

const BATCH: usize = 500;

/// Runs until every sender is dropped and the channel is drained.
pub async fn run(mut rx: mpsc::Receiver<Record>, outbox: Arc<Outbox>, store: Arc<dyn LeadStore>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        write(batch, &outbox, &store).await;
    }
}

async fn write(batch: Vec<Record>, outbox: &Arc<Outbox>, store: &Arc<dyn LeadStore>) {
    let mut wake: Vec<Arc<Notify>> = Vec::new();
    for n in batch.iter().filter_map(|r| r.requeued.as_ref()) {
        if !wake.iter().any(|w| Arc::ptr_eq(w, n)) {
            wake.push(n.clone());
        }
    }
    let reports: Arc<Vec<Report>> = Arc::new(batch.iter().map(|r| r.report.clone()).collect());
    let syncs: Arc<Vec<SyncRecord>> =
        Arc::new(batch.into_iter().filter_map(|r| r.writeback).collect());
    let attempt = || {
        let (outbox, store, reports, syncs) = (
            outbox.clone(),
            store.clone(),
            reports.clone(),
            syncs.clone(),
        );
        async move {
            // Held while writing back: an erasure waits, and one that came first is seen,
            // so a writeback never brings back the sync state of an erased visitor.
            let gate = outbox.forgotten.writeback().await;
            let syncs: Vec<SyncRecord> = syncs
                .iter()
                .filter(|s| outbox.forgotten.since(&s.visitor_id).is_none())
                .cloned()
                .collect();
            if !syncs.is_empty() {
                store.write_back(Arc::new(syncs)).await?;
            }
            drop(gate);
            tokio::task::spawn_blocking(move || outbox.record(&reports)).await?
        }
    };
    // Disk trouble is usually brief; keep trying rather than forget an outcome.
    let policy = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(50))
        .with_max_delay(Duration::from_secs(5))
        .with_jitter()
        .without_max_times();
    let result = attempt
        .retry(policy)
        .notify(|e, wait| tracing::error!(error = %e, ?wait, "cannot record delivery outcomes; retrying"))
        .await;
    if let Err(e) = result {
        tracing::error!(error = %e, "delivery outcomes not recorded; they will be attempted again after restart");
    }
    wake.iter().for_each(|w| w.notify_one());
}
