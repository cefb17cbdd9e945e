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

use super::{ADDR_FILE, METRICS_ADDR_FILE};
use crate::clock::now_ms;
use crate::config::Config;
use crate::erasure::Eraser;
use crate::ingest::{self, Ingest, Written};
use crate::metrics::Metrics;
use crate::outbox::Outbox;
use crate::server::{self, Health};
use crate::store::{Retention, SqliteStore};

pub struct Front {
    pub addr: std::net::SocketAddr,
    ready: Arc<AtomicBool>,
    server_stop: CancellationToken,
    servers: Vec<JoinHandle<std::io::Result<()>>>,
    ingest: Option<IngestTasks>,
}

/// The event writer and the scorer of embedded mode.
struct IngestTasks {
    writer: JoinHandle<()>,
    scoring_stop: CancellationToken,
    scorer: JoinHandle<()>,
}

/// What the front needs of the back: the lead source's wake-up (scoring rings it), the
/// pipeline's connectors, and the delivery loops' wake-up (after a hand-over of its own).
pub struct Wiring {
    pub lead_wake: Arc<Notify>,
    pub pipeline: Arc<crate::pipeline::Pipeline>,
    pub wake: Arc<dyn Fn() + Send + Sync>,
    pub store: Arc<dyn crate::store::LeadStore>,
}

impl Front {
    /// Binds the listener (writing the address to `<data_dir>/server.addr`) and starts serving;
    /// with an embedded `store`, also the ingest API, the event writer and scoring.
    pub async fn start(
        config: &Config,
        data_dir: &Path,
        store: Option<&Arc<SqliteStore>>,
        eraser: Option<Arc<Eraser>>,
        outbox: &Arc<Outbox>,
        metrics: &Arc<Metrics>,
        back: Wiring,
    ) -> anyhow::Result<Front> {
        let Wiring {
            lead_wake,
            pipeline,
            wake,
            store: lead_store,
        } = back;
        let server = &config.server;
        let listener = bind(&server.listen).await?;
        let addr = listener.local_addr()?;
        let ready = Arc::new(AtomicBool::new(false));
        let health = server::router(Health {
            ready: ready.clone(),
            metrics: metrics.clone(),
            outbox: outbox.clone(),
            data_dir: data_dir.to_path_buf(),
        });
        let server_stop = CancellationToken::new();
        let mut servers = Vec::new();
        // Metrics on their own address when asked, else beside the ingest API.
        let mut app = match &server.metrics_listen {
            Some(metrics_addr) => {
                let listener = bind(metrics_addr).await?;
                std::fs::write(
                    data_dir.join(METRICS_ADDR_FILE),
                    listener.local_addr()?.to_string(),
                )?;
                servers.push(tokio::spawn(server::serve(
                    listener,
                    health,
                    server.header_timeout,
                    server_stop.clone().cancelled_owned(),
                )));
                axum::Router::new()
            }
            None => health,
        };
        // The buttons of Slack alerts, in both modes.
        if let Some(secret) = &server.slack_signing_secret {
            app = app.merge(crate::slack::router(crate::slack::SlackActions {
                signing_secret: secret.clone(),
                snooze: server.slack_snooze,
                outbox: outbox.clone(),
                metrics: metrics.clone(),
                client: reqwest::Client::new(),
                wake: wake.clone(),
                pipeline: pipeline.clone(),
                store: lead_store.clone(),
            }));
        }
        // The operator's API, in both modes (403 until an admin token is set).
        let api = crate::api::Api {
            outbox: outbox.clone(),
            pipeline: pipeline.clone(),
            store: lead_store.clone(),
            token: server.admin_token.clone(),
            wake: wake.clone(),
        };
        app = app.merge(crate::api::router(api.clone()));
        app = app.merge(crate::console::router(crate::console::Console::new(api)));
        let mut ingest_tasks = None;
        if let Some(store) = store {
            // Events are written in batches; each write wakes scoring.
            let written = Written::default();
            let (events, writer) = ingest::start_writer(
                store.clone(),
                outbox.forgotten.clone(),
                server.max_queued_requests,
                server.max_queued_bytes,
                written.clone(),
                metrics,
            );
            let ingest = Ingest {
                events,
                allowed_origins: Arc::new(server.allowed_origins.clone()),
                redirects: Arc::new(ingest::Redirects::new(&server.redirect_hosts)),
                admin_token: server.admin_token.clone(),
                signing_secret: server.event_signing_secret.clone(),
                // Validation checked the proxies.
                clients: Arc::new(ingest::Clients::new(server.proxies().unwrap_or_default())),
                personalize_level: server.personalize_level,
                store: store.clone(),
                eraser: eraser.clone(),
                metrics: metrics.clone(),
            };
            app = app.merge(ingest::router(
                ingest,
                &server.rate_limits,
                server.request_timeout,
            ));
            let scoring_stop = CancellationToken::new();
            let scorer = tokio::spawn(score_after_writes(
                store.clone(),
                metrics.clone(),
                config.scoring.debounce,
                written,
                lead_wake,
                scoring_stop.clone(),
            ));
            if let Some(eraser) = eraser {
                tokio::spawn(answer_erasures(eraser, scoring_stop.clone()));
            }
            tokio::spawn(prune(
                store.clone(),
                retention(&config.store),
                config.store.prune_interval,
                metrics.clone(),
                scoring_stop.clone(),
            ));
            ingest_tasks = Some(IngestTasks {
                writer,
                scoring_stop,
                scorer,
            });
        }
        servers.push(tokio::spawn(server::serve(
            listener,
            app,
            server.header_timeout,
            server_stop.clone().cancelled_owned(),
        )));
        // Written last: whoever waits for it finds every listener bound.
        std::fs::write(data_dir.join(ADDR_FILE), addr.to_string())?;
        ready.store(true, Ordering::Relaxed);
        Ok(Front {
            addr,
            ready,
            server_stop,
            servers,
            ingest: ingest_tasks,
        })
    }

    /// Stops accepting events, then writes every accepted one (the server held the queue's
    /// sender), then stops scoring.
    pub async fn stop(self) {
        self.ready.store(false, Ordering::Relaxed);
        self.server_stop.cancel();
        for server in self.servers {
            let _ = server.await;
        }
        if let Some(t) = self.ingest {
            let _ = t.writer.await;
            t.scoring_stop.cancel();
            let _ = t.scorer.await;
        }
    }
}

fn retention(store: &crate::config::StoreConfig) -> Retention {
    Retention {
        events: store.events_retention,
        identities: store.identity_retention,
        clicks: store.clicks_retention,
    }
}

/// Prunes what retention no longer keeps, once a minute after start and then every
/// `interval`, yielding the connection between batches.
async fn prune(
    store: Arc<SqliteStore>,
    retention: Retention,
    interval: Duration,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) {
    let mut wait = Duration::from_secs(60).min(interval);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.cancelled() => return,
        }
        wait = interval;
        let s = store.clone();
        let pruned = tokio::task::spawn_blocking(move || {
            s.prune(&retention, now_ms(), || {
                std::thread::sleep(Duration::from_millis(5))
            })
        })
        .await;
        match pruned {
            Ok(Ok(pruned)) => {
                for (table, n) in pruned.iter().filter(|(_, n)| *n > 0) {
                    metrics.pruned.with_label_values(&[table]).inc_by(*n as u64);
                    tracing::info!(table, rows = n, "pruned rows past their retention");
                }
            }
            Ok(Err(e)) => tracing::error!(error = %e, "pruning failed; trying again later"),
            Err(e) => tracing::error!(error = %e, "pruning task failed"),
        }
    }
}

/// Erases the visitors `oie visitors erase` asked for while this daemon runs (it cannot reach
/// the ingest queue or the dispatch from its own process).
async fn answer_erasures(eraser: Arc<Eraser>, stop: CancellationToken) {
    loop {
        let e = eraser.clone();
        let done = tokio::task::spawn_blocking(move || -> anyhow::Result<usize> {
            let requests = e.outbox.erasure_requests()?;
            for (request, visitor) in &requests {
                let report = match e.erase(visitor, now_ms()) {
                    Ok(r) => r,
                    Err(err) => serde_json::json!({"error": err.to_string()}),
                };
                e.outbox.answer_erasure(request, &report.to_string())?;
            }
            Ok(requests.len())
        })
        .await;
        if let Ok(Err(e)) = done {
            tracing::error!(error = %e, "cannot answer erasure requests; trying again");
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = stop.cancelled() => return,
        }
    }
}

async fn bind(addr: &str) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("listening on {addr}"))
}

/// Rescores (sql/sqlite, incremental) as soon as events are written, then at most once per
/// `debounce` (events written meanwhile wait for the next run) — except that a form submission
/// is scored at once — and wakes the lead source, so a level rise reaches the outbox within a
/// second of the event that caused it.
async fn score_after_writes(
    store: Arc<SqliteStore>,
    metrics: Arc<Metrics>,
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
        let started = std::time::Instant::now();
        let scored = tokio::task::spawn_blocking(move || s.rescore(now_ms())).await;
        metrics
            .scoring_seconds
            .observe(started.elapsed().as_secs_f64());
        let result = match scored {
            Ok(Ok(leads)) => {
                metrics.scoring_leads.observe(leads as f64);
                lead_wake.notify_one();
                "ok"
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "scoring failed; will try again after the next events");
                "error"
            }
            Err(e) => {
                tracing::error!(error = %e, "scoring task failed");
                "error"
            }
        };
        metrics.scoring_runs.with_label_values(&[result]).inc();
        tokio::select! {
            _ = tokio::time::sleep(debounce) => {}
            _ = written.urgent.notified() => {}
            _ = stop.cancelled() => return,
        }
    }
}
