//! Black-box: SIGKILL in the middle of a run loses nothing, and a repeat carries the same
//! webhook-id.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::{hot_lead, Behaviour, Receiver, Workspace, FAST};

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_mid_run_loses_nothing() {
    let rx = Receiver::start(&[("slow", Behaviour::Slow(Duration::from_millis(20)))]).await;
    let config = format!(
        r#"{FAST}
[[routes]]
name = "hot"
when = 'trigger.kind == "hot_lead"'
to = ["slow"]

[connectors.slow]
kind = "webhook"
url = "{}"
concurrency = 4
"#,
        rx.url("slow")
    );
    let ws = Workspace::new(&config);
    let leads: Vec<_> = (0..500)
        .map(|i| hot_lead(&format!("lead-{i:03}")))
        .collect();
    ws.import(&leads);

    let daemon = ws.start();
    rx.wait_for(
        "100 deliveries before the kill",
        Duration::from_secs(30),
        |r| r.accepted("slow").len() >= 100,
    )
    .await;
    daemon.kill();
    let before = rx.accepted("slow").len();
    assert!(
        before < 500,
        "the kill came too late to test anything ({before} delivered)"
    );

    let daemon = ws.start();
    let unique = |r: &Receiver| {
        r.accepted("slow")
            .iter()
            .map(|h| h.visitor())
            .collect::<BTreeSet<_>>()
            .len()
    };
    rx.wait_for("all 500 leads", Duration::from_secs(60), |r| {
        unique(r) == 500
    })
    .await;
    assert!(daemon.terminate().success());

    let mut ids: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for hit in rx.hits("slow") {
        ids.entry(hit.visitor()).or_default().insert(hit.id());
    }
    assert_eq!(ids.len(), 500, "every lead arrived");
    for (visitor, keys) in &ids {
        assert_eq!(
            keys.len(),
            1,
            "{visitor} arrived with different webhook-ids: {keys:?}"
        );
    }
    let repeats = rx.hits("slow").len() - 500;
    println!("delivered before kill: {before}; repeats after restart: {repeats}");
}
