//! Prints Pub/Sub messages routed per second end to end: a backlog published to the emulator
//! first (its REST publish is the slow part, so it is timed apart), then `oie run` receives it
//! (StreamingPull), routes, commits to the outbox, acks, and delivers to a local webhook
//! receiver. Needs the emulator: run `bench/pubsub.sh`.

use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::json;

#[path = "common/receiver.rs"]
mod receiver;

fn main() {
    let (Ok(grpc), Ok(rest)) = (
        std::env::var("OIE_PUBSUB_EMULATOR"),
        std::env::var("OIE_PUBSUB_REST"),
    ) else {
        println!("pubsub bench skipped: run bench/pubsub.sh (it starts the Pub/Sub emulator)");
        return;
    };
    let n: usize = if std::env::args().any(|a| a == "quick") {
        2_000
    } else {
        20_000
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(run(&grpc, &rest, n));
}

async fn run(grpc: &str, rest: &str, n: usize) {
    let http = reqwest::Client::new();
    let name = format!("bench-{}", std::process::id());
    let base = format!("{rest}/v1/projects/test-proj");
    http.put(format!("{base}/topics/{name}"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    http.put(format!("{base}/subscriptions/{name}"))
        .json(&json!({"name": format!("projects/test-proj/subscriptions/{name}"),
                      "topic": format!("projects/test-proj/topics/{name}"), "ackDeadlineSeconds": 60}))
        .send()
        .await
        .unwrap();

    let (hook, received) = receiver::counting_hook().await;

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.toml"),
        format!(
            r#"
[engine]
log_level = "warn"
[server]
listen = "127.0.0.1:0"
[sources.leads]
enabled = false
[sources.pubsub]
subscription = "projects/test-proj/subscriptions/{name}"
endpoint = "{grpc}"
[[routes]]
name = "hot"
when = 'trigger.kind == "hot_lead"'
to = ["hook"]
[connectors.hook]
kind = "webhook"
url = "{hook}"
concurrency = 64
"#
        ),
    )
    .unwrap();
    let publishing = Instant::now();
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        let messages: Vec<_> = chunk
            .iter()
            .map(|i| {
                let body = json!({"version": 1, "kind": "hot_lead", "id": format!("b{i}"),
                    "lead": {"visitorId": format!("b{i:06}"), "email": format!("b{i}@acme.example"),
                             "intentScore": 70, "engagementLevel": "hot"}});
                json!({"data": base64::engine::general_purpose::STANDARD.encode(body.to_string())})
            })
            .collect();
        http.post(format!("{base}/topics/{name}:publish"))
            .json(&json!({ "messages": messages }))
            .send()
            .await
            .unwrap();
    }
    let published = publishing.elapsed();
    let start = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_oie"))
        .args(["run", "--config"])
        .arg(dir.path().join("config.toml"))
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let addr_file = dir.path().join("data/server.addr");
    while !addr_file.exists() {
        std::thread::sleep(Duration::from_millis(20));
    }

    let deadline = Instant::now() + Duration::from_secs(300);
    while received.load(Ordering::Relaxed) < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let secs = start.elapsed().as_secs_f64();
    let got = received.load(Ordering::Relaxed);
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    println!(
        "Pub/Sub → oie → webhook, end to end from a backlog: {got} of {n} messages in {secs:.2} s (from `oie run` starting) = {:.0} messages/s; publishing them to the emulator took {:.2} s beforehand",
        got as f64 / secs,
        published.as_secs_f64()
    );
}
