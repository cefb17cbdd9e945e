//! The delivery side of the daemon: the lead source, one dispatch loop per connector, the
//! recorder of outcomes, pruning of old delivered rows, and (on BigQuery) the fold of the
//! outcome log into `crm_sync_state`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clock::now_ms;
use crate::config::{Config, ConnectorHandle};
use crate::dispatch::{self, ConnectorRuntime, Dispatcher};
use crate::metrics::Metrics;
use crate::outbox::Outbox;
use crate::pipeline::Pipeline;
use crate::routing::Router;
use crate::sources::bigquery::BigQuerySource;
use crate::sources::leads::LeadsSource;
use crate::sources::pubsub::PubSubSource;
use crate::store::{BigQueryStore, LeadStore, SqliteStore, Writeback};

/// The lead store the daemon reads and writes back to.
pub enum Leads {
    Embedded(Arc<SqliteStore>),
    Warehouse(Arc<BigQueryStore>),
}

pub struct Back {
    work: CancellationToken,
    loops: TaskTracker,
    dispatcher: Dispatcher,
    recorder: JoinHandle<()>,
    connectors: usize,
    /// Routes and connectors, for erasures.
    pub pipeline: Arc<Pipeline>,
    runtimes: Vec<Arc<ConnectorRuntime>>,
}

impl Back {
    /// `databases` are the SQLite files to checkpoint in the background (the outbox, and the
    /// embedded lead store).
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        config: &Config,
        databases: Vec<crate::sqlite::Checkpointer>,
        router: Router,
        connectors: BTreeMap<String, ConnectorHandle>,
        leads: &Leads,
        outbox: &Arc<Outbox>,
        metrics: &Arc<Metrics>,
        lead_wake: Arc<Notify>,
    ) -> Back {
        let (records, rx) = mpsc::channel(4096);
        let writeback: Arc<dyn Writeback> = match leads {
            Leads::Embedded(s) => s.clone(),
            Leads::Warehouse(s) => s.clone(),
        };
        let recorder = tokio::spawn(dispatch::run_recorder(rx, outbox.clone(), writeback));
        let work = CancellationToken::new();
        let dispatcher = Dispatcher {
            outbox: outbox.clone(),
            metrics: metrics.clone(),
            records,
            tasks: TaskTracker::new(),
            stop: work.clone(),
            clock: crate::clock::Clock::System,
        };
        let runtimes: Vec<Arc<ConnectorRuntime>> = connectors
            .values()
            .map(|h| {
                Arc::new(ConnectorRuntime::new(
                    &h.name,
                    h.connector.clone(),
                    &h.delivery,
                    &config.delivery,
                ))
            })
            .collect();
        let loops = TaskTracker::new();
        for rt in &runtimes {
            loops.spawn(dispatcher.clone().run(rt.clone()));
        }
        let pipeline = Arc::new(Pipeline { router, connectors });
        if let Some(pubsub) = &config.sources.pubsub {
            let source = Arc::new(PubSubSource {
                outbox: outbox.clone(),
                pipeline: pipeline.clone(),
                metrics: metrics.clone(),
                config: pubsub.clone(),
            });
            loops.spawn(source.run(runtimes.clone(), work.clone()));
        }
        let leads_config = &config.sources.leads;
        let interval = leads_config.interval(config.store.kind);
        let page = leads_config.batch_size.max(1);
        match leads {
            Leads::Embedded(store) if leads_config.enabled => {
                let lead_store: Arc<dyn LeadStore> = store.clone();
                let source = Arc::new(LeadsSource {
                    store: lead_store,
                    outbox: outbox.clone(),
                    pipeline: pipeline.clone(),
                    metrics: metrics.clone(),
                    page,
                });
                loops.spawn(poll_leads(
                    source,
                    interval,
                    runtimes.clone(),
                    lead_wake,
                    work.clone(),
                ));
            }
            Leads::Warehouse(store) => {
                if leads_config.enabled {
                    let source = BigQuerySource {
                        store: store.clone(),
                        outbox: outbox.clone(),
                        pipeline: pipeline.clone(),
                        metrics: metrics.clone(),
                        page,
                    };
                    loops.spawn(poll_bigquery(
                        source,
                        interval,
                        runtimes.clone(),
                        work.clone(),
                    ));
                }
                let waker = {
                    let runtimes = runtimes.clone();
                    Arc::new(move || runtimes.iter().for_each(|rt| rt.wake()))
                };
                let eraser = crate::erasure::CloudEraser {
                    store: store.clone(),
                    outbox: outbox.clone(),
                    pipeline: pipeline.clone(),
                    wake: waker,
                };
                loops.spawn(erase_in_bigquery(eraser, interval, work.clone()));
                if config.store.fold {
                    loops.spawn(fold(
                        store.clone(),
                        config.store.fold_interval,
                        work.clone(),
                    ));
                }
            }
            Leads::Embedded(_) => {}
        }
        loops.spawn(prune(
            outbox.clone(),
            config.delivery.retain_delivered,
            work.clone(),
        ));
        loops.spawn(checkpoint(databases, work.clone()));
        Back {
            work,
            loops,
            dispatcher,
            recorder,
            connectors: runtimes.len(),
            pipeline,
            runtimes,
        }
    }

    pub fn connectors(&self) -> usize {
        self.connectors
    }

    /// Wakes every connector loop (new work was handed to the outbox outside a source).
    pub fn waker(&self) -> Arc<dyn Fn() + Send + Sync> {
        let runtimes = self.runtimes.clone();
        Arc::new(move || runtimes.iter().for_each(|rt| rt.wake()))
    }

    /// Stops sources and loops, gives deliveries in flight `deadline` to finish, and waits for
    /// their outcomes to be recorded.
    pub async fn stop(self, deadline: Duration) {
        self.work.cancel();
        self.loops.close();
        self.loops.wait().await;
        self.dispatcher.tasks.close();
        if tokio::time::timeout(deadline, self.dispatcher.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                ?deadline,
                "deliveries still in flight at the deadline are released for the next start"
            );
        }
        drop(self.dispatcher);
        // Every sender is gone once the loops ended, so the recorder drains and returns.
        let _ = tokio::time::timeout(Duration::from_secs(10), self.recorder).await;
    }
}

async fn poll_leads(
    source: Arc<LeadsSource>,
    interval: Duration,
    runtimes: Vec<Arc<ConnectorRuntime>>,
    wake: Arc<Notify>,
    stop: CancellationToken,
) {
    while !stop.is_cancelled() {
        let (s, rts, halt) = (source.clone(), runtimes.clone(), stop.clone());
        let drained = tokio::task::spawn_blocking(move || {
            s.drain(
                now_ms,
                || !halt.is_cancelled(),
                |step| {
                    if step.enqueued > 0 {
                        rts.iter().for_each(|rt| rt.wake());
                        tracing::debug!(
                            leads = step.leads,
                            enqueued = step.enqueued,
                            "leads handed over"
                        );
                    }
                },
            )
        })
        .await;
        match drained {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "lead source failed; will try again"),
            Err(e) => tracing::error!(error = %e, "lead source task failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = wake.notified() => {}
            _ = stop.cancelled() => {}
        }
    }
}

/// Polls BigQuery: every page of new alerts, then every page of changed profiles, then waits.
async fn poll_bigquery(
    source: BigQuerySource,
    interval: Duration,
    runtimes: Vec<Arc<ConnectorRuntime>>,
    stop: CancellationToken,
) {
    let wake = |enqueued: usize| {
        if enqueued > 0 {
            runtimes.iter().for_each(|rt| rt.wake());
        }
    };
    while !stop.is_cancelled() {
        let polled: anyhow::Result<(usize, usize)> = async {
            let (mut alerts, mut profiles) = (0, 0);
            loop {
                let page = source.alerts_page(now_ms()).await?;
                wake(page.enqueued);
                alerts += page.rows;
                if !page.full(source.page) || stop.is_cancelled() {
                    break;
                }
            }
            let mut continuing = false;
            loop {
                let page = source.profiles_page(now_ms(), continuing).await?;
                wake(page.enqueued);
                profiles += page.rows;
                continuing = page.full(source.page);
                if !continuing || stop.is_cancelled() {
                    break;
                }
            }
            Ok((alerts, profiles))
        }
        .await;
        match polled {
            Ok((alerts, profiles)) if alerts + profiles > 0 => {
                tracing::info!(alerts, profiles, "BigQuery changes handed over")
            }
            Ok(_) => {}
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "reading BigQuery failed; will try again")
            }
        }
        pause(interval, &stop).await;
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
async fn erase_in_bigquery(
    eraser: crate::erasure::CloudEraser,
    interval: Duration,
    stop: CancellationToken,
) {
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

async fn prune(outbox: Arc<Outbox>, retain: Duration, stop: CancellationToken) {
    while !stop.is_cancelled() {
        let cutoff = now_ms() - retain.as_millis() as i64;
        let o = outbox.clone();
        match tokio::task::spawn_blocking(move || o.prune_delivered(cutoff)).await {
            Ok(Ok(n)) if n > 0 => tracing::info!(pruned = n, "forgot old delivered rows"),
            Ok(Err(e)) => tracing::warn!(error = %e, "pruning the outbox failed"),
            _ => {}
        }
        pause(Duration::from_secs(600), &stop).await;
    }
}

/// How often the WAL of each database is copied back.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// Passive WAL checkpoints beside the writers, so commits never pay for them.
async fn checkpoint(databases: Vec<crate::sqlite::Checkpointer>, stop: CancellationToken) {
    let databases = Arc::new(databases);
    while !stop.is_cancelled() {
        let dbs = databases.clone();
        let done = tokio::task::spawn_blocking(move || dbs.iter().try_for_each(|d| d.run())).await;
        if let Ok(Err(e)) = done {
            tracing::debug!(error = %e, "WAL checkpoint skipped; the next one catches up");
        }
        pause(CHECKPOINT_EVERY, &stop).await;
    }
}

/// Waits `interval`, or less if `stop` comes first.
async fn pause(interval: Duration, stop: &CancellationToken) {
    tokio::select! {
        _ = tokio::time::sleep(interval) => {}
        _ = stop.cancelled() => {}
    }
}
