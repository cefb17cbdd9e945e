//! The HTTP side of the daemon: the ingest API and health/metrics on one listener, the event
//! writer behind `/track`, and scoring after writes. In cloud mode (no embedded store) only
//! health and metrics are served: the Worker ingests and BigQuery scores.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::ADDR_FILE;
use crate::clock::now_ms;
use crate::config::Config;
use crate::ingest::{self, Ingest, Written};
use crate::metrics::Metrics;
use crate::outbox::Outbox;
use crate::server::{self, Health};
use crate::store::SqliteStore;

pub struct Front {
    pub addr: std::net::SocketAddr,
    ready: Arc<AtomicBool>,
    server_stop: CancellationToken,
    server: JoinHandle<std::io::Result<()>>,
    ingest: Option<IngestTasks>,
}

/// The event writer and the scorer of embedded mode.
struct IngestTasks {
    writer: JoinHandle<()>,
    scoring_stop: CancellationToken,
    scorer: JoinHandle<()>,
}

impl Front {
    /// Binds the listener (writing the address to `<data_dir>/server.addr`) and starts serving;
    /// with an embedded `store`, also the ingest API, the event writer and scoring.
    pub async fn start(
        config: &Config,
        data_dir: &Path,
        store: Option<&Arc<SqliteStore>>,
        outbox: &Arc<Outbox>,
        metrics: &Arc<Metrics>,
        lead_wake: Arc<Notify>,
    ) -> anyhow::Result<Front> {
        let listener = tokio::net::TcpListener::bind(&config.server.listen)
            .await
            .with_context(|| format!("listening on {}", config.server.listen))?;
        let addr = listener.local_addr()?;
        std::fs::write(data_dir.join(ADDR_FILE), addr.to_string())?;
        let ready = Arc::new(AtomicBool::new(false));
        let health = Health {
            ready: ready.clone(),
            metrics: metrics.clone(),
            outbox: outbox.clone(),
        };
        let mut app = server::router(health);
        let mut ingest_tasks = None;
        if let Some(store) = store {
            // Events are written in batches; each write wakes scoring.
            let written = Written::default();
            let (events, writer) = ingest::start_writer(
                store.clone(),
                config.server.max_queued_requests,
                written.clone(),
            );
            let ingest = Ingest {
                events,
                allowed_origins: Arc::new(config.server.allowed_origins.clone()),
                redirects: Arc::new(ingest::Redirects::new(&config.server.redirect_hosts)),
                admin_token: config.server.admin_token.clone(),
                store: store.clone(),
                outbox: outbox.clone(),
            };
            app = app.merge(ingest::router(ingest));
            let scoring_stop = CancellationToken::new();
            let scorer = tokio::spawn(score_after_writes(
                store.clone(),
                config.scoring.debounce,
                written,
                lead_wake,
                scoring_stop.clone(),
            ));
            ingest_tasks = Some(IngestTasks {
                writer,
                scoring_stop,
                scorer,
            });
        }
        let server_stop = CancellationToken::new();
        let server = tokio::spawn(server::serve(
            listener,
            app,
            server_stop.clone().cancelled_owned(),
        ));
        ready.store(true, Ordering::Relaxed);
        Ok(Front {
            addr,
            ready,
            server_stop,
            server,
            ingest: ingest_tasks,
        })
    }

    /// Stops accepting events, then writes every accepted one (the server held the queue's
    /// sender), then stops scoring.
    pub async fn stop(self) {
        self.ready.store(false, Ordering::Relaxed);
        self.server_stop.cancel();
        let _ = self.server.await;
        if let Some(t) = self.ingest {
            let _ = t.writer.await;
            t.scoring_stop.cancel();
            let _ = t.scorer.await;
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
