//! Local fakes of vendor APIs, served on 127.0.0.1 for tests and benchmarks.
//!
//! Each fake keeps what it was sent (records, calls, rejections) so tests can count API calls
//! and check that nothing was created twice, and reproduces the vendor's limits and error bodies
//! as `VENDORS.md` states them.

// Handlers answer early with a whole `Response`; its size does not matter in a test fake.
#![allow(clippy::result_large_err)]

pub mod cloudflare;
pub mod google;
pub mod hubspot;
pub mod reference;
pub mod salesforce;

/// Starts `app` on an ephemeral port; returns `http://127.0.0.1:PORT` (the fakes, and the
/// tests' and benchmarks' own small servers).
pub async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}
