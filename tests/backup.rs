//! Black-box: the embedded store over months — `oie backup` under load restored into a fresh
//! data dir (nothing queued at the snapshot lost, nothing delivered under a second key),
//! `oie restore` refused while a daemon holds the data dir, `oie store compact`, and
//! `oie deadletters purge`.

mod common;

use std::collections::{HashMap, HashSet};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{bin, hot_lead, wait_until, Behaviour, Receiver, Workspace, QUICK};

fn config(url: &str, extra: &str) -> String {
    format!(
        r#"{QUICK}
[[routes]]
name = "hot"
when = 'trigger.kind == "hot_lead"'
to = ["hook"]

[connectors.hook]
kind = "webhook"
url = "{url}"
{extra}
"#
    )
}

/// Deliveries of the backup's outbox: key → state.
fn outbox_states(path: &std::path::Path) -> HashMap<String, String> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn.prepare("SELECT key, state FROM deliveries").unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Visitors journey in while a slow receiver takes one alert at a time; a backup is taken
/// mid-way; the daemon is killed; the backup restored into a fresh data dir is run against a
/// second receiver.
#[tokio::test(flavor = "multi_thread")]
async fn a_backup_under_load_restores_without_losing_or_repeating() {
    let before = Receiver::start(&[("hook", Behaviour::Slow(Duration::from_millis(200)))]).await;
    let ws = Workspace::new(&config(&before.url("hook"), "concurrency = 1"));
    let daemon = ws.start();
    let mut simulate = Command::new(bin())
        .args([
            "simulate",
            "--visitors",
            "300",
            "--rate",
            "100",
            "--target",
            &daemon.base,
        ])
        .arg("--config")
        .arg(ws.config())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("a few alerts delivered", 20, || {
        before.accepted("hook").len() >= 3
    })
    .await;
    let dir = ws.path("backup");
    let out = ws.oie(&["backup", dir.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(printed.contains("integrity checked"), "{printed}");
    assert!(simulate.wait().unwrap().success());
    daemon.kill();
    let at_backup = outbox_states(&dir.join("outbox.db"));
    let pending: HashSet<&String> = at_backup
        .iter()
        .filter(|(_, s)| *s == "queued" || *s == "inflight")
        .map(|(k, _)| k)
        .collect();
    let delivered: HashSet<&String> = at_backup
        .iter()
        .filter(|(_, s)| *s == "delivered")
        .map(|(k, _)| k)
        .collect();
    assert!(
        !pending.is_empty(),
        "the slow receiver left work queued: {at_backup:?}"
    );
    for name in ["oie.db", "outbox.db"] {
        oie::backup::check(&dir.join(name)).unwrap();
    }

    let after = Receiver::start(&[("hook", Behaviour::Ok)]).await;
    let fresh = Workspace::new(&config(&after.url("hook"), ""));
    let out = fresh.oie(&["restore", dir.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let restored = fresh.start();
    wait_until("every delivery queued at the backup", 30, || {
        let got: HashSet<String> = after.accepted("hook").iter().map(|h| h.id()).collect();
        pending.iter().all(|k| got.contains(*k))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let first: HashMap<String, String> = before
        .accepted("hook")
        .iter()
        .map(|h| (h.visitor(), h.id()))
        .collect();
    for hit in after.accepted("hook") {
        let key = hit.id();
        assert!(
            !delivered.contains(&key),
            "{key} was delivered before the backup"
        );
        if let Some(earlier) = first.get(&hit.visitor()) {
            assert_eq!(
                &key,
                earlier,
                "{} delivered under a second key",
                hit.visitor()
            );
        }
    }
    drop(restored);
}

#[tokio::test(flavor = "multi_thread")]
async fn restore_is_refused_while_a_daemon_holds_the_data_dir() {
    let rx = Receiver::start(&[("hook", Behaviour::Ok)]).await;
    let ws = Workspace::new(&config(&rx.url("hook"), ""));
    ws.import(&[hot_lead("b1")]);
    let dir = ws.path("copy");
    assert!(ws.oie(&["backup", dir.to_str().unwrap()]).status.success());
    let daemon = ws.start();
    // The backup and the files' sizes are in the metrics.
    let metrics = daemon.get("/metrics").await.1;
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {metrics}"))
    };
    let taken = value("oie_backup_last_success_timestamp_seconds ");
    assert!(
        (taken - oie::clock::now_ms() as f64 / 1000.0).abs() < 60.0,
        "{taken}"
    );
    assert!(value("oie_backup_duration_seconds ") >= 0.0);
    assert!(value("oie_store_bytes{database=\"oie\",file=\"db\"} ") > 0.0);
    let out = ws.oie(&["restore", dir.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("stop it before restoring"));
    drop(daemon);
    // Stopped: restored, with the replaced files kept beside.
    let out = ws.oie(&["restore", dir.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let kept = std::fs::read_dir(ws.path("data"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains(".replaced-")
        })
        .count();
    assert_eq!(kept, 2);
}

/// A database made before incremental vacuum is switched to it and shrunk.
#[test]
fn compact_switches_old_databases_to_incremental_vacuum() {
    let ws = Workspace::new(&config("http://127.0.0.1:9/hook", ""));
    std::fs::create_dir_all(ws.path("data")).unwrap();
    let old = rusqlite::Connection::open(ws.path("data/oie.db")).unwrap();
    old.execute_batch(
        "PRAGMA auto_vacuum = NONE; CREATE TABLE filler (x BLOB);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
         INSERT INTO filler SELECT randomblob(2000) FROM n;
         DELETE FROM filler;",
    )
    .unwrap();
    drop(old);
    let size = || std::fs::metadata(ws.path("data/oie.db")).unwrap().len();
    let before = size();
    let out = ws.oie(&["store", "compact"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(size() * 4 < before, "{before} → {}", size());
    let mode: i64 = rusqlite::Connection::open(ws.path("data/oie.db"))
        .unwrap()
        .query_row("PRAGMA auto_vacuum", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, 2, "incremental");
}

#[tokio::test(flavor = "multi_thread")]
async fn dead_letters_are_purged_by_age() {
    let rx = Receiver::start(&[("hook", Behaviour::Status(400))]).await;
    let ws = Workspace::new(&config(&rx.url("hook"), ""));
    ws.import(&[hot_lead("d1"), hot_lead("d2")]);
    let daemon = ws.start();
    wait_until("two dead letters", 10, || ws.dead_letters().len() == 2).await;
    drop(daemon);
    let purge = |age: &str, dry: bool| {
        let mut args = vec!["deadletters", "purge", "--older-than", age];
        if dry {
            args.push("--dry-run");
        }
        String::from_utf8_lossy(&ws.oie(&args).stdout).to_string()
    };
    assert!(purge("1h", false).contains("deleted 0 dead letter(s)"));
    assert!(purge("0s", true).contains("2 dead letter(s)"));
    assert_eq!(ws.dead_letters().len(), 2, "a dry run changes nothing");
    assert!(purge("0s", false).contains("deleted 2 dead letter(s)"));
    assert!(ws.dead_letters().is_empty());
}
