//! Prints cloud mode's throughput on the BigQuery emulator: `n` changed profiles (one scoring
//! run's worth: same `updatedAt`) and `n / 10` hot-lead alerts loaded into the emulator, then
//! `oie run` on the BigQuery store pages through them, delivers the alerts to a webhook receiver
//! and the profiles to the HubSpot fake, and appends every CRM outcome to `crm_sync_log`. Then
//! the console's pages (a lead's, and Now) with every BigQuery request held 300 ms, as a real
//! query takes: against the same reads made one after another.
//! Needs the emulator: run `bench/bigquery.sh`.

use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use oie::clock::now_ms;
use oie::routing::trigger_rfc3339 as rfc3339;
use oie_fakes::hubspot::{self, HubSpotFake};
use serde_json::{json, Value};

#[path = "common/lag_proxy.rs"]
mod lag_proxy;
#[path = "common/receiver.rs"]
mod receiver;

/// What a BigQuery request takes in the lead page's measure.
const LAG_MS: u64 = 300;
const ADMIN_TOKEN: &str = "bench-admin-token";

fn main() {
    let Ok(endpoint) = std::env::var("OIE_BQ_EMULATOR") else {
        println!("bigquery bench skipped: run bench/bigquery.sh (it starts the BigQuery emulator)");
        return;
    };
    let n: usize = if std::env::args().any(|a| a == "quick") {
        1_000
    } else {
        5_000
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(run(&endpoint, n));
}

async fn insert_all(http: &reqwest::Client, base: &str, table: &str, rows: Vec<Value>) {
    for chunk in rows.chunks(500) {
        let rows: Vec<Value> = chunk.iter().map(|r| json!({"json": r})).collect();
        let answer: Value = http
            .post(format!("{base}/tables/{table}/insertAll"))
            .json(&json!({ "rows": rows }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(
            answer["insertErrors"]
                .as_array()
                .is_none_or(|e| e.is_empty()),
            "{answer}"
        );
    }
}

async fn count(http: &reqwest::Client, endpoint: &str, sql: String) -> usize {
    let answer: Value = http
        .post(format!("{endpoint}/bigquery/v2/projects/test-proj/queries"))
        .json(&json!({"query": sql, "useLegacySql": false}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["rows"][0]["f"][0]["v"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

async fn run(endpoint: &str, n: usize) {
    let http = reqwest::Client::new();
    let dataset = format!("bench_{}", std::process::id());
    let crm = HubSpotFake::start().await;
    let (hook, received) = receiver::counting_hook().await;
    // The daemon reaches the emulator through it; it holds nothing until the lead page's measure.
    let proxy = lag_proxy::start(endpoint).await;

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[engine]
log_level = "warn"
[server]
listen = "127.0.0.1:0"
admin_token = "${{OIE_BENCH_ADMIN_TOKEN}}"
[store]
kind = "bigquery"
project = "test-proj"
dataset = "{dataset}"
endpoint = "{}"
fold = false
[sources.leads]
interval = "200ms"
[[routes]]
name = "hot"
when = 'trigger.kind == "hot_lead"'
to = ["hook"]
[[routes]]
name = "crm"
when = 'trigger.kind == "sync"'
to = ["crm"]
[connectors.hook]
kind = "webhook"
url = "{hook}"
concurrency = 64
[connectors.crm]
kind = "hubspot"
base_url = "{}"
token = "${{OIE_BENCH_HUBSPOT_TOKEN}}"
batch_wait = "0s"
"#,
            proxy.base, crm.base
        ),
    )
    .unwrap();
    let applied = Command::new(env!("CARGO_BIN_EXE_oie"))
        .env("OIE_BENCH_HUBSPOT_TOKEN", hubspot::TOKEN)
        .env("OIE_BENCH_ADMIN_TOKEN", ADMIN_TOKEN)
        .args(["bigquery", "apply", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(applied.status.success(), "{applied:?}");

    let now = now_ms();
    let base = format!("{endpoint}/bigquery/v2/projects/test-proj/datasets/{dataset}");
    let profiles: Vec<Value> = (0..n)
        .map(|i| {
            json!({"visitorId": format!("b{i:06}"), "email": format!("b{i}@acme.example"),
                   "intentScore": 50, "engagementLevel": "warm", "totalSessions": 1, "totalPageviews": 3,
                   "totalActiveSeconds": 60, "pricingPageVisits": 1, "caseStudyViews": 0,
                   "productPageViews": 1, "formSubmissions": 0, "videosCompleted": 0,
                   "maxScrollDepth": 50, "scoredAt": now, "updatedAt": rfc3339(now)})
        })
        .collect();
    let alerts: Vec<Value> = (0..n / 10)
        .map(|i| {
            json!({"alertId": format!("b{i:06}:{now}"), "visitorId": format!("b{i:06}"),
                   "newLevel": "hot", "intentScore": 65, "levelChangedAt": now,
                   "alertedAt": now, "alertTime": rfc3339(now)})
        })
        .collect();
    let loading = Instant::now();
    insert_all(&http, &base, "lead_profiles", profiles).await;
    insert_all(&http, &base, "hot_lead_alerts", alerts).await;
    let loaded = loading.elapsed();

    let start = Instant::now();
    let child = oie_run(&config);
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut hot_done = None;
    while crm.contacts().len() < n && Instant::now() < deadline {
        if hot_done.is_none() && received.load(Ordering::Relaxed) >= n / 10 {
            hot_done = Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let delivered = start.elapsed();
    let hot_done = hot_done.unwrap_or(delivered);
    let logged_sql = format!("SELECT COUNT(*) FROM `{dataset}.crm_sync_log`");
    while count(&http, endpoint, logged_sql.clone()).await < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let logged = start.elapsed();
    stop(child);
    let contacts = crm.contacts().len();
    let logged_rows = count(&http, endpoint, logged_sql).await;
    let pages = console_pages(&http, dir.path(), &config, &proxy).await;
    println!(
        "BigQuery emulator → oie → webhook + HubSpot fake ({} upsert calls): {} of {} hot leads in {:.2} s; {contacts} of {n} profiles synced in {:.2} s = {:.0} leads/s; {logged_rows} outcomes in crm_sync_log after {:.2} s = {:.0} leads/s written back (loading the emulator took {:.2} s beforehand)",
        crm.upsert_calls(),
        received.load(Ordering::Relaxed),
        n / 10,
        hot_done.as_secs_f64(),
        delivered.as_secs_f64(),
        contacts as f64 / delivered.as_secs_f64(),
        logged.as_secs_f64(),
        logged_rows as f64 / logged.as_secs_f64(),
        loaded.as_secs_f64()
    );
    for line in pages {
        println!("{line}");
    }
}

/// The console's pages read from `oie run` with nothing else running (no source): a lead's and
/// Now. Each on the emulator, then with each BigQuery request held `LAG_MS`, against the sum of
/// its requests (what reading them one after another costs).
async fn console_pages(
    http: &reqwest::Client,
    dir: &std::path::Path,
    config: &std::path::Path,
    proxy: &lag_proxy::LagProxy,
) -> Vec<String> {
    let quiet = dir.join("pages.toml");
    let text = std::fs::read_to_string(config).unwrap();
    let polling = "[sources.leads]\ninterval = \"200ms\"";
    // Else the poller's own queries would pass through the proxy and be counted as the pages'.
    assert!(text.contains(polling), "the bench config's source changed");
    let text = text.replace(polling, "[sources.leads]\nenabled = false");
    std::fs::write(&quiet, text).unwrap();
    let addr_file = dir.join("data/server.addr");
    let _ = std::fs::remove_file(&addr_file);
    let child = oie_run(&quiet);
    while !addr_file.exists() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let addr = std::fs::read_to_string(&addr_file).unwrap();
    let mut lines = Vec::new();
    for (name, path) in [
        ("a lead's page", "/api/v1/leads/b000001"),
        ("Now", "/api/v1/now"),
    ] {
        let url = format!("http://{}{path}", addr.trim());
        let get = || async {
            let r = http
                .get(&url)
                .bearer_auth(ADMIN_TOKEN)
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success(), "{path}: {}", r.status());
        };
        const PAGES: u32 = 5;
        proxy.lag_ms.store(0, Ordering::Relaxed);
        get().await;
        let start = Instant::now();
        for _ in 0..PAGES {
            get().await;
        }
        let fast = start.elapsed().as_secs_f64() * 1000.0 / PAGES as f64;
        proxy.lag_ms.store(LAG_MS, Ordering::Relaxed);
        let before = proxy.requests.load(Ordering::Relaxed);
        let start = Instant::now();
        for _ in 0..PAGES {
            get().await;
        }
        let slow = start.elapsed().as_secs_f64() * 1000.0 / PAGES as f64;
        let per_page = (proxy.requests.load(Ordering::Relaxed) - before) as f64 / PAGES as f64;
        let serial = fast + per_page * LAG_MS as f64;
        lines.push(format!(
            "{name} (GET {path}): {fast:.0} ms on the emulator; {slow:.0} ms with each of its {per_page:.0} BigQuery requests taking {LAG_MS} ms, {:.1}x faster than the same requests one after another ({serial:.0} ms)",
            serial / slow
        ));
    }
    stop(child);
    lines
}

/// `oie run` on `config`, with the benchmark's secrets in its environment.
fn oie_run(config: &std::path::Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_oie"))
        .env("OIE_BENCH_HUBSPOT_TOKEN", hubspot::TOKEN)
        .env("OIE_BENCH_ADMIN_TOKEN", ADMIN_TOKEN)
        .args(["run", "--config"])
        .arg(config)
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

/// Stops `oie run` as an operator would (SIGTERM) and waits for it.
fn stop(mut child: std::process::Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}
