//! Prints the throughput figures of issue 2 (no assertions; figures vary with the machine):
//! 1. leads per second through router + template + durable enqueue;
//! 2. webhook deliveries per second to a loopback receiver;
//! 3. peak RSS of `oie run` holding 100,000 queued deliveries.
//!
//! `cargo bench --bench pipeline` (add `-- quick` for smaller runs).

mod common;

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oie::clock::now_ms;
use oie::config;
use oie::lead::Lead;
use oie::outbox::Outbox;
use oie::pipeline::{Pipeline, Work};
use oie::routing::Trigger;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "quick");
    let only = |name: &str| {
        !args.iter().any(|a| a.starts_with("only="))
            || args.iter().any(|a| *a == format!("only={name}"))
    };
    let scale = if quick { 10 } else { 1 };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let receiver = runtime.block_on(start_receiver(Duration::ZERO));
    if only("enqueue") {
        enqueue_rate(100_000 / scale, &receiver);
    }
    if only("deliver") {
        runtime.block_on(delivery_rate(20_000 / scale, &receiver));
    }
    if !only("rss") {
        return;
    }
    let slow = runtime.block_on(start_receiver(Duration::from_secs(5)));
    queued_rss(100_000 / scale, &slow);
}

fn config(dir: &std::path::Path, url: &str, extra: &str) -> std::path::PathBuf {
    let text = format!(
        r#"
[server]
listen = "127.0.0.1:0"
[sources.leads]
interval = "50ms"
batch_size = 1000
[[routes]]
name = "burning"
when = 'trigger.kind == "hot_lead" && lead.intentScore >= 80'
to = ["hook"]
[[routes]]
name = "hot"
when = 'trigger.kind == "hot_lead" && lead.company != "Competitor" && lead.pricingPageVisits > 0'
to = ["hook"]
[[routes]]
name = "sync"
when = 'trigger.kind == "sync" && lead.email != null'
to = ["hook"]
[connectors.hook]
kind = "webhook"
url = "{url}"
{extra}
"#
    );
    let path = dir.join("config.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn lead(i: usize) -> serde_json::Value {
    serde_json::json!({"visitorId": format!("v{i:07}"), "email": format!("p{i}@example.com"),
        "firstName": "Jane", "lastName": "Doe", "company": "Acme", "intentScore": 60 + (i % 40) as i64,
        "engagementLevel": if i % 40 >= 20 { "burning" } else { "hot" }, "pricingPageVisits": 2,
        "totalSessions": 3, "totalPageviews": 12, "changeSeq": i as i64 + 1})
}

/// Router + template + durable enqueue, in pages of 500 as the lead source does.
fn enqueue_rate(n: usize, receiver: &str) {
    let dir = tempfile::tempdir().unwrap();
    let loaded =
        config::load(&config(dir.path(), receiver, "")).unwrap_or_else(|p| panic!("{p:?}"));
    let outbox = Outbox::open(&dir.path().join("outbox.db")).unwrap();
    let pipeline = Pipeline {
        router: loaded.router,
        connectors: loaded.connectors,
    };
    let leads: Vec<Lead> = (0..n)
        .map(|i| Lead::from_json(lead(i).as_object().unwrap()))
        .collect();
    let start = Instant::now();
    let mut enqueued = 0;
    let (mut routing, mut writing) = (Duration::ZERO, Duration::ZERO);
    for page in leads.chunks(500) {
        let now = now_ms();
        let work: Vec<Work> = page
            .iter()
            .map(|l| Work {
                lead: l,
                triggers: vec![Trigger::hot_lead(l.level(), None, l.version(), now)],
                fires: HashMap::new(),
                crm: Vec::new(),
                snoozed: HashMap::new(),
                account: None,
            })
            .collect();
        let t = Instant::now();
        let out = pipeline.route_all(&work, now);
        routing += t.elapsed();
        let t = Instant::now();
        enqueued += outbox.hand_over(&out, now).unwrap().added;
        writing += t.elapsed();
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "  routing + rendering {:.2} s, durable enqueue {:.2} s",
        routing.as_secs_f64(),
        writing.as_secs_f64()
    );
    println!(
        "route + render + durable enqueue: {n} leads, {enqueued} deliveries in {secs:.2} s = {:.0} leads/s (target ≥ 20,000/s)",
        n as f64 / secs
    );
}

/// Webhook deliveries through the real dispatcher and recorder to a loopback receiver.
async fn delivery_rate(n: usize, receiver: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = config(dir.path(), receiver, "concurrency = 64");
    let secs = common::deliver_all(dir.path(), &path, &[], "hook", n, lead).await;
    println!(
        "webhook deliveries to loopback (concurrency 64): {n} in {secs:.2} s = {:.0} deliveries/s (target ≥ 5,000/s)",
        n as f64 / secs
    );
}

/// `oie run` with `n` hot leads handed over to a receiver that answers after 5 s.
fn queued_rss(n: usize, receiver: &str) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), receiver, "concurrency = 4\ntimeout = \"30s\"");
    let leads: String = (0..n).map(|i| format!("{}\n", lead(i))).collect();
    let file = dir.path().join("leads.jsonl");
    std::fs::write(&file, leads).unwrap();
    let oie = env!("CARGO_BIN_EXE_oie");
    let status = Command::new(oie)
        .args([
            "leads",
            "import",
            file.to_str().unwrap(),
            "--config",
            cfg.to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let mut child = Command::new(oie)
        .args(["run", "--config", cfg.to_str().unwrap()])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let outbox_path = dir.path().join("data/outbox.db");
    let mut queued = 0;
    while start.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(500));
        let Ok(o) = Outbox::open(&outbox_path) else {
            continue;
        };
        queued = o.depth().unwrap().iter().map(|d| d.count).sum::<i64>();
        // Every lead is hot and has an email: a hot_lead and a sync delivery each.
        if queued as usize >= 2 * n {
            break;
        }
    }
    let handover_secs = start.elapsed().as_secs_f64();
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .map(|l| l.split_whitespace().nth(1).unwrap_or("?").to_string())
            .unwrap_or_default()
    };
    let (hwm, rss) = (field("VmHWM:"), field("VmRSS:"));
    let _ = child.kill();
    let _ = child.wait();
    println!(
        "oie run with {queued} deliveries queued ({n} leads handed over in {handover_secs:.1} s): peak RSS {} MB, RSS now {} MB (target < 100 MB)",
        hwm.parse::<u64>().unwrap_or(0) / 1024,
        rss.parse::<u64>().unwrap_or(0) / 1024
    );
}

/// A loopback receiver answering 200 after `delay`.
async fn start_receiver(delay: Duration) -> String {
    use axum::routing::post;
    let app = axum::Router::new().route(
        "/hook",
        post(move || async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            "ok"
        }),
    );
    format!("{}/hook", oie_fakes::serve(app).await)
}
