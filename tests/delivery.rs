//! Black-box: `oie run` against receivers that misbehave as real ones do.

mod common;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use common::{hot_lead, Behaviour, Receiver, Workspace, FAST};

fn config(receiver: &Receiver, cases: &[&str]) -> String {
    let mut c = FAST.to_string();
    for case in cases {
        c.push_str(&format!(
            r#"
[[routes]]
name = "to-{case}"
when = 'trigger.kind == "hot_lead" && lead.visitorId.startsWith("{case}")'
to = ["{case}"]

[connectors.{case}]
kind = "webhook"
url = "{url}"
timeout = "1s"
"#,
            url = receiver.url(case)
        ));
    }
    c
}

fn dead_letter_for(ws: &Workspace, connector: &str) -> Option<serde_json::Value> {
    ws.dead_letters()
        .into_iter()
        .find(|d| d["connector"] == connector)
}

#[tokio::test(flavor = "multi_thread")]
async fn misbehaving_receivers() {
    let rx = Receiver::start(&[
        ("flaky", Behaviour::FailThenOk(2)),
        ("throttled", Behaviour::ThrottleOnce(2)),
        ("gone", Behaviour::Status(410)),
        ("hang", Behaviour::Slow(Duration::from_secs(10))),
        ("redirect", Behaviour::Redirect),
        ("invalid", Behaviour::Status(400)),
    ])
    .await;
    let cases = ["flaky", "throttled", "gone", "hang", "redirect", "invalid"];
    let mut cfg = config(&rx, &cases);
    cfg = cfg.replace(
        "[connectors.hang]\nkind = \"webhook\"",
        "[connectors.hang]\nkind = \"webhook\"\nmax_attempts = 2",
    );
    let ws = Workspace::new(&cfg);
    ws.import(
        &cases
            .iter()
            .map(|c| hot_lead(&format!("{c}-1")))
            .collect::<Vec<_>>(),
    );
    let daemon = ws.start();

    // 503 twice then 200: delivered once, after three attempts carrying the same webhook-id.
    rx.wait_for("flaky delivered", Duration::from_secs(15), |r| {
        !r.accepted("flaky").is_empty()
    })
    .await;
    let flaky = rx.hits("flaky");
    assert_eq!(flaky.len(), 3);
    assert!(
        flaky.iter().all(|h| h.id() == flaky[0].id()),
        "webhook-id is stable across retries"
    );
    assert_eq!(rx.accepted("flaky").len(), 1);

    // 429 with Retry-After: 2 → the retry waits at least 2 s.
    rx.wait_for("throttled delivered", Duration::from_secs(15), |r| {
        !r.accepted("throttled").is_empty()
    })
    .await;
    let t = rx.hits("throttled");
    assert_eq!(t.len(), 2);
    let gap = t[1].at - t[0].at;
    assert!(
        gap >= Duration::from_millis(1950),
        "retried after {gap:?}, before Retry-After"
    );
    assert!(
        gap < Duration::from_secs(4),
        "retried after {gap:?}, long after Retry-After"
    );

    // A 10 s hang with a 1 s timeout, twice: dead-lettered as a timeout.
    let start = std::time::Instant::now();
    while dead_letter_for(&ws, "hang").is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "hang never dead-lettered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let hang = dead_letter_for(&ws, "hang").unwrap();
    assert_eq!(hang["attempts"], 2);
    assert_eq!(hang["reason"], "timeout");
    assert_eq!(
        hang["error"], "gave up after 2 attempts: no answer within 1s",
        "{hang}"
    );

    // 410 and a redirect: the connector as a whole is wrong, so it is parked and keeps its
    // queue; nothing is dead-lettered.
    for (case, reason) in [("gone", "gone"), ("redirect", "redirect")] {
        common::wait_until(&format!("{case} parked"), 10, || {
            ws.connector_status(case)["state"] == "parked"
        })
        .await;
        let status = ws.connector_status(case);
        assert_eq!(status["reason"], reason, "{status}");
        assert_eq!(status["queued"], 1, "{status}");
        assert!(dead_letter_for(&ws, case).is_none());
    }
    let redirect = ws.connector_status("redirect");
    assert!(
        redirect["detail"]
            .as_str()
            .unwrap()
            .contains("does not follow redirects"),
        "{redirect}"
    );
    assert!(rx.hits("elsewhere").is_empty());

    // Other 4xx: this delivery is refused, a dead letter at once with the status and body.
    let invalid = dead_letter_for(&ws, "invalid").expect("400 dead-lettered");
    assert_eq!(invalid["attempts"], 1);
    assert_eq!(invalid["reason"], "invalid_item");
    assert_eq!(invalid["error"], "HTTP 400 no");

    // A second lead for the parked connector waits in the outbox with the first.
    ws.import(&[hot_lead("gone-2")]);
    common::wait_until("gone-2 queued", 10, || {
        ws.connector_status("gone")["queued"] == 2
    })
    .await;
    let (_, metrics) = daemon.get("/metrics").await;
    assert!(
        metrics.contains("oie_connector_state{connector=\"gone\",state=\"parked\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("oie_connector_state{connector=\"flaky\",state=\"ok\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "oie_deliveries_total{connector=\"flaky\",outcome=\"retry\",reason=\"throttled\",route=\"to-flaky\"} 2"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "oie_deliveries_total{connector=\"flaky\",outcome=\"delivered\",reason=\"\",route=\"to-flaky\"} 1"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("oie_dead_letters{connector=\"invalid\"} 1"),
        "{metrics}"
    );

    // The dead letter keeps the payload, its render input and every attempt's reason.
    let out = ws.oie(&["deadletters", "show", &hang["id"].to_string()]);
    let detail: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(detail["payload"]["data"]["lead"]["visitorId"], "hang-1");
    assert_eq!(detail["context"]["lead"]["visitorId"], "hang-1");
    let log = detail["attempt_log"].as_array().unwrap();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0]["reason"], "timeout");
    assert_eq!(log[0]["outcome"], "retry");
    assert_eq!(log[1]["outcome"], "dead");

    assert!(daemon.terminate().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn replay_redrives_dead_letters() {
    let on = Arc::new(AtomicBool::new(false));
    let rx = Receiver::start(&[("crm", Behaviour::Switch(on.clone()))]).await;
    let ws = Workspace::new(&config(&rx, &["crm"]));
    ws.import(&[hot_lead("crm-1"), hot_lead("crm-2")]);
    let daemon = ws.start();
    let start = std::time::Instant::now();
    while ws.dead_letters().len() < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "not dead-lettered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let dry = ws.oie(&["deadletters", "replay", "--all", "--dry-run"]);
    assert!(String::from_utf8_lossy(&dry.stdout).contains("would requeue 2"));
    assert_eq!(ws.dead_letters().len(), 2, "a dry run changes nothing");

    on.store(true, std::sync::atomic::Ordering::SeqCst);
    let first = ws.dead_letters()[0]["id"].to_string();
    let one = ws.oie(&["deadletters", "replay", &first]);
    assert!(
        one.status.success(),
        "{}",
        String::from_utf8_lossy(&one.stderr)
    );
    rx.wait_for("first replay delivered", Duration::from_secs(10), |r| {
        r.accepted("crm").len() == 1
    })
    .await;
    assert_eq!(ws.dead_letters().len(), 1);

    let all = ws.oie(&["deadletters", "replay", "--all"]);
    assert!(all.status.success());
    rx.wait_for("second replay delivered", Duration::from_secs(10), |r| {
        r.accepted("crm").len() == 2
    })
    .await;
    assert!(ws.dead_letters().is_empty());
    let visitors: std::collections::BTreeSet<String> =
        rx.accepted("crm").iter().map(|h| h.visitor()).collect();
    assert_eq!(visitors.len(), 2);

    let missing = ws.oie(&["deadletters", "replay", "999999"]);
    assert!(!missing.status.success());
    drop(daemon);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_finishes_in_flight_deliveries_and_exits_zero() {
    let rx = Receiver::start(&[("slow", Behaviour::Slow(Duration::from_millis(1500)))]).await;
    let ws =
        Workspace::new(&config(&rx, &["slow"]).replace("timeout = \"1s\"", "timeout = \"5s\""));
    ws.import(&[hot_lead("slow-1")]);
    let daemon = ws.start();
    // Wait until the request is in flight, then stop.
    let start = std::time::Instant::now();
    loop {
        let (_, m) = daemon.get("/metrics").await;
        if m.contains("oie_outbox_depth{connector=\"slow\",state=\"inflight\"} 1") {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "never in flight");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A second daemon on the same data folder refuses to start.
    let second = ws.oie(&["run"]);
    assert!(!second.status.success());
    assert!(String::from_utf8_lossy(&second.stderr).contains("another `oie run` is using"));
    let status = daemon.terminate();
    assert!(status.success(), "{status:?}");
    assert_eq!(rx.accepted("slow").len(), 1);
    // The outcome was recorded: a restart sends nothing again.
    let again = ws.start();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(rx.hits("slow").len(), 1);
    assert!(again.terminate().success());
}

/// Waits until the lead source has produced `n` sync triggers (one per profile change).
async fn wait_for_changes(daemon: &common::Daemon, n: usize) -> String {
    let start = std::time::Instant::now();
    loop {
        let (_, m) = daemon.get("/metrics").await;
        if m.contains(&format!(
            "oie_triggers_total{{kind=\"sync\",source=\"leads\"}} {n}"
        )) {
            return m;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "source did not see change {n}:\n{m}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn only_rises_trigger_and_repeat_after_holds_back_a_re_rise() {
    let rx = Receiver::start(&[("hot", Behaviour::Ok)]).await;
    let ws = Workspace::new(
        &config(&rx, &["hot"]).replace("to = [\"hot\"]", "to = [\"hot\"]\nrepeat_after = \"24h\""),
    );
    let daemon = ws.start();
    let lead = |level: &str, company: &str| serde_json::json!({"visitorId": "hot-1", "engagementLevel": level, "company": company});
    let steps = [
        (lead("hot", "Acme"), 1, "first seen hot: a rise"),
        (
            lead("hot", "Acme Inc"),
            1,
            "changed but still hot: no alert",
        ),
        (lead("warm", "Acme Inc"), 1, "a fall: no alert"),
        (
            lead("hot", "Acme Inc"),
            1,
            "rose again within 24h to the level already alerted: held back",
        ),
        (
            lead("burning", "Acme Inc"),
            2,
            "rose above the alerted level: alert",
        ),
    ];
    for (i, (l, expected, why)) in steps.iter().enumerate() {
        ws.import(std::slice::from_ref(l));
        wait_for_changes(&daemon, i + 1).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(rx.accepted("hot").len(), *expected, "step {}: {why}", i + 1);
    }
    let m = wait_for_changes(&daemon, 5).await;
    assert!(
        m.contains("oie_suppressed_total{route=\"to-hot\"} 1"),
        "{m}"
    );
    let levels: Vec<String> = rx
        .accepted("hot")
        .iter()
        .map(|h| {
            h.body["data"]["trigger"]["level"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(levels, vec!["hot", "burning"]);
    assert_eq!(
        rx.accepted("hot")[1].body["data"]["trigger"]["previousLevel"],
        "hot"
    );
    // The same lead file imported again changes nothing.
    ws.import(&[lead("burning", "Acme Inc")]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    wait_for_changes(&daemon, 5).await;
}
