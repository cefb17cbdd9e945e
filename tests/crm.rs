//! Black-box: `oie run` syncing 1,000 leads to local HubSpot and Salesforce fakes — one record
//! per lead, the fewest API calls the batch sizes allow, record ids written back, updates on
//! the second run, the rate-limit window honoured, expired tokens renewed.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use std::time::Instant;

use common::{wait_until, Workspace};
use oie_fakes::hubspot::{self, HubSpotFake};
use oie_fakes::salesforce::{self, SalesforceFake};
use serde_json::{json, Value};

/// A workspace whose `oie` processes get the fakes' secrets in their environment.
fn workspace(config: &str) -> Workspace {
    let ws = Workspace::new(config);
    ws.env("OIE_TEST_HUBSPOT_TOKEN", hubspot::TOKEN);
    ws.env("OIE_TEST_HUBSPOT_WRONG", "pat-wrong-secret-value");
    ws
}

fn header(sources_batch: usize) -> String {
    format!(
        r#"
[engine]
log_level = "oie=debug,info"
shutdown_timeout = "5s"

[server]
listen = "127.0.0.1:0"

[sources.leads]
interval = "100ms"
batch_size = {sources_batch}

[delivery]
max_attempts = 8
backoff_base = "100ms"
backoff_max = "400ms"

[[routes]]
name = "crm"
when = 'trigger.kind == "sync" && lead.email != null'
to = ["crm"]
"#
    )
}

fn hubspot_config(fake: &HubSpotFake, extra: &str) -> String {
    format!(
        r#"{}
[connectors.crm]
kind = "hubspot"
base_url = "{}"
token = "${{OIE_TEST_HUBSPOT_TOKEN}}"
batch_wait = "100ms"
{extra}

[connectors.crm.properties]
oie_intent_score = "{{{{lead.intentScore}}}}"
oie_engagement_level = "{{{{lead.engagementLevel}}}}"
oie_visitor_id = "{{{{lead.visitorId}}}}"
"#,
        header(1000),
        fake.base
    )
}

/// A workspace syncing to the Salesforce fake with the JWT bearer flow (the test key on disk).
fn salesforce_workspace(fake: &SalesforceFake) -> Workspace {
    let ws = workspace("");
    std::fs::write(ws.path("sf-key.pem"), salesforce::TEST_PRIVATE_KEY).unwrap();
    let config = format!(
        r#"{}
[connectors.crm]
kind = "salesforce"
client_id = "{}"
username = "{}"
private_key_file = "sf-key.pem"
login_url = "{}"
batch_wait = "100ms"

[connectors.crm.fields]
OIE_Intent_Score__c = "{{{{lead.intentScore}}}}"
OIE_Engagement_Level__c = "{{{{lead.engagementLevel}}}}"
"#,
        header(1000),
        salesforce::CLIENT_ID,
        salesforce::USERNAME,
        fake.base
    );
    std::fs::write(ws.config(), config).unwrap();
    ws
}

fn leads(n: usize, company: &str) -> Vec<Value> {
    (0..n)
        .map(|i| {
            json!({"visitorId": format!("v{i:04}"), "email": format!("lead{i:04}@acme.example"),
                   "firstName": "Jane", "lastName": format!("Doe{i}"), "company": company,
                   "intentScore": 20 + (i % 40), "engagementLevel": "warm"})
        })
        .collect()
}

/// The value of `oie_connector_vendor_limit{connector="crm",name=NAME}`.
fn gauge(metrics: &str, name: &str) -> f64 {
    let prefix = format!("oie_connector_vendor_limit{{connector=\"crm\",name=\"{name}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} gauge in {metrics}"))
}

/// One `crm_sync_state` row: (crmContactId, syncedToCRM, lastSyncedAt, lastError).
type SyncRow = (Option<String>, bool, Option<i64>, Option<String>);

/// visitorId → its `crm_sync_state` row for connector `crm`.
fn sync_state(ws: &Workspace) -> HashMap<String, SyncRow> {
    let db = rusqlite::Connection::open(ws.path("data/oie.db")).unwrap();
    let mut stmt = db
        .prepare("SELECT visitorId, crmContactId, syncedToCRM, lastSyncedAt, lastError FROM crm_sync_state WHERE connector = 'crm'")
        .unwrap();
    stmt.query_map([], |r| {
        Ok((
            r.get(0)?,
            (r.get(1)?, r.get::<_, i64>(2)? == 1, r.get(3)?, r.get(4)?),
        ))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

fn all_synced(ws: &Workspace, n: usize) -> bool {
    let state = sync_state(ws);
    state.len() == n
        && state
            .values()
            .all(|(id, synced, _, _)| id.is_some() && *synced)
}

#[tokio::test(flavor = "multi_thread")]
async fn hubspot_1000_leads_in_10_calls_then_updates() {
    let fake = HubSpotFake::start().await;
    let ws = workspace(&hubspot_config(&fake, ""));
    ws.import(&leads(1000, "Acme"));
    let daemon = ws.start();
    wait_until("1,000 contacts written back", 60, || all_synced(&ws, 1000)).await;
    assert_eq!(fake.contacts().len(), 1000);
    assert_eq!(fake.upsert_calls(), 10, "1,000 leads / 100 per call");
    assert_eq!(fake.rate_limited(), (0, 0));
    let contacts = fake.contacts();
    for (visitor, (id, _, at, error)) in sync_state(&ws) {
        let n: usize = visitor[1..].parse().unwrap();
        let contact = &contacts[&format!("lead{n:04}@acme.example")];
        assert_eq!(id.as_deref(), Some(contact.id.as_str()), "{visitor}");
        assert_eq!(contact.properties["oie_visitor_id"], visitor);
        assert!(at.is_some() && error.is_none());
    }
    // Concurrent answers may be read in any order, so the gauge holds one of the last few.
    let (_, metrics) = daemon.get("/metrics").await;
    let remaining = gauge(&metrics, "daily_remaining");
    assert!((249_990.0..=249_993.0).contains(&remaining), "{metrics}");

    // One field changed on every lead: updates, not creates.
    ws.import(&leads(1000, "Acme Corp"));
    wait_until("1,000 updates", 60, || {
        fake.contacts().values().filter(|c| c.updates == 1).count() == 1000
    })
    .await;
    let contacts = fake.contacts();
    assert_eq!(contacts.len(), 1000, "no duplicates");
    assert!(contacts
        .values()
        .all(|c| c.properties["company"] == "Acme Corp"));
    assert_eq!(fake.upsert_calls(), 20);
    assert_eq!((fake.token_calls(), fake.rate_limited()), (0, (0, 0)));
    assert!(ws.dead_letters().is_empty());
    assert!(daemon.terminate().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn hubspot_window_is_respected_and_a_shrunk_window_loses_nothing() {
    // Normal operation under an enforced window: 40 calls at 10 per second, no 429.
    let fake = HubSpotFake::with_window(10, Duration::from_secs(1)).await;
    let ws = workspace(&hubspot_config(
        &fake,
        "batch_size = 25\nwindow_limit = 10\nwindow = \"1s\"",
    ));
    ws.import(&leads(1000, "Acme"));
    let daemon = ws.start();
    wait_until("40 calls", 60, || fake.upsert_calls() >= 8).await;
    // Mid-run the portal's window shrinks to 2 per second: 429s follow, and are honoured.
    fake.set_window(2, Duration::from_secs(1));
    wait_until("1,000 contacts written back", 90, || all_synced(&ws, 1000)).await;
    assert_eq!(fake.contacts().len(), 1000);
    let (window_429s, daily_429s) = fake.rate_limited();
    // The shrink is learned from a 429 or from the rate-limit headers, whichever comes first.
    let (_, metrics) = daemon.get("/metrics").await;
    assert_eq!(gauge(&metrics, "window_limit"), 2.0, "{metrics}");
    assert!(
        window_429s <= 8,
        "429s are honoured, not hammered: {window_429s}"
    );
    assert_eq!(daily_429s, 0);
    assert_eq!(fake.upsert_calls(), 40, "every input sent once");
    assert!(ws.dead_letters().is_empty(), "nothing lost");
    assert!(daemon.terminate().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn salesforce_1000_leads_in_5_calls_then_updates_after_a_token_expiry() {
    let fake = SalesforceFake::start_with_test_key().await;
    let ws = salesforce_workspace(&fake);
    ws.import(&leads(1000, "Acme"));
    let daemon = ws.start();
    wait_until("1,000 records written back", 60, || all_synced(&ws, 1000)).await;
    let records = fake.records();
    assert_eq!(records.len(), 1000);
    assert_eq!(fake.collection_calls(), 5, "1,000 leads / 200 per call");
    assert_eq!(fake.token_calls(), 1);
    for (visitor, (id, _, _, _)) in sync_state(&ws) {
        assert_eq!(id.as_deref(), Some(records[&visitor].id.as_str()));
    }

    fake.expire_tokens();
    ws.import(&leads(1000, "Acme Corp"));
    wait_until("1,000 updates", 60, || {
        fake.records().values().filter(|r| r.updates == 1).count() == 1000
    })
    .await;
    let records = fake.records();
    assert_eq!(records.len(), 1000, "no duplicates");
    assert!(records.values().all(|r| r.fields["Company"] == "Acme Corp"));
    assert_eq!(fake.collection_calls(), 10);
    assert_eq!(
        fake.token_calls(),
        2,
        "one new token after the session expired"
    );
    let (_, metrics) = daemon.get("/metrics").await;
    assert!(
        metrics.contains(r#"oie_connector_vendor_limit{connector="crm",name="daily_used"}"#),
        "{metrics}"
    );
    assert!(ws.dead_letters().is_empty());
    assert!(daemon.terminate().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn salesforce_record_errors_become_dead_letters_with_the_message() {
    let fake = SalesforceFake::start_with_test_key().await;
    let ws = salesforce_workspace(&fake);
    let mut batch = leads(3, "Acme");
    batch[1]["lastName"] = Value::Null;
    fake.seed_duplicate("v0002");
    ws.import(&batch);
    let daemon = ws.start();
    wait_until("two dead letters", 30, || ws.dead_letters().len() == 2).await;
    wait_until("one record", 30, || fake.records().len() == 1).await;
    let state = sync_state(&ws);
    let (id, synced, _, _) = &state["v0000"];
    assert!(id.is_some() && *synced);
    let (id, synced, _, error) = &state["v0001"];
    assert!(
        id.is_none() && !synced,
        "a failure never marks the lead as synced"
    );
    assert!(error.as_deref().unwrap().contains("REQUIRED_FIELD_MISSING"));
    let (_, _, _, error) = &state["v0002"];
    assert!(error.as_deref().unwrap().contains("several records"));
    assert!(daemon.terminate().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn connectors_check_reports_each_connector() {
    let hs = HubSpotFake::start().await;
    let sf = SalesforceFake::start_with_test_key().await;
    let ws = salesforce_workspace(&sf);
    let mut config = std::fs::read_to_string(ws.config()).unwrap();
    config.push_str(&format!(
        r#"
[connectors.hs]
kind = "hubspot"
base_url = "{}"
token = "${{OIE_TEST_HUBSPOT_TOKEN}}"

[connectors.hs_wrong]
kind = "hubspot"
base_url = "{}"
token = "${{OIE_TEST_HUBSPOT_WRONG}}"
"#,
        hs.base, hs.base
    ));
    std::fs::write(ws.config(), config).unwrap();
    let out = ws.oie(&["connectors", "check"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("crm (salesforce): ok — authenticated; Lead has OIE_Visitor_Id__c"),
        "{text}"
    );
    assert!(text.contains("hs (hubspot): ok — authenticated"), "{text}");
    assert!(
        text.contains("hs_wrong (hubspot): FAILED — auth: HTTP 401"),
        "{text}"
    );
    assert!(!text.contains("pat-wrong-secret-value"));
    assert_eq!(
        sf.records().len() + hs.contacts().len(),
        0,
        "checks write nothing"
    );
}

#[test]
fn routes_test_shows_the_exact_input() {
    let ws = workspace(&format!(
        r#"{}
[connectors.crm]
kind = "hubspot"
token = "${{OIE_TEST_HUBSPOT_TOKEN}}"

[connectors.crm.properties]
oie_intent_score = "{{{{lead.intentScore}}}}"
"#,
        header(500)
    ));
    std::fs::write(ws.path("lead.json"), leads(1, "Acme")[0].to_string()).unwrap();
    let out = ws.oie(&[
        "routes",
        "test",
        "--lead",
        ws.path("lead.json").to_str().unwrap(),
        "--trigger",
        "sync",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains(r#""idProperty": "email""#), "{text}");
    assert!(text.contains(r#""oie_intent_score": "20""#), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn hubspot_refusing_the_token_for_a_few_seconds_loses_nothing() {
    let fake = HubSpotFake::start().await;
    let ws = workspace(&hubspot_config(&fake, ""));
    // The private-app token is being rotated: 401 to everything for 3 s.
    fake.refuse_tokens_for(Duration::from_secs(3));
    ws.import(&leads(500, "Acme"));
    let daemon = ws.start();
    wait_until("parked", 10, || {
        ws.connector_status("crm")["state"] == "parked"
    })
    .await;
    assert_eq!(ws.connector_status("crm")["reason"], "auth");
    wait_until("500 contacts written back", 30, || all_synced(&ws, 500)).await;
    assert_eq!(fake.contacts().len(), 500);
    assert!(ws.dead_letters().is_empty(), "nothing dead-lettered");
    assert!(
        sync_state(&ws)
            .values()
            .all(|(_, _, _, error)| error.is_none()),
        "no lead got lastError for a problem of the connector"
    );
    assert!(
        (1..=8).contains(&fake.refused()),
        "probes, not one request per batch: {}",
        fake.refused()
    );
    assert_eq!(
        fake.upsert_calls(),
        6,
        "the probe that got through carried one lead, then 499 in 5 calls"
    );
    assert_eq!(ws.connector_status("crm")["state"], "ok");
    assert!(daemon.terminate().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn salesforce_refusing_tokens_for_a_few_seconds_loses_nothing() {
    let fake = SalesforceFake::start_with_test_key().await;
    let ws = salesforce_workspace(&fake);
    // The app's certificate is being rotated: sessions revoked, new tokens refused for 3 s.
    fake.refuse_tokens_for(Duration::from_secs(3));
    ws.import(&leads(400, "Acme"));
    let daemon = ws.start();
    wait_until("parked", 10, || {
        ws.connector_status("crm")["state"] == "parked"
    })
    .await;
    let status = ws.connector_status("crm");
    assert_eq!(status["reason"], "auth", "{status}");
    assert!(
        status["detail"].as_str().unwrap().contains("invalid_grant"),
        "{status}"
    );
    wait_until("400 records written back", 30, || all_synced(&ws, 400)).await;
    assert_eq!(fake.records().len(), 400);
    assert!(ws.dead_letters().is_empty(), "nothing dead-lettered");
    assert!(sync_state(&ws)
        .values()
        .all(|(_, _, _, error)| error.is_none()));
    assert_eq!(
        fake.collection_calls(),
        3,
        "a one-record probe, then 399 in 2 calls once a token is granted"
    );
    assert!(daemon.terminate().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replay_after_fixing_the_mapping_sends_the_corrected_payload() {
    let fake = HubSpotFake::start().await;
    // A typo in the mapping: HubSpot refuses the unknown property, input by input.
    let broken = hubspot_config(&fake, "").replace(
        "oie_visitor_id = \"{{lead.visitorId}}\"",
        "oie_visitorid = \"{{lead.visitorId}}\"",
    );
    let ws = workspace(&broken);
    ws.import(&leads(3, "Acme"));
    let daemon = ws.start();
    wait_until("three dead letters", 20, || ws.dead_letters().len() == 3).await;
    let letter = &ws.dead_letters()[0];
    assert_eq!(letter["reason"], "invalid_item", "{letter}");
    assert!(
        letter["error"].as_str().unwrap().contains("oie_visitorid"),
        "{letter}"
    );
    // Fix the config; a dry run shows the payload sent before beside the one a replay sends.
    std::fs::write(ws.config(), hubspot_config(&fake, "")).unwrap();
    let dry = ws.oie(&["deadletters", "replay", "--all", "--dry-run"]);
    let text = String::from_utf8_lossy(&dry.stdout);
    assert!(dry.status.success(), "{text}");
    let first = text.split("dead letter ").nth(1).expect("the first letter");
    let (before, now) = first.split_once("would send now:").expect("both payloads");
    assert!(before.contains("\"oie_visitorid\""), "{text}");
    assert!(
        now.contains("\"oie_visitor_id\"") && !now.contains("\"oie_visitorid\""),
        "{text}"
    );
    assert!(text.contains("would requeue 3 dead letter(s)"), "{text}");
    assert_eq!(ws.dead_letters().len(), 3, "a dry run changes nothing");

    let out = ws.oie(&["deadletters", "replay", "--all"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_until("three contacts", 20, || fake.contacts().len() == 3).await;
    let contact = fake.contact("lead0000@acme.example").unwrap();
    assert_eq!(contact.properties["oie_visitor_id"], "v0000");
    assert!(ws.dead_letters().is_empty());
    assert!(daemon.terminate().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn five_changes_of_a_lead_inside_the_batch_window_are_one_input() {
    let fake = HubSpotFake::start().await;
    let ws = workspace(
        &hubspot_config(&fake, "").replace("batch_wait = \"100ms\"", "batch_wait = \"5s\""),
    );
    let daemon = ws.start();
    let lead = |score: u32| {
        json!({"visitorId": "v0001", "email": "lead0001@acme.example", "firstName": "Jane",
               "lastName": "Doe", "company": "Acme", "intentScore": score, "engagementLevel": "warm"})
    };
    let mut seen = 0;
    for (i, score) in [41, 42, 43, 44, 45].into_iter().enumerate() {
        ws.import(&[lead(score)]);
        // Each change reaches the source (and becomes a sync) before the next.
        let want = i + 1;
        let start = Instant::now();
        loop {
            let (_, m) = daemon.get("/metrics").await;
            seen = m
                .lines()
                .find_map(|l| {
                    l.strip_prefix(r#"oie_triggers_total{kind="sync",source="leads"} "#)
                        .and_then(|v| v.trim().parse::<usize>().ok())
                })
                .unwrap_or(0);
            if seen >= want {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "change {want} not seen"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    wait_until("the contact written back", 20, || all_synced(&ws, 1)).await;
    assert_eq!(seen, 5);
    assert_eq!(fake.upsert_calls(), 1, "five changes, one CRM write");
    let contact = fake.contact("lead0001@acme.example").unwrap();
    assert_eq!(
        contact.properties["oie_intent_score"], "45",
        "the newest change"
    );
    assert_eq!(contact.updates, 0, "created once, never updated");
    let (_, metrics) = daemon.get("/metrics").await;
    assert!(
        metrics.contains(
            r#"oie_deliveries_total{connector="crm",outcome="superseded",reason="superseded",route="crm"} 4"#
        ),
        "{metrics}"
    );
    assert!(daemon.terminate().success());
}
