//! Black-box: erasure in embedded mode. A delivery claimed but not yet sent at the moment of the
//! erasure is never sent and writes nothing back; nothing of the visitor is left in any table or
//! in the outbox; a route asking for `erasure` triggers tells HubSpot (GDPR delete) and
//! Salesforce (delete) to remove the record oie synced, and nothing else.

mod common;

use std::time::Duration;

use common::{wait_until, Workspace};
use oie_fakes::hubspot::{self, HubSpotFake};
use oie_fakes::salesforce::{self, SalesforceFake};
use serde_json::{json, Value};

const ADMIN: &str = "erase-admin-token";

/// A workspace whose `oie` processes get the admin token and the HubSpot fake's token.
fn workspace(config: &str) -> Workspace {
    let ws = Workspace::new(config);
    ws.env("OIE_TEST_ERASURE_ADMIN", ADMIN);
    ws.env("OIE_TEST_ERASURE_HUBSPOT", hubspot::TOKEN);
    ws
}

fn header() -> String {
    r#"
[engine]
log_level = "oie=debug,info"
shutdown_timeout = "5s"

[server]
listen = "127.0.0.1:0"
admin_token = "${OIE_TEST_ERASURE_ADMIN}"

[sources.leads]
interval = "100ms"

[delivery]
max_attempts = 5
backoff_base = "100ms"
backoff_max = "400ms"
"#
    .to_string()
}

fn lead(id: &str) -> Value {
    json!({"visitorId": id, "email": format!("{id}@acme.example"), "firstName": "Jane",
           "lastName": id, "company": "Acme", "intentScore": 50, "engagementLevel": "warm"})
}

async fn erase(base: &str, visitor: &str) -> Value {
    let r = reqwest::Client::new()
        .delete(format!("{base}/visitors/{visitor}"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    r.json().await.unwrap()
}

/// Rows naming `visitor` in every table of the store and the outbox.
fn traces(ws: &Workspace, visitor: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (db, tables) in [
        (
            "oie.db",
            &[
                ("events", "visitorId"),
                ("sessions", "visitorId"),
                ("lead_profiles", "visitorId"),
                ("identity_map", "shortId"),
                ("email_clicks", "visitorId"),
                ("hot_lead_alerts", "visitorId"),
                ("level_changes", "visitorId"),
                ("account_members", "visitorId"),
                ("crm_sync_state", "visitorId"),
                ("crm_sync_log", "visitorId"),
            ][..],
        ),
        (
            "outbox.db",
            &[
                ("deliveries", "visitor_id"),
                ("lead_seen", "visitor_id"),
                ("route_fires", "visitor_id"),
            ][..],
        ),
    ] {
        let conn = rusqlite::Connection::open(ws.path(&format!("data/{db}"))).unwrap();
        for (table, column) in tables {
            let n: i64 = conn
                .query_row(
                    &format!("SELECT COUNT(*) FROM {table} WHERE {column} = ?1"),
                    [visitor],
                    |r| r.get(0),
                )
                .unwrap();
            if n > 0 {
                found.push(format!("{db} {table}: {n}"));
            }
        }
        if db == "outbox.db" {
            // Bodies and attempts of deliveries that are gone.
            for table in ["delivery_bodies", "attempts"] {
                let n: i64 = conn
                    .query_row(
                        &format!("SELECT COUNT(*) FROM {table} WHERE delivery_id NOT IN (SELECT id FROM deliveries)"),
                        [],
                        |r| r.get(0),
                    )
                    .unwrap();
                if n > 0 {
                    found.push(format!("{db} {table}: {n} orphans"));
                }
            }
            let quoted = format!("%{visitor}%");
            let naming: Vec<String> = conn
                .prepare("SELECT COALESCE(context, payload) FROM delivery_bodies WHERE payload LIKE ?1 OR context LIKE ?1")
                .unwrap()
                .query_map([&quoted], |r| r.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            for body in naming {
                found.push(format!("{db} delivery_bodies naming it: {body}"));
            }
        }
    }
    found
}

/// HubSpot paced to one request every 2 s: the second lead's sync is claimed and waits for the
/// pacer while the first goes out. Erased then, it is never sent and nothing is written back.
#[tokio::test(flavor = "multi_thread")]
async fn a_delivery_claimed_at_the_erasure_is_never_sent() {
    let fake = HubSpotFake::start().await;
    let config = format!(
        r#"{}
[[routes]]
name = "crm"
when = 'trigger.kind == "sync"'
to = ["crm"]

[connectors.crm]
kind = "hubspot"
base_url = "{}"
token = "${{OIE_TEST_ERASURE_HUBSPOT}}"
batch_size = 1
batch_wait = "0s"
concurrency = 1
rate_limit = 0.5
"#,
        header(),
        fake.base
    );
    let ws = workspace(&config);
    ws.import(&[lead("zqa"), lead("zqb")]);
    let daemon = ws.start();
    wait_until("the first sync", 10, || {
        fake.contact("zqa@acme.example").is_some()
    })
    .await;
    // The second is claimed (the loop claims ahead) and waits up to 2 s for the pacer.
    let state: String = rusqlite::Connection::open(ws.path("data/outbox.db"))
        .unwrap()
        .query_row(
            "SELECT state FROM deliveries WHERE visitor_id = 'zqb'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(state, "inflight");
    let answer = erase(&daemon.base, "zqb").await;
    assert_eq!(answer["erased"]["store"]["profiles"], 1, "{answer}");
    assert_eq!(answer["erased"]["deliveries"], 1, "{answer}");
    // Past the pacer's next slot, and another: the erased sync never went out.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(
        fake.contact("zqb@acme.example").is_none(),
        "sent after its erasure"
    );
    assert_eq!(fake.upsert_calls(), 1);
    assert_eq!(traces(&ws, "zqb"), Vec::<String>::new());
    assert!(traces(&ws, "zqa")
        .iter()
        .any(|t| t.contains("crm_sync_state")));
    let metrics = daemon.get("/metrics").await.1;
    assert!(
        metrics.contains("outcome=\"erased\""),
        "the cancelled delivery is counted as erased"
    );
}

/// A route asking for `erasure` triggers: HubSpot gets one GDPR delete of the contact oie
/// synced (never of an unknown e-mail), Salesforce one delete of the record; a lead never
/// synced costs no CRM call at all.
#[tokio::test(flavor = "multi_thread")]
async fn crms_delete_the_records_oie_synced_when_a_route_asks() {
    let hub = HubSpotFake::start().await;
    let sf = SalesforceFake::start_with_test_key().await;
    let ws = workspace("");
    std::fs::write(ws.path("sf-key.pem"), salesforce::TEST_PRIVATE_KEY).unwrap();
    let config = format!(
        r#"{}
[[routes]]
name = "crm"
when = 'trigger.kind == "sync" && lead.visitorId != "never"'
to = ["hub", "sf"]

[[routes]]
name = "forget"
when = 'trigger.kind == "erasure"'
to = ["hub", "sf"]

[connectors.hub]
kind = "hubspot"
base_url = "{}"
token = "${{OIE_TEST_ERASURE_HUBSPOT}}"
batch_wait = "0s"

[connectors.sf]
kind = "salesforce"
client_id = "{}"
username = "{}"
private_key_file = "sf-key.pem"
login_url = "{}"
batch_wait = "0s"
"#,
        header(),
        hub.base,
        salesforce::CLIENT_ID,
        salesforce::USERNAME,
        sf.base
    );
    std::fs::write(ws.config(), config).unwrap();
    ws.import(&[lead("synced"), lead("never")]);
    let daemon = ws.start();
    wait_until("both records synced", 10, || {
        hub.contact("synced@acme.example").is_some() && sf.record("synced").is_some()
    })
    .await;
    let contact = hub.contact("synced@acme.example").unwrap().id;
    let record = sf.record("synced").unwrap().id;
    // The writeback landed: the CRM ids are known.
    wait_until("the record ids written back", 10, || {
        traces(&ws, "synced")
            .iter()
            .any(|t| t.starts_with("oie.db crm_sync_state: 2"))
    })
    .await;
    let answer = erase(&daemon.base, "synced").await;
    assert_eq!(answer["erased"]["crmErasures"], 2, "{answer}");
    wait_until("both CRMs told", 15, || {
        !hub.gdpr_deleted().is_empty() && !sf.deleted().is_empty()
    })
    .await;
    assert_eq!(hub.gdpr_deleted(), vec![contact]);
    assert_eq!(sf.deleted(), vec![record]);
    assert!(hub.blocklisted().is_empty(), "no GDPR delete by e-mail");
    // Once delivered, the erasure deliveries (which named the person) are gone too.
    wait_until("nothing of the visitor left", 10, || {
        traces(&ws, "synced").is_empty()
    })
    .await;
    // Never synced: nothing to delete anywhere.
    let answer = erase(&daemon.base, "never").await;
    assert_eq!(answer["erased"]["crmErasures"], 0, "{answer}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(hub.gdpr_deleted().len(), 1);
    assert!(hub.blocklisted().is_empty());
    drop(daemon);
}

/// `oie visitors erase` does the same as the HTTP call, with or without a running daemon.
#[tokio::test(flavor = "multi_thread")]
async fn the_command_erases_with_and_without_a_daemon() {
    let config = format!(
        r#"{}
[[routes]]
name = "hot"
when = 'trigger.kind == "hot_lead"'
to = ["out"]

[connectors.out]
kind = "file"
path = "data/out.jsonl"
"#,
        header()
    );
    let ws = workspace(&config);
    ws.import(&[lead("a1"), lead("a2")]);
    let out = ws.oie(&["visitors", "erase", "a1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("erased a1"));
    assert_eq!(traces(&ws, "a1"), Vec::<String>::new());
    let daemon = ws.start();
    let out = ws.oie(&["visitors", "erase", "a2"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("\"profiles\":1"), "{stdout}");
    assert_eq!(traces(&ws, "a2"), Vec::<String>::new());
    let bad = ws.oie(&["visitors", "erase", "not an id"]);
    assert!(!bad.status.success());
    drop(daemon);
}
