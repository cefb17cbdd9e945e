//! What a BigQuery store needs done beside its source: the fold of `crm_sync_log` into
//! `crm_sync_state`, and the erasure requests the Worker records.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::BigQueryStore;
use crate::clock::{now_ms, pause};
use crate::erasure::CloudEraser;
use crate::store::Chores;

pub fn spawn(store: Arc<BigQueryStore>, chores: Chores, tasks: &TaskTracker) {
    let eraser = CloudEraser {
        store: store.clone(),
        outbox: chores.outbox,
        pipeline: chores.pipeline,
        wake: chores.wake,
    };
    tasks.spawn(erase(eraser, chores.interval, chores.stop.clone()));
    if let Some(every) = chores.fold_every {
        tasks.spawn(fold(store, every, chores.stop));
    }
}

/// Folds `crm_sync_log` into `crm_sync_state` at start and every `interval`.
async fn fold(store: Arc<BigQueryStore>, interval: Duration, stop: CancellationToken) {
    while !stop.is_cancelled() {
        match store.fold(now_ms()).await {
            Ok(()) => tracing::debug!("crm_sync_log folded into crm_sync_state"),
            // Another replica folding at the same moment makes BigQuery abort one of the two.
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "folding CRM outcomes failed; will try again")
            }
        }
        pause(interval, &stop).await;
    }
}

/// Works on BigQuery's erasure requests once per source interval.
async fn erase(eraser: CloudEraser, interval: Duration, stop: CancellationToken) {
    while !stop.is_cancelled() {
        match eraser.pass().await {
            Ok((0, 0)) => {}
            Ok((done, waiting)) => tracing::info!(done, waiting, "erasure requests"),
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "reading erasure requests failed; will try again")
            }
        }
        pause(interval, &stop).await;
    }
}
