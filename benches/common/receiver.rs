//! A webhook receiver on 127.0.0.1 that answers `ok` and counts what it received, for the
//! end-to-end benchmarks (included with `#[path]` by those that use it).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::routing::post;

/// Starts the receiver; returns its `/hook` URL and the count of requests received.
pub async fn counting_hook() -> (String, Arc<AtomicUsize>) {
    let received = Arc::new(AtomicUsize::new(0));
    let counter = received.clone();
    let app = axum::Router::new().route(
        "/hook",
        post(move || {
            let c = counter.clone();
            async move {
                c.fetch_add(1, Ordering::Relaxed);
                "ok"
            }
        }),
    );
    (format!("{}/hook", oie_fakes::serve(app).await), received)
}
