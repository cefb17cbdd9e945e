//! A webhook receiver for side-by-side benchmarks (`bench/vs-alertmanager.sh`): answers every
//! `POST /hook` with 200 `ok` and counts them. It prints `listening ADDR` once bound and, when
//! the `--expect`-th request arrives, `done FIRST_MS NTH_MS` (ms since the epoch), so one
//! receiver times any sender the same way.
//!
//! Usage: `oie-bench-receiver --expect N [--addr 127.0.0.1:0]`

use std::io::Write;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::routing::post;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

struct Count {
    expect: usize,
    seen: AtomicUsize,
    first: AtomicI64,
}

impl Count {
    fn hit(&self) {
        let now = now_ms();
        let n = self.seen.fetch_add(1, Ordering::SeqCst) + 1;
        if n == 1 {
            self.first.store(now, Ordering::SeqCst);
        }
        if n == self.expect {
            let first = self.first.load(Ordering::SeqCst);
            println!("done {first} {now}");
            let _ = std::io::stdout().flush();
        }
    }
}

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let expect: usize = arg("--expect")
        .and_then(|n| n.parse().ok())
        .expect("--expect N");
    let addr = arg("--addr").unwrap_or_else(|| "127.0.0.1:0".into());
    let count = Arc::new(Count {
        expect,
        seen: AtomicUsize::new(0),
        first: AtomicI64::new(0),
    });
    let app = axum::Router::new().route(
        "/hook",
        post(move || {
            let count = count.clone();
            async move {
                count.hit();
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .expect("bind the receiver");
    println!("listening {}", listener.local_addr().expect("bound"));
    let _ = std::io::stdout().flush();
    axum::serve(listener, app).await.expect("serve");
}
