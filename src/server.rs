//! `GET /healthz`, `/readyz` and `/metrics`.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::metrics::Metrics;
use crate::outbox::Outbox;

#[derive(Clone)]
pub struct Health {
    pub ready: Arc<AtomicBool>,
    pub metrics: Arc<Metrics>,
    pub outbox: Arc<Outbox>,
    /// Where the databases are, for their sizes.
    pub data_dir: std::path::PathBuf,
}

pub fn router(health: Health) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(health)
}

async fn readyz(State(h): State<Health>) -> impl IntoResponse {
    if h.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}

async fn metrics(State(h): State<Health>) -> impl IntoResponse {
    let outbox = h.outbox.clone();
    if let Ok(Ok((depth, backup))) = tokio::task::spawn_blocking(move || {
        Ok::<_, anyhow::Error>((outbox.depth()?, outbox.last_backup()?))
    })
    .await
    {
        h.metrics.set_depth(&depth);
        if let Some((at_ms, seconds)) = backup {
            h.metrics.backup_time.set(at_ms / 1000);
            h.metrics.backup_seconds.set(seconds);
        }
    }
    for (database, file) in [("oie", "oie.db"), ("outbox", "outbox.db")] {
        for (kind, suffix) in [("db", ""), ("wal", "-wal")] {
            let path = h.data_dir.join(format!("{file}{suffix}"));
            if let Ok(meta) = std::fs::metadata(path) {
                h.metrics
                    .store_bytes
                    .with_label_values(&[database, kind])
                    .set(meta.len() as i64);
            }
        }
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        h.metrics.render(),
    )
}

/// Request heads (request line and headers) larger than this are refused: a user agent of a few
/// hundred kilobytes still fits (and is cut to 512 characters when stored), a flood of headers
/// does not.
const MAX_HEAD: usize = 512 * 1024;

/// Serves `app` until `shutdown` resolves, then lets requests in progress finish. Handlers see
/// the client address (`ConnectInfo`). A client that has not sent its headers within
/// `header_timeout` is disconnected, so slow clients cannot hold connections open.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    header_timeout: std::time::Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper::server::conn::http1;
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tower::ServiceExt;

    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut request| {
            request
                .extensions_mut()
                .insert(axum::extract::ConnectInfo(peer));
            app.clone().oneshot(request)
        });
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(header_timeout)
            .max_buf_size(MAX_HEAD)
            .serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _ = connection.await;
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
