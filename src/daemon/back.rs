//! The delivery side of the daemon: the lead source, one dispatch loop per connector, the
//! recorder of outcomes, and pruning of old delivered rows.

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
use crate::sources::leads::LeadsSource;
use crate::sources::pubsub::PubSubSource;
use crate::store::{LeadStore, SqliteStore};

pub struct Back {
    work: CancellationToken,
    loops: TaskTracker,
    dispatcher: Dispatcher,
    recorder: JoinHandle<()>,
    connectors: usize,
}

impl Back {
    pub fn start(
        config: &Config,
        router: Router,
        connectors: BTreeMap<String, ConnectorHandle>,
        store: &Arc<SqliteStore>,
        outbox: &Arc<Outbox>,
        metrics: &Arc<Metrics>,
        lead_wake: Arc<Notify>,
    ) -> Back {
        let (records, rx) = mpsc::channel(4096);
        let lead_store: Arc<dyn LeadStore> = store.clone();
        let recorder = tokio::spawn(dispatch::run_recorder(
            rx,
            outbox.clone(),
            lead_store.clone(),
        ));
        let work = CancellationToken::new();
        let dispatcher = Dispatcher {
            outbox: outbox.clone(),
            metrics: metrics.clone(),
            records,
            tasks: TaskTracker::new(),
            stop: work.clone(),
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
        if config.sources.leads.enabled {
            let source = Arc::new(LeadsSource {
                store: lead_store,
                outbox: outbox.clone(),
                pipeline,
                metrics: metrics.clone(),
                page: config.sources.leads.batch_size.max(1),
            });
            let interval = config.sources.leads.interval;
            loops.spawn(poll_leads(
                source,
                interval,
                runtimes.clone(),
                lead_wake,
                work.clone(),
            ));
        }
        loops.spawn(prune(
            outbox.clone(),
            config.delivery.retain_delivered,
            work.clone(),
        ));
        Back {
            work,
            loops,
            dispatcher,
            recorder,
            connectors: runtimes.len(),
        }
    }

    pub fn connectors(&self) -> usize {
        self.connectors
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
        loop {
            let s = source.clone();
            let step = tokio::task::spawn_blocking(move || s.step(now_ms())).await;
            match step {
                Ok(Ok(step)) => {
                    if step.enqueued > 0 {
                        runtimes.iter().for_each(|rt| rt.wake());
                        tracing::debug!(
                            leads = step.leads,
                            enqueued = step.enqueued,
                            "leads handed over"
                        );
                    }
                    if step.leads < source.page || stop.is_cancelled() {
                        break;
                    }
                }
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "lead source failed; will try again");
                    break;
                }
                Err(e) => {
                    tracing::error!(error = %e, "lead source task failed");
                    break;
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = wake.notified() => {}
            _ = stop.cancelled() => {}
        }
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
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(600)) => {}
            _ = stop.cancelled() => {}
        }
    }
}
