//! `oie run`: wires store, outbox, sources, dispatcher and server together, and shuts them
//! down in order: stop taking work, let in-flight deliveries finish within the deadline,
//! record their outcomes, release the rest, exit.

use std::future::Future;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clock::now_ms;
use crate::config::Loaded;
use crate::dispatch::{self, ConnectorRuntime, Dispatcher};
use crate::ingest::{self, Ingest, Written};
use crate::metrics::Metrics;
use crate::outbox::Outbox;
use crate::pipeline::Pipeline;
use crate::server::{self, Health};
use crate::sources::leads::LeadsSource;
use crate::store::{LeadStore, SqliteStore};

/// The file that holds the bound address (useful with port 0).
pub const ADDR_FILE: &str = "server.addr";

/// Opens the lead store and the outbox under `data_dir`.
pub fn open(data_dir: &Path) -> anyhow::Result<(Arc<SqliteStore>, Arc<Outbox>)> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let store = Arc::new(SqliteStore::open(&data_dir.join("oie.db"))?);
    let outbox = Arc::new(Outbox::open(&data_dir.join("outbox.db"))?);
    Ok((store, outbox))
}

/// Runs until `shutdown` resolves, then stops gracefully.
pub async fn run(loaded: Loaded, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let Loaded {
        config,
        data_dir,
        router,
        connectors,
        ..
    } = loaded;
    let _lock = lock(&data_dir)?;
    let (store, outbox) = open(&data_dir)?;
    let recovered = outbox.recover_inflight()?;
    if recovered > 0 {
        tracing::info!(
            recovered,
            "deliveries in flight at the last stop are queued again"
        );
    }
    let metrics = Arc::new(Metrics::new());
    let listener = tokio::net::TcpListener::bind(&config.server.listen)
        .await
        .with_context(|| format!("listening on {}", config.server.listen))?;
    let addr = listener.local_addr()?;
    std::fs::write(data_dir.join(ADDR_FILE), addr.to_string())?;

    let ready = Arc::new(AtomicBool::new(false));
    let server_stop = CancellationToken::new();
    let health = Health {
        ready: ready.clone(),
        metrics: metrics.clone(),
        outbox: outbox.clone(),
    };
    // Events are written in batches; each write wakes scoring, each scoring run the source.
    let written = Written::default();
    let lead_wake = Arc::new(Notify::new());
    let (events, writer) = ingest::start_writer(
        store.clone(),
        config.server.max_queued_requests,
        written.clone(),
    );
    let ingest = Ingest {
        events,
        allowed_origins: Arc::new(config.server.allowed_origins.clone()),
        redirect_hosts: Arc::new(config.server.redirect_hosts.clone()),
        admin_token: config.server.admin_token.clone(),
        store: store.clone(),
        outbox: outbox.clone(),
    };
    let app = server::router(health).merge(ingest::router(ingest));
    let server = tokio::spawn(server::serve(
        listener,
        app,
        server_stop.clone().cancelled_owned(),
    ));
    let scoring_stop = CancellationToken::new();
    let scorer = tokio::spawn(score_after_writes(
        store.clone(),
        config.scoring.debounce,
        written,
        lead_wake.clone(),
        scoring_stop.clone(),
    ));

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
    if config.sources.leads.enabled {
        let source = Arc::new(LeadsSource {
            store: lead_store,
            outbox: outbox.clone(),
            pipeline,
            metrics: metrics.clone(),
            page: config.sources.leads.batch_size.max(1),
        });
        loops.spawn(poll_leads(
            source,
            config.sources.leads.interval,
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
    ready.store(true, Ordering::Relaxed);
    tracing::info!(%addr, connectors = runtimes.len(), routes = config.routes.len(), "oie is running");

    shutdown.await;
    tracing::info!("shutting down: no new events or work; writing accepted events, finishing deliveries in flight");
    ready.store(false, Ordering::Relaxed);
    // Stop accepting events, then write every accepted one (the server held the queue's sender).
    server_stop.cancel();
    let _ = server.await;
    let _ = writer.await;
    scoring_stop.cancel();
    let _ = scorer.await;
    work.cancel();
    loops.close();
    loops.wait().await;
    dispatcher.tasks.close();
    let deadline = config.engine.shutdown_timeout;
    if tokio::time::timeout(deadline, dispatcher.tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            ?deadline,
            "deliveries still in flight at the deadline are released for the next start"
        );
    }
    drop(dispatcher);
    // Every sender is gone once the loops ended, so the recorder drains and returns.
    let _ = tokio::time::timeout(Duration::from_secs(10), recorder).await;
    let released = outbox.recover_inflight()?;
    tracing::info!(released, "stopped");
    Ok(())
}

/// One daemon per data folder: two would both claim the same deliveries. The lock is released
/// by the OS when the process ends, however it ends.
fn lock(data_dir: &Path) -> anyhow::Result<std::fs::File> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let path = data_dir.join("oie.lock");
    let file =
        std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "another `oie run` is using {}; run one daemon per data_dir",
            data_dir.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("locking {}", path.display()))
        }
    }
}

/// Rescores (sql/sqlite, incremental) as soon as events are written, then at most once per
/// `debounce` (events written meanwhile wait for the next run) — except that a form submission
/// is scored at once — and wakes the lead source, so a level rise reaches the outbox within a
/// second of the event that caused it.
async fn score_after_writes(
    store: Arc<SqliteStore>,
    debounce: Duration,
    written: Written,
    lead_wake: Arc<Notify>,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = written.written.notified() => {}
            _ = written.urgent.notified() => {}
            _ = stop.cancelled() => return,
        }
        let s = store.clone();
        let scored = tokio::task::spawn_blocking(move || s.rescore(now_ms())).await;
        match scored {
            Ok(Ok(())) => lead_wake.notify_one(),
            Ok(Err(e)) => {
                tracing::error!(error = %e, "scoring failed; will try again after the next events")
            }
            Err(e) => tracing::error!(error = %e, "scoring task failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(debounce) => {}
            _ = written.urgent.notified() => {}
            _ = stop.cancelled() => return,
        }
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
