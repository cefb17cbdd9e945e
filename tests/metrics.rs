//! Black-box: the metrics operators alert on, after real traffic — ingest, scoring, and the
//! latency from a prospect's form submit to the alert — and every metric the shipped alert
//! rules and dashboard name is exported.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{Behaviour, Receiver, Workspace, FAST};
use serde_json::json;

fn value(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{metrics}"))
}

/// Metric names in a rules or dashboard file: every `oie_…` word, without histogram suffixes.
fn named(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (i, _) in text.match_indices("oie_") {
        let name: String = text[i..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(&name)
            .to_string();
        names.insert(base);
    }
    names
}

#[tokio::test(flavor = "multi_thread")]
async fn ingest_scoring_and_alert_latency_are_measured() {
    let rx = Receiver::start(&[("hook", Behaviour::Ok)]).await;
    let ws = Workspace::new(&format!(
        "{FAST}\n[scoring]\ndebounce = \"100ms\"\n\n[[routes]]\nname = \"hot\"\nwhen = 'trigger.kind == \"hot_lead\"'\nto = [\"hook\"]\n\n[connectors.hook]\nkind = \"webhook\"\nurl = \"{}\"\n",
        rx.url("hook")
    ));
    let daemon = ws.start();
    let out = ws.oie(&["simulate", "--visitors", "20", "--target", &daemon.base]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A prospect reading pricing and submitting the demo form now.
    let now = oie::clock::now_ms();
    let e = |i: i64, kind: &str, path: &str, data: serde_json::Value| {
        json!({"eventId": format!("live-{i}"), "type": kind, "timestamp": now - 3 + i, "sessionId": "live-s",
               "visitorId": "live", "url": format!("https://acme.example{path}"), "path": path, "data": data})
    };
    let body = json!({"v": 1, "events": [
        e(0, "pageview", "/pricing", json!({})), e(1, "pageview", "/pricing", json!({})),
        e(2, "page_exit", "/pricing", json!({"activeMs": 300000, "maxScrollDepth": 90})),
        e(3, "form_submit", "/demo", json!({"formId": "demo", "fields": ["email"]})),
    ]});
    let client = reqwest::Client::new();
    let r = client
        .post(format!("{}/track", daemon.base))
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let bad = client
        .post(format!("{}/track", daemon.base))
        .body("{\"v\": 1, \"events\": [{\"type\": \"nope\"}]}")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 400);
    rx.wait_for("the live alert", Duration::from_secs(10), |r| {
        r.accepted("hook").iter().any(|h| h.visitor() == "live")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let metrics = daemon.get("/metrics").await.1;

    assert!(
        value(
            &metrics,
            "oie_ingest_requests_total{endpoint=\"/track\",status=\"202\"}"
        ) >= 21.0
    );
    assert_eq!(
        value(
            &metrics,
            "oie_ingest_requests_total{endpoint=\"/track\",status=\"400\"}"
        ),
        1.0
    );
    assert!(value(&metrics, "oie_ingest_events_total{outcome=\"accepted\"}") >= 24.0);
    assert_eq!(
        value(&metrics, "oie_ingest_events_total{outcome=\"rejected\"}"),
        1.0
    );
    assert_eq!(
        value(&metrics, "oie_ingest_queue_requests"),
        0.0,
        "everything written"
    );
    assert!(value(&metrics, "oie_scoring_runs_total{result=\"ok\"}") >= 1.0);
    assert!(
        value(&metrics, "oie_scoring_leads_sum") >= 21.0,
        "every visitor rescored"
    );
    assert!(value(&metrics, "oie_scoring_seconds_count") >= 1.0);
    // The live form submit reached the webhook in under a second; simulated journeys are
    // backdated by their script, so they land in slower buckets.
    let latency = "oie_alert_latency_seconds_bucket{connector=\"hook\",route=\"hot\",le=\"1\"}";
    assert!(value(&metrics, latency) >= 1.0, "{metrics}");
    let count = value(
        &metrics,
        "oie_alert_latency_seconds_count{connector=\"hook\",route=\"hot\"}",
    );
    assert_eq!(count, rx.accepted("hook").len() as f64);

    // Every metric the shipped rules and dashboard use is one oie exports: in this scrape, or
    // registered (a labelled family shows up once it has a series).
    let root = env!("CARGO_MANIFEST_DIR");
    let registered = std::fs::read_to_string(format!("{root}/src/metrics.rs")).unwrap();
    let exported: BTreeSet<String> = named(&metrics)
        .union(&named(&registered))
        .cloned()
        .collect();
    assert!(
        exported.contains("oie_dead_letters") && exported.len() > 20,
        "{exported:?}"
    );
    for file in ["docs/prometheus/alerts.yml", "docs/grafana/oie.json"] {
        let text = std::fs::read_to_string(format!("{root}/{file}")).unwrap();
        let missing: Vec<String> = named(&text).difference(&exported).cloned().collect();
        assert!(
            missing.is_empty(),
            "{file} names {missing:?}, which oie does not export"
        );
    }
}
