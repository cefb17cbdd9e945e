//! Black-box: `oie simulate` drives journeys through a running `oie`; every visitor gets a
//! profile and exactly the buyers (2 in 10) are routed as hot leads.

mod common;

use std::time::{Duration, Instant};

use common::{Workspace, FAST};

#[tokio::test(flavor = "multi_thread")]
async fn simulated_visitors_become_profiles_and_the_expected_hot_leads() {
    let ws = Workspace::new(&format!(
        "{FAST}\n[[routes]]\nname = \"hot\"\nwhen = 'trigger.kind == \"hot_lead\"'\nto = [\"out\"]\n\n[connectors.out]\nkind = \"file\"\npath = \"data/out.jsonl\"\n"
    ));
    let daemon = ws.start();
    let out = ws.oie(&[
        "simulate",
        "--visitors",
        "50",
        "--target",
        &daemon.base,
        "--prefix",
        "t",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = String::from_utf8(out.stdout).unwrap();
    assert!(
        summary.contains("sent 50 visitors, 185 events"),
        "{summary}"
    ); // 10 × 6 + 15 × 5 + 25 × 2
    assert!(
        summary.contains("expected hot leads: 10 (20 %)"),
        "{summary}"
    );
    let lines = || common::read(&ws.path("data/out.jsonl")).lines().count();
    let start = Instant::now();
    while lines() < 10 {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "only {} hot leads routed",
            lines()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(lines(), 10, "exactly the buyers");
    let db = rusqlite::Connection::open(ws.path("data/oie.db")).unwrap();
    let mut levels: Vec<(String, i64)> = db
        .prepare("SELECT engagementLevel, COUNT(*) FROM lead_profiles GROUP BY 1 ORDER BY 1")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    levels.sort();
    let expected = [("burning", 10), ("cold", 25), ("warm", 15)].map(|(l, n)| (l.to_string(), n));
    assert_eq!(
        levels, expected,
        "50 profiles: 10 buyers, 15 researchers, 25 bouncers"
    );
    drop(daemon);
}
