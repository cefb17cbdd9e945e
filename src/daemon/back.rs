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

use crate::clock::{now_ms, pause};
use crate::config::{Config, ConnectorHandle};
use crate::dispatch::{self, ConnectorRuntime, Dispatcher};
use crate::metrics::Metrics;
use crate::outbox::Outbox;
use crate::pipeline::Pipeline;
use crate::routing::Router;
use crate::sources::pubsub::PubSubSource;
use crate::sources::stage::Stage;
use crate::sources::Source;
use crate::store::{Chores, LeadStore};

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
        store: &Arc<dyn LeadStore>,
        outbox: &Arc<Outbox>,
        metrics: &Arc<Metrics>,
        lead_wake: Arc<Notify>,
    ) -> Back {
        let (records, rx) = mpsc::channel(4096);
        let recorder = tokio::spawn(dispatch::run_recorder(rx, outbox.clone(), store.clone()));
        let work = CancellationToken::new();
        let dispatcher = Dispatcher {
            outbox: outbox.clone(),
            metrics: metrics.clone(),
            records,
            tasks: TaskTracker::new(),
            stop: work.clone(),
            clock: crate::clock::Clock::System,
        };
        let owners_wanted = connectors.values().any(|h| h.connector.sends_to_owners());
        let runtimes: Vec<Arc<ConnectorRuntime>> = connectors
            .values()
            .map(|h| Arc::new(ConnectorRuntime::of(h, &config.delivery, owners_wanted)))
            .collect();
        let loops = TaskTracker::new();
        for rt in &runtimes {
            loops.spawn(dispatcher.clone().run(rt.clone()));
        }
        let pipeline = Arc::new(Pipeline { router, connectors });
        let stage = |source| Stage {
            source,
            outbox: outbox.clone(),
            pipeline: pipeline.clone(),
            metrics: metrics.clone(),
        };
        let waker = {
            let runtimes = runtimes.clone();
            Arc::new(move || runtimes.iter().for_each(|rt| rt.wake()))
        };
        if let Some(pubsub) = &config.sources.pubsub {
            let source = Arc::new(PubSubSource {
                stage: stage(crate::sources::pubsub::SOURCE),
                config: pubsub.clone(),
            });
            loops.spawn(source.run(runtimes.clone(), work.clone()));
        }
        let leads = &config.sources.leads;
        let interval = leads.interval(config.store.kind);
        if leads.enabled {
            let source = store.clone().source(&stage, leads.batch_size.max(1));
            loops.spawn(poll(
                source,
                interval,
                waker.clone(),
                lead_wake,
                work.clone(),
            ));
        }
        store.clone().chores(
            Chores {
                fold_every: config.store.fold.then_some(config.store.fold_interval),
                outbox: outbox.clone(),
                pipeline: pipeline.clone(),
                wake: waker,
                interval,
                stop: work.clone(),
            },
            &loops,
        );
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

/// Polls the lead source every `interval`, or at once when `wake` is notified (a scoring run
/// finished), until `stop`.
async fn poll(
    source: Arc<dyn Source>,
    interval: Duration,
    connectors: Arc<dyn Fn() + Send + Sync>,
    wake: Arc<Notify>,
    stop: CancellationToken,
) {
    let handed: Arc<dyn Fn(usize) + Send + Sync> = Arc::new(move |added| {
        if added > 0 {
            connectors();
        }
    });
    while !stop.is_cancelled() {
        if let Err(e) = source.clone().poll(stop.clone(), handed.clone()).await {
            tracing::error!(error = %format!("{e:#}"), "the lead source failed; will try again");
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
