//! `oie run`: wires store, outbox, sources, dispatcher and server together, and shuts them
//! down in order: stop taking events and work, write every accepted event, let in-flight
//! deliveries finish within the deadline, record their outcomes, release the rest, exit.
//!
//! - `front`: the HTTP side — ingest API, health and metrics, the event writer, scoring.
//! - `back`: the delivery side — lead source, per-connector dispatch loops, recorder, pruning.

mod back;
mod front;

use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::sync::Notify;

use crate::config::Loaded;
use crate::metrics::Metrics;
use crate::outbox::Outbox;
use crate::store::SqliteStore;

/// The file that holds the bound address (useful with port 0).
pub const ADDR_FILE: &str = "server.addr";
/// Where the metrics listener is, when `[server] metrics_listen` asks for one.
pub const METRICS_ADDR_FILE: &str = "metrics.addr";

/// Opens the lead store and the outbox under `data_dir` (created if missing).
pub fn open(data_dir: &Path) -> anyhow::Result<(Arc<SqliteStore>, Arc<Outbox>)> {
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
    for handle in connectors.values() {
        handle
            .connector
            .prepare()
            .map_err(|e| anyhow::anyhow!("connectors.{}: {e}", handle.name))?;
    }
    let store = crate::store::open(&config, &data_dir).await?;
    let outbox = Arc::new(Outbox::open(&data_dir.join("outbox.db"))?);
    let recovered = outbox.recover_inflight()?;
    if recovered > 0 {
        tracing::info!(
            recovered,
            "deliveries in flight at the last stop are queued again"
        );
    }
    let metrics = Arc::new(Metrics::new());
    // A scoring run wakes the lead source, so a level rise is routed at once.
    let lead_wake = Arc::new(Notify::new());
    let mut databases = vec![crate::sqlite::Checkpointer::open(
        &data_dir.join("outbox.db"),
    )?];
    let embedded = store.clone().embedded();
    if embedded.is_some() {
        databases.push(crate::sqlite::Checkpointer::open(&data_dir.join("oie.db"))?);
    }
    let back = back::Back::start(
        &config,
        databases,
        router,
        connectors,
        &store,
        &outbox,
        &metrics,
        lead_wake.clone(),
    );
    let eraser = embedded.as_ref().map(|store| {
        Arc::new(crate::erasure::Eraser {
            store: store.clone(),
            outbox: outbox.clone(),
            pipeline: back.pipeline.clone(),
            wake: back.waker(),
        })
    });
    let front = front::Front::start(
        &config,
        &data_dir,
        embedded.as_ref(),
        eraser,
        &outbox,
        &metrics,
        front::Wiring {
            lead_wake,
            pipeline: back.pipeline.clone(),
            wake: back.waker(),
            store: store.clone(),
        },
    )
    .await?;
    tracing::info!(addr = %front.addr, connectors = back.connectors(), routes = config.routes.len(), "oie is running");

    shutdown.await;
    tracing::info!("shutting down: no new events or work; writing accepted events, finishing deliveries in flight");
    front.stop().await;
    back.stop(config.engine.shutdown_timeout).await;
    let released = outbox.recover_inflight()?;
    tracing::info!(released, "stopped");
    Ok(())
}

/// Whether an `oie run` holds the lock of `data_dir`.
pub fn running(data_dir: &Path) -> bool {
    let Ok(file) = std::fs::File::open(data_dir.join("oie.lock")) else {
        return false;
    };
    matches!(file.try_lock(), Err(std::fs::TryLockError::WouldBlock))
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
