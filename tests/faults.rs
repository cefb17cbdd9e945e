//! Black-box: `oie run` against the webhook faults delivery exists for — a receiver failing two
//! requests in three, an outage ending in a throttle, a destination that is not there — with
//! the default retry settings (backoff from 1 s) unless a test says otherwise.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{free_addr, hot_lead, wait_until, Behaviour, Receiver, Workspace, QUICK};

fn config(url: &str, extra: &str) -> String {
    format!(
        r#"{QUICK}batch_size = 1000
[[routes]]
name = "hot"
when = 'trigger.kind == "hot_lead"'
to = ["hook"]

[connectors.hook]
kind = "webhook"
url = "{url}"
timeout = "2s"
{extra}
"#
    )
}

fn leads(n: usize) -> Vec<serde_json::Value> {
    (0..n).map(|i| hot_lead(&format!("lead-{i:03}"))).collect()
}

/// Every lead arrived exactly once (accepted once, one webhook-id per lead).
fn each_once(rx: &Receiver, n: usize) {
    let accepted = rx.accepted("hook");
    let ids: std::collections::HashSet<String> = accepted.iter().map(|h| h.id()).collect();
    let visitors: std::collections::HashSet<String> =
        accepted.iter().map(|h| h.visitor()).collect();
    assert_eq!(accepted.len(), n, "accepted once each");
    assert_eq!((ids.len(), visitors.len()), (n, n));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_receiver_failing_two_requests_in_three_gets_every_lead_once() {
    // 503 to the first two attempts of every message, as the issue's receiver.
    let rx = Receiver::start(&[("hook", Behaviour::FailEachThenOk(503, 2))]).await;
    let ws = Workspace::new(&config(&rx.url("hook"), ""));
    ws.import(&leads(200));
    let start = Instant::now();
    let daemon = ws.start();
    wait_until("200 leads delivered", 20, || {
        rx.accepted("hook").len() == 200
    })
    .await;
    eprintln!("503 twice per message: 200 leads in {:?}", start.elapsed());
    each_once(&rx, 200);
    assert_eq!(
        rx.hits("hook").len(),
        600,
        "three requests per lead, no more"
    );
    assert!(ws.dead_letters().is_empty());
    let (_, metrics) = daemon.get("/metrics").await;
    assert!(
        metrics.contains(r#"oie_circuit_state{connector="hook"} 0"#),
        "throttles say the endpoint is alive: {metrics}"
    );
    assert!(daemon.terminate().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_receiver_failing_two_requests_in_three_with_500s_gets_every_lead_once() {
    // Server errors count against the endpoint: the breaker opens, probes, and lets it through.
    let rx = Receiver::start(&[("hook", Behaviour::FailEachThenOk(500, 2))]).await;
    let ws = Workspace::new(&config(&rx.url("hook"), ""));
    ws.import(&leads(50));
    let start = Instant::now();
    let daemon = ws.start();
    wait_until("50 leads delivered", 60, || rx.accepted("hook").len() == 50).await;
    eprintln!("500 twice per message: 50 leads in {:?}", start.elapsed());
    each_once(&rx, 50);
    assert_eq!(rx.hits("hook").len(), 150, "three requests per lead");
    assert!(ws.dead_letters().is_empty());
    assert!(daemon.terminate().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_outage_ending_in_a_throttle_delivers_everything_soon_after() {
    // Nothing listens for 3 s; then the receiver answers one 429 Retry-After: 1, then 200s.
    let addr = free_addr();
    let ws = Workspace::new(&config(&format!("http://{addr}/hook"), ""));
    ws.import(&leads(50));
    let daemon = ws.start();
    wait_until("the breaker open", 10, || {
        ws.connector_status("hook")["state"] == "open"
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rx = Receiver::start_at(&addr, &[("hook", Behaviour::ThrottleOnce(1))]).await;
    let up = Instant::now();
    wait_until("50 leads delivered", 20, || rx.accepted("hook").len() == 50).await;
    let after = up.elapsed();
    eprintln!("delivered {after:?} after the receiver came up");
    // The cool-down doubles from 1 s: the next probe comes within 8 s, then Retry-After: 1.
    assert!(after < Duration::from_secs(12), "{after:?}");
    each_once(&rx, 50);
    let hits = rx.hits("hook");
    assert_eq!(hits.len(), 51, "one throttled probe, then each lead once");
    assert!(
        hits[1].at - hits[0].at >= Duration::from_millis(950),
        "the connector waited out the Retry-After"
    );
    assert!(ws.dead_letters().is_empty(), "nothing dead-lettered");
    assert_eq!(ws.connector_status("hook")["state"], "ok");
    assert!(daemon.terminate().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_webhook_404_parks_the_connector_until_it_is_resumed() {
    let fixed = Arc::new(AtomicBool::new(false));
    let rx = Receiver::start(&[("hook", Behaviour::StatusUntil(404, fixed.clone()))]).await;
    // Eight in flight at a time, so the first 404s park the connector before every lead is sent.
    let ws = Workspace::new(&config(&rx.url("hook"), "concurrency = 8"));
    ws.import(&leads(20));
    let daemon = ws.start();
    // Parked after the first answers; probes after 1, 2, 4 s. Wait until the next is far off.
    wait_until("a probe schedule 8 s apart", 30, || {
        let s = ws.connector_status("hook");
        s["state"] == "parked" && s["nextTry"].as_i64().unwrap_or(0) - oie::clock::now_ms() > 5_000
    })
    .await;
    let status = ws.connector_status("hook");
    assert_eq!(status["reason"], "not_found", "{status}");
    assert_eq!(status["queued"], 20, "{status}");
    assert!(
        status["detail"].as_str().unwrap().contains("HTTP 404"),
        "{status}"
    );
    assert!(
        ws.dead_letters().is_empty(),
        "the queue is kept, not dead-lettered"
    );
    let probes = rx.hits("hook").len();
    assert!(
        probes <= 8 + 4,
        "in-flight requests plus a few probes: {probes}"
    );
    let table = ws.oie(&["connectors", "status"]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.contains("hook\twebhook\tparked\t20\t"), "{table}");

    fixed.store(true, Ordering::SeqCst);
    let out = ws.oie(&["connectors", "resume", "hook"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("asked oie to probe `hook` now (it is parked: not_found)"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let asked = Instant::now();
    wait_until("20 leads delivered", 10, || rx.accepted("hook").len() == 20).await;
    assert!(
        asked.elapsed() < Duration::from_secs(3),
        "{:?}",
        asked.elapsed()
    );
    each_once(&rx, 20);
    wait_until("ok again", 5, || {
        ws.connector_status("hook")["state"] == "ok"
    })
    .await;

    let unknown = ws.oie(&["connectors", "resume", "nope"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no connector `nope`"));
    assert!(daemon.terminate().success());
    let stopped = ws.oie(&["connectors", "resume", "hook"]);
    assert!(!stopped.status.success());
    assert!(String::from_utf8_lossy(&stopped.stderr).contains("no `oie run` is using"));
}
