//! A proxy in front of the BigQuery emulator that holds each request for a set time before
//! passing it on: a real BigQuery query takes hundreds of milliseconds where the emulator
//! answers in a few, so what `oie` asks one after another only shows through it. (Included with
//! `#[path]` by the benchmarks that use it.)

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::{to_bytes, Body};
use axum::extract::Request;
use axum::http::header::CONTENT_TYPE;
use axum::response::Response;

pub struct LagProxy {
    /// The proxy's address, to use as the store's `endpoint`.
    pub base: String,
    /// How long each request waits before going on (0 at first).
    pub lag_ms: Arc<AtomicU64>,
    /// Requests passed on so far.
    pub requests: Arc<AtomicUsize>,
}

pub async fn start(upstream: &str) -> LagProxy {
    let lag_ms = Arc::new(AtomicU64::new(0));
    let requests = Arc::new(AtomicUsize::new(0));
    let (lag, count, upstream) = (lag_ms.clone(), requests.clone(), upstream.to_string());
    let http = reqwest::Client::new();
    let app = axum::Router::new().fallback(move |req: Request| {
        let (lag, count, upstream, http) =
            (lag.clone(), count.clone(), upstream.clone(), http.clone());
        async move {
            tokio::time::sleep(Duration::from_millis(lag.load(Ordering::Relaxed))).await;
            count.fetch_add(1, Ordering::Relaxed);
            let (parts, body) = req.into_parts();
            let body = to_bytes(body, usize::MAX).await.unwrap();
            let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
            let mut forward = http
                .request(parts.method, format!("{upstream}{path}"))
                .body(body);
            if let Some(ct) = parts.headers.get(CONTENT_TYPE) {
                forward = forward.header(CONTENT_TYPE, ct);
            }
            let answer = forward.send().await.unwrap();
            let mut response = Response::builder().status(answer.status());
            if let Some(ct) = answer.headers().get(CONTENT_TYPE) {
                response = response.header(CONTENT_TYPE, ct);
            }
            response
                .body(Body::from(answer.bytes().await.unwrap()))
                .unwrap()
        }
    });
    LagProxy {
        base: oie_fakes::serve(app).await,
        lag_ms,
        requests,
    }
}
