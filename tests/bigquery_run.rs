//! Black-box cloud mode on the BigQuery emulator: `oie bigquery apply` → events inserted →
//! the scoring SQL run → `oie run` (store = BigQuery) polls → a webhook receiver gets each hot
//! lead once and the HubSpot fake each lead once → outcomes land in `crm_sync_log` and, after
//! `oie`'s fold, in `crm_sync_state`. A later scoring run hands over only the lead that changed;
//! a second replica computes the same idempotency keys.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use axum::response::IntoResponse;
use common::warehouse::{emulator, events, fixture, BigQuery, Row, Warehouse};
use common::{Receiver, Workspace};
use oie_fakes::google::GoogleTokenFake;
use oie_fakes::hubspot::{self, HubSpotFake};
use serde_json::json;

/// A workspace whose `oie` processes get the HubSpot fake's token.
fn workspace(config: &str) -> Workspace {
    let ws = Workspace::new(config);
    ws.env("OIE_TEST_BQ_HUBSPOT_TOKEN", hubspot::TOKEN);
    ws
}

/// A cloud-mode workspace, with the webhook receiver and HubSpot fake its config names, whose
/// dataset (`<name>_<pid>`) `oie bigquery apply` made on `bigquery` (the emulator, or a proxy
/// in front of it).
struct Cloud {
    ws: Workspace,
    receiver: Receiver,
    crm: HubSpotFake,
    dataset: String,
}

fn cloud(rt: &tokio::runtime::Runtime, bigquery: &str, name: &str) -> Cloud {
    let receiver = rt.block_on(Receiver::start(&[]));
    let crm = rt.block_on(HubSpotFake::start());
    let dataset = format!("{name}_{}", std::process::id());
    let ws = workspace(&config(bigquery, &dataset, &receiver, &crm));
    let out = ws.oie(&["bigquery", "apply"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Cloud {
        ws,
        receiver,
        crm,
        dataset,
    }
}

fn config(endpoint: &str, dataset: &str, receiver: &Receiver, crm: &HubSpotFake) -> String {
    format!(
        r#"
[engine]
log_level = "oie=debug,info"
shutdown_timeout = "5s"

[server]
listen = "127.0.0.1:0"

[store]
kind = "bigquery"
project = "test-proj"
dataset = "{dataset}"
endpoint = "{endpoint}"
fold_interval = "1s"

[sources.leads]
interval = "300ms"
batch_size = 4                       # pages of 4: 5 alerts and 38 profiles span several pages

[delivery]
max_attempts = 5
backoff_base = "100ms"
backoff_max = "400ms"

[[routes]]
name = "hot"
when = 'trigger.kind == "hot_lead"'
to = ["hook"]

[[routes]]
name = "crm"
when = 'trigger.kind == "sync" && lead.email != null'
to = ["crm"]

[connectors.hook]
kind = "webhook"
url = "{}"

[connectors.crm]
kind = "hubspot"
base_url = "{}"
token = "${{OIE_TEST_BQ_HUBSPOT_TOKEN}}"
batch_wait = "100ms"

[connectors.crm.properties]
oie_intent_score = "{{{{lead.intentScore}}}}"
oie_visitor_id = "{{{{lead.visitorId}}}}"
"#,
        receiver.url("hook"),
        crm.base
    )
}

fn wait(what: &str, secs: u64, ws: &Workspace, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "timed out waiting for {what}\n{}",
            ws.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn text<'a>(row: &'a Row, column: &str) -> &'a str {
    row.get(column).and_then(|v| v.as_deref()).unwrap_or("")
}

/// The fixture's visitors (every one with an e-mail), scored at `now`; returns the expected
/// level per visitor.
fn load(bq: &mut BigQuery, now: i64) -> HashMap<String, String> {
    let f = fixture();
    let mut all = Vec::new();
    let mut levels = HashMap::new();
    for v in f["visitors"].as_array().unwrap() {
        let id = v["id"].as_str().unwrap();
        all.extend(events(Some(id), &v["events"], now, now));
        bq.insert_identity(
            &json!({"shortId": id, "email": format!("{id}@example.com"), "firstName": id}),
        );
        levels.insert(id.to_string(), v["level"].as_str().unwrap().to_string());
    }
    bq.insert_events(&all);
    for step in 1..=3 {
        bq.run(step, now);
    }
    levels
}

#[test]
fn cloud_mode_polls_delivers_once_and_writes_back() {
    let Some(endpoint) = emulator() else { return };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let Cloud {
        ws,
        receiver,
        crm,
        dataset,
    } = cloud(&rt, &endpoint, "run");
    let leads = ws.path("leads.jsonl");
    std::fs::write(&leads, "{\"visitorId\": \"x1\"}\n").unwrap();
    let out = ws.oie(&["leads", "import", leads.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("leads live in BigQuery"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut bq = BigQuery::existing(&endpoint, &dataset);
    let now = oie::clock::now_ms();
    let levels = load(&mut bq, now);
    let hot: BTreeSet<String> = levels
        .iter()
        .filter(|(_, l)| *l == "hot" || *l == "burning")
        .map(|(v, _)| v.clone())
        .collect();
    assert_eq!(hot.len(), 5, "the fixture's hot and burning visitors");

    let daemon = ws.start();
    wait(
        "every lead in HubSpot and every hot lead at the webhook",
        60,
        &ws,
        || crm.contacts().len() == levels.len() && receiver.hits("hook").len() >= hot.len(),
    );
    wait("crm_sync_state folded", 60, &ws, || {
        bq.select("SELECT visitorId FROM {}crm_sync_state WHERE syncedToCRM")
            .len()
            == levels.len()
    });
    std::thread::sleep(Duration::from_secs(1));

    // Each hot lead once, keyed by its alert.
    let hits = receiver.hits("hook");
    let visitors: BTreeSet<String> = hits.iter().map(|h| h.visitor()).collect();
    assert_eq!(visitors, hot);
    assert_eq!(hits.len(), hot.len(), "no hot lead twice");
    let first_ids: BTreeSet<String> = hits.iter().map(|h| h.id()).collect();
    assert_eq!(first_ids.len(), hot.len());
    for h in &hits {
        assert_eq!(h.body["data"]["trigger"]["kind"], "hot_lead");
    }

    // Every lead once in the CRM; the log and the folded state hold HubSpot's ids.
    let log = bq.select("SELECT deliveryId, visitorId, connector, success, crmContactId, error FROM {}crm_sync_log ORDER BY visitorId");
    assert_eq!(log.len(), levels.len(), "one outcome per lead");
    let state = bq.select("SELECT visitorId, connector, crmContactId, syncedToCRM, lastSyncedAt, lastError FROM {}crm_sync_state ORDER BY visitorId");
    assert_eq!(state.len(), levels.len());
    for (l, s) in log.iter().zip(&state) {
        let visitor = text(l, "visitorId");
        let contact = crm.contact(&format!("{visitor}@example.com")).unwrap();
        assert_eq!(text(l, "success"), "1");
        assert_eq!(text(l, "connector"), "crm");
        assert_eq!(text(l, "crmContactId"), contact.id);
        assert_eq!(text(s, "visitorId"), visitor);
        assert_eq!(text(s, "crmContactId"), contact.id, "{visitor}");
        assert_eq!(text(s, "syncedToCRM"), "1");
        assert_eq!(text(s, "lastError"), "");
        assert_eq!(contact.updates, 0);
    }

    // A new event for one lead and the next scoring run, which rescores every recent visitor:
    // only the leads whose profile changed are handed over again.
    let updated_at = |bq: &mut BigQuery| -> HashMap<String, String> {
        bq.select("SELECT visitorId, updatedAt FROM {}lead_profiles")
            .iter()
            .map(|r| {
                (
                    text(r, "visitorId").to_string(),
                    text(r, "updatedAt").to_string(),
                )
            })
            .collect()
    };
    let before = updated_at(&mut bq);
    let later = events(
        Some("v01"),
        &json!([["s9", "+30s", "pageview", "/pricing", null, "v01-later"]]),
        now,
        now + 30_000,
    );
    bq.insert_events(&later);
    for step in 1..=3 {
        bq.run(step, now + 60_000);
    }
    let after = updated_at(&mut bq);
    let changed: BTreeSet<String> = after
        .iter()
        .filter(|(v, at)| before.get(*v) != Some(*at))
        .map(|(v, _)| format!("{v}@example.com"))
        .collect();
    assert!(changed.contains("v01@example.com"), "{changed:?}");
    assert!(changed.len() < levels.len() / 2, "{changed:?}");
    wait("the changed leads updated in HubSpot", 60, &ws, || {
        crm.contacts().values().filter(|c| c.updates > 0).count() == changed.len()
    });
    std::thread::sleep(Duration::from_secs(2));
    let updated: BTreeSet<String> = crm
        .contacts()
        .into_iter()
        .filter(|(_, c)| c.updates > 0)
        .map(|(email, _)| email)
        .collect();
    assert_eq!(updated, changed, "only the changed leads, once each");
    assert!(crm.contacts().values().all(|c| c.updates <= 1));
    assert_eq!(
        receiver.hits("hook").len(),
        hot.len(),
        "no new rise, no new alert"
    );
    wait("the update's outcome folded", 60, &ws, || {
        bq.select("SELECT visitorId FROM {}crm_sync_log WHERE visitorId = 'v01'")
            .len()
            == 2
    });
    assert!(ws.dead_letters().is_empty());
    assert!(daemon.terminate().success());

    // A restart reads on from its cursors: nothing is handed over twice.
    let calls = crm.upsert_calls();
    let daemon = ws.start();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(receiver.hits("hook").len(), hot.len());
    assert_eq!(crm.upsert_calls(), calls);
    assert!(daemon.terminate().success());

    // A second replica (its own data dir) computes the same idempotency keys for the same
    // alerts, so a receiver that de-duplicates by webhook-id sees each moment once.
    let replica = workspace(&config(&endpoint, &dataset, &receiver, &crm));
    let daemon = replica.start();
    wait("the replica's hot leads", 60, &replica, || {
        receiver.hits("hook").len() >= 2 * hot.len()
    });
    assert!(daemon.terminate().success());
    let all_ids: BTreeSet<String> = receiver.hits("hook").iter().map(|h| h.id()).collect();
    assert_eq!(all_ids, first_ids, "the same webhook-id for the same alert");
    drop(rt);
}

#[test]
fn a_service_account_key_signs_in_once_per_process_and_a_wrong_key_is_refused() {
    let Some(endpoint) = emulator() else { return };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let google = rt.block_on(GoogleTokenFake::start());
    let dataset = format!("sa_{}", std::process::id());
    let ws = workspace(&format!(
        r#"
[engine]
log_level = "oie=debug,info"

[server]
listen = "127.0.0.1:0"

[store]
kind = "bigquery"
project = "test-proj"
dataset = "{dataset}"
endpoint = "{endpoint}"
credentials_file = "sa.json"
fold_interval = "200ms"

[sources.leads]
interval = "200ms"

[[routes]]
name = "hot"
to = ["out"]

[connectors.out]
kind = "file"
path = "out.jsonl"
"#
    ));
    google.key_file(&ws.path("sa.json"));
    let out = ws.oie(&["bigquery", "apply"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        google.granted(),
        vec!["https://www.googleapis.com/auth/bigquery".to_string()]
    );

    // Many polls and folds, one token.
    let daemon = ws.start();
    let start = Instant::now();
    while ws.logs().matches("folded into crm_sync_state").count() < 5 {
        assert!(start.elapsed() < Duration::from_secs(30), "{}", ws.logs());
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(daemon.terminate().success());
    assert_eq!(google.granted().len(), 2, "one token per process");
    assert!(!ws.logs().contains("failed"), "{}", ws.logs());

    // A key the account does not have: refused, and the error says so without the key.
    let wrong = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fakes/keys/wrong_private.pem"),
    )
    .unwrap();
    let mut key: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ws.path("sa.json")).unwrap()).unwrap();
    key["private_key"] = json!(wrong);
    std::fs::write(ws.path("sa.json"), key.to_string()).unwrap();
    let out = ws.oie(&["bigquery", "apply"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(google.refused().len(), 1, "{stderr}");
    assert!(
        stderr.contains("invalid_grant") || stderr.contains("Invalid JWT"),
        "{stderr}"
    );
    assert!(!stderr.contains("PRIVATE KEY"), "{stderr}");
    drop(rt);
}

/// An erasure the Worker recorded (by a hash of the id) is carried out by `oie run`: the
/// visitor's rows leave every table, its deliveries the outbox, and the request is marked done
/// with the counts; other visitors keep theirs. `oie visitors erase` does the same without a
/// daemon.
#[test]
fn cloud_mode_erases_what_the_worker_recorded() {
    let Some(endpoint) = emulator() else { return };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let Cloud {
        ws,
        // Kept alive for the daemon's deliveries.
        receiver: _receiver,
        crm: _crm,
        dataset,
    } = cloud(&rt, &endpoint, "erase");
    let mut bq = BigQuery::existing(&endpoint, &dataset);
    let now = oie::clock::now_ms();
    let levels = load(&mut bq, now);
    let mut hot: Vec<&String> = levels
        .iter()
        .filter(|(_, l)| *l == "hot" || *l == "burning")
        .map(|(v, _)| v)
        .collect();
    hot.sort();
    let (gone, kept, later) = (hot[0].clone(), hot[1].clone(), hot[2].clone());
    bq.insert_all(
        "email_clicks",
        vec![
            json!({"clickId": "c1", "visitorId": gone, "target": "/pricing", "timestamp": now,
                    "clickedAt": oie::routing::trigger_rfc3339(now)}),
        ],
    );
    let daemon = ws.start();
    wait("every lead synced and folded", 60, &ws, || {
        bq.select("SELECT visitorId FROM {}crm_sync_state WHERE syncedToCRM")
            .len()
            == levels.len()
    });
    let count = |bq: &mut BigQuery, visitor: &str| -> Vec<(String, usize)> {
        [
            ("events", "visitorId"),
            ("sessions", "visitorId"),
            ("lead_profiles", "visitorId"),
            ("identity_map", "shortId"),
            ("email_clicks", "visitorId"),
            ("hot_lead_alerts", "visitorId"),
            ("crm_sync_log", "visitorId"),
            ("crm_sync_state", "visitorId"),
        ]
        .iter()
        .map(|(t, c)| {
            let n = bq
                .select(&format!(
                    "SELECT 1 AS x FROM {{}}{t} WHERE {c} = '{visitor}'"
                ))
                .len();
            (t.to_string(), n)
        })
        .filter(|(_, n)| *n > 0)
        .collect()
    };
    assert!(
        count(&mut bq, &gone).len() >= 7,
        "{:?}",
        count(&mut bq, &gone)
    );
    let before_kept = count(&mut bq, &kept);
    // What the Worker's DELETE /visitors/{id} writes.
    let hash = oie::erasure::visitor_hash(&gone);
    bq.insert_all(
        "erasure_requests",
        vec![
            json!({"visitorHash": hash, "requestedAt": now, "erased": "{\"identity\":true}",
                    "requestTime": oie::routing::trigger_rfc3339(now)}),
        ],
    );
    wait("the request marked done", 60, &ws, || {
        !bq.select(&format!(
            "SELECT deleted FROM {{}}erasure_requests WHERE visitorHash = '{hash}' AND doneAt IS NOT NULL"
        ))
        .is_empty()
    });
    assert_eq!(count(&mut bq, &gone), Vec::<(String, usize)>::new());
    assert_eq!(
        count(&mut bq, &kept),
        before_kept,
        "another visitor keeps everything"
    );
    let done = bq.select(&format!(
        "SELECT deleted FROM {{}}erasure_requests WHERE visitorHash = '{hash}'"
    ));
    let deleted: serde_json::Value = serde_json::from_str(text(&done[0], "deleted")).unwrap();
    assert_eq!(deleted["lead_profiles"], 1, "{deleted}");
    assert_eq!(deleted["email_clicks"], 1, "{deleted}");
    let outbox = rusqlite::Connection::open(ws.path("data/outbox.db")).unwrap();
    let left: i64 = outbox
        .query_row(
            "SELECT COUNT(*) FROM deliveries WHERE visitor_id = ?1",
            [&gone],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(left, 0, "the outbox forgets the visitor too");
    drop(daemon);

    // The command, with no daemon: one pass of its own.
    let out = ws.oie(&["visitors", "erase", &later]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("from every BigQuery table"));
    assert_eq!(count(&mut bq, &later), Vec::<(String, usize)>::new());
}

/// BigQuery refuses DML on rows streamed in the last ~30–90 minutes. The emulator does not,
/// so a proxy in front of it answers the first two DELETEs on `events` as BigQuery would: the
/// erasure deletes what it can, waits, and finishes on a later pass without doing twice what
/// it did.
#[test]
fn erasure_waits_for_the_streaming_buffer() {
    let Some(endpoint) = emulator() else { return };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let proxy = rt.block_on(streaming_buffer_proxy(&endpoint, 2));
    let Cloud {
        ws,
        // Kept alive for the daemon's deliveries.
        receiver: _receiver,
        crm: _crm,
        dataset,
    } = cloud(&rt, &proxy, "buffer");
    let mut bq = BigQuery::existing(&endpoint, &dataset);
    let levels = load(&mut bq, oie::clock::now_ms());
    let visitor = levels.keys().min().unwrap().clone();
    let rows = |bq: &mut BigQuery, table: &str| {
        bq.select(&format!(
            "SELECT 1 AS x FROM {{}}{table} WHERE visitorId = '{visitor}'"
        ))
        .len()
    };
    assert!(rows(&mut bq, "events") > 0 && rows(&mut bq, "lead_profiles") == 1);
    let erase = || {
        let out = ws.oie(&["visitors", "erase", &visitor]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    assert!(erase().contains("where BigQuery allows"));
    assert!(
        rows(&mut bq, "events") > 0,
        "the streaming buffer holds them"
    );
    assert_eq!(
        rows(&mut bq, "lead_profiles"),
        0,
        "the other tables are done"
    );
    assert!(erase().contains("where BigQuery allows"), "still buffered");
    assert!(erase().contains("from every BigQuery table"));
    assert_eq!(rows(&mut bq, "events"), 0);
    let requests = bq.select("SELECT deleted FROM {}erasure_requests WHERE doneAt IS NOT NULL");
    assert_eq!(
        requests.len(),
        3,
        "every request for the visitor marked done"
    );
    let deleted: serde_json::Value = serde_json::from_str(text(&requests[0], "deleted")).unwrap();
    assert_eq!(deleted["lead_profiles"], 1, "counted once: {deleted}");
    assert!(deleted["events"].as_i64().unwrap() > 0, "{deleted}");
}

/// Forwards to the emulator; the first `refusals` DELETEs on `events` get BigQuery's
/// streaming-buffer error.
async fn streaming_buffer_proxy(emulator: &str, refusals: usize) -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let target = emulator.trim_end_matches('/').to_string();
    let left = Arc::new(AtomicUsize::new(refusals));
    let client = reqwest::Client::new();
    let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
        let (target, left, client) = (target.clone(), left.clone(), client.clone());
        async move {
            let (parts, body) = request.into_parts();
            let body = axum::body::to_bytes(body, 64 << 20).await.unwrap();
            let text = String::from_utf8_lossy(&body);
            if text.contains("DELETE FROM") && text.contains(".events`")
                && left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok()
            {
                let error = json!({"error": {"code": 400, "status": "INVALID_ARGUMENT",
                    "message": "UPDATE or DELETE statement over table test-proj.x.events would affect rows in the streaming buffer, which is not supported",
                    "errors": [{"reason": "invalidQuery", "message": "would affect rows in the streaming buffer"}]}});
                return (axum::http::StatusCode::BAD_REQUEST, axum::Json(error)).into_response();
            }
            let uri = format!("{target}{}", parts.uri.path_and_query().map_or("", |p| p.as_str()));
            let answer = client
                .request(parts.method, uri)
                .headers(parts.headers)
                .body(body)
                .send()
                .await
                .unwrap();
            let status = answer.status();
            let headers = answer.headers().clone();
            let bytes = answer.bytes().await.unwrap();
            let mut response = axum::response::Response::new(axum::body::Body::from(bytes));
            *response.status_mut() = status;
            if let Some(t) = headers.get("content-type") {
                response.headers_mut().insert("content-type", t.clone());
            }
            response
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// Not a fit on a BigQuery store: the lead's `lead_profiles` row is marked by a DML update (its
/// rows come from the scoring MERGE, never from the streaming buffer) and `updatedAt` moves, so
/// the change is synced like any other.
#[test]
fn not_a_fit_marks_the_bigquery_profile() {
    let Some(endpoint) = emulator() else { return };
    let dataset = format!("dq_{}", std::process::id());
    let mut bq = BigQuery::new(&endpoint, &dataset);
    let now = oie::clock::now_ms();
    load(&mut bq, now);
    let config: oie::config::StoreConfig = toml::from_str(&format!(
        "kind = \"bigquery\"\nproject = \"test-proj\"\ndataset = \"{dataset}\"\nendpoint = \"{endpoint}\"\n"
    ))
    .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        use oie::store::LeadStore;
        let store = std::sync::Arc::new(oie::store::BigQueryStore::connect(&config).await.unwrap());
        store.disqualify("v32", "U0ADA", now + 1_000).await.unwrap();
    });
    let row = bq.select("SELECT disqualified, disqualifiedBy, disqualifiedAt, UNIX_MILLIS(updatedAt) AS u FROM {}lead_profiles WHERE visitorId = 'v32'");
    // BigQuery answers BOOL as "true"; the emulator as "1".
    assert!(
        matches!(row[0]["disqualified"].as_deref(), Some("true" | "1")),
        "{row:?}"
    );
    assert_eq!(row[0]["disqualifiedBy"].as_deref(), Some("U0ADA"));
    assert_eq!(row[0]["disqualifiedAt"], Some((now + 1_000).to_string()));
    assert_eq!(row[0]["u"], Some((now + 1_000).to_string()));
    let others = bq.select("SELECT COUNT(*) AS n FROM {}lead_profiles WHERE disqualified");
    assert_eq!(others[0]["n"].as_deref(), Some("1"));
}

/// Accounts in cloud mode: the scheduled queries (steps 1, 2, 6, 3) roll three Globex people up
/// into a burning account; `oie run` hands over one `account_hot` (with the engaged people) and
/// the people's own alerts carry their account; a free-mail person has none; the HubSpot fake
/// gets the account as a company.
#[test]
fn cloud_mode_alerts_accounts() {
    let Some(endpoint) = emulator() else { return };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let receiver = rt.block_on(Receiver::start(&[]));
    let crm = rt.block_on(HubSpotFake::start());
    let dataset = format!("accounts_{}", std::process::id());
    let config = config(&endpoint, &dataset, &receiver, &crm).replace(
        "listen = \"127.0.0.1:0\"\n",
        "listen = \"127.0.0.1:0\"\nadmin_token = \"${OIE_TEST_BQ_API_TOKEN}\"\n",
    ) + "\n[[routes]]\nname = \"accounts\"\nwhen = 'trigger.kind == \"account_hot\" || trigger.kind == \"account_sync\"'\nto = [\"hook\", \"crm\"]\n";
    let ws = workspace(&config);
    ws.env("OIE_TEST_BQ_API_TOKEN", "bq-api-token");
    let out = ws.oie(&["bigquery", "apply"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut bq = BigQuery::existing(&endpoint, &dataset);
    let now = oie::clock::now_ms();
    let f = fixture();
    let people = [
        ("v21", "ann@globex.example"),
        ("v23", "bo@globex.example"),
        ("v24", "cy@globex.example"),
        ("v28", "big.spender@gmail.com"),
    ];
    let mut all = Vec::new();
    for (id, email) in people {
        let v = f["visitors"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["id"] == id)
            .unwrap();
        all.extend(events(Some(id), &v["events"], now, now));
        bq.insert_identity(
            &json!({"shortId": id, "email": email, "firstName": id, "company": "Globex"}),
        );
    }
    bq.insert_events(&all);
    for step in [1, 2, 7, 6, 3] {
        bq.run(step, now);
    }
    let daemon = ws.start();
    wait("the account alert and both people's", 60, &ws, || {
        let hits = receiver.hits("hook");
        hits.iter().any(|h| h.body["type"] == "oie.account_hot")
            && hits
                .iter()
                .filter(|h| h.body["type"] == "oie.hot_lead")
                .count()
                == 2
    });
    let hits = receiver.hits("hook");
    let account = hits
        .iter()
        .find(|h| h.body["type"] == "oie.account_hot")
        .unwrap();
    let a = &account.body["data"]["account"];
    assert_eq!(a["accountDomain"], "globex.example");
    assert_eq!(a["accountScore"], 85);
    assert_eq!(a["engagedPeople"], 3);
    assert_eq!(account.body["data"]["trigger"]["level"], "burning");
    let engaged: Vec<&str> = a["engaged"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["visitorId"].as_str().unwrap())
        .collect();
    assert_eq!(engaged, ["v21", "v23", "v24"]);
    let person = |id: &str| {
        hits.iter()
            .find(|h| h.body["type"] == "oie.hot_lead" && h.body["data"]["lead"]["visitorId"] == id)
            .map(|h| h.body["data"]["account"].clone())
            .unwrap()
    };
    assert_eq!(person("v21")["accountDomain"], "globex.example");
    assert_eq!(person("v21")["othersThisWeek"], 2);
    assert_eq!(
        person("v28"),
        serde_json::Value::Null,
        "free mail: no account"
    );
    wait("the company in HubSpot", 60, &ws, || {
        crm.companies().contains_key("globex.example")
    });
    assert_eq!(
        crm.companies()["globex.example"].properties["name"],
        "Globex"
    );
    std::thread::sleep(Duration::from_secs(1));
    let account_alerts = receiver
        .hits("hook")
        .iter()
        .filter(|h| h.body["type"] == "oie.account_hot")
        .count();
    assert_eq!(account_alerts, 1, "one account alert");

    // The operator's API reads BigQuery for who the leads are and what they did.
    let get = |path: &str| {
        let url = format!("{}{path}", daemon.base);
        rt.block_on(async move {
            let r = reqwest::Client::new()
                .get(url)
                .bearer_auth("bq-api-token")
                .send()
                .await
                .unwrap();
            (
                r.status().as_u16(),
                r.json::<serde_json::Value>().await.unwrap(),
            )
        })
    };
    let (status, now) = get("/api/v1/now");
    assert_eq!(status, 200, "{now}");
    let kinds: BTreeSet<String> = now["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            format!(
                "{}:{}",
                i["kind"].as_str().unwrap(),
                i["name"].as_str().unwrap()
            )
        })
        .collect();
    assert!(kinds.contains("account:Globex"), "{kinds:?}");
    let (status, page) = get("/api/v1/leads/v21");
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["lead"]["email"], "ann@globex.example");
    assert_eq!(page["account"]["accountDomain"], "globex.example");
    assert!(!page["sessions"].as_array().unwrap().is_empty(), "{page}");
    assert!(
        !page["sessions"][0]["events"].as_array().unwrap().is_empty(),
        "{page}"
    );
    assert_eq!(page["levels"][0]["level"], "hot");
    let (status, page) = get("/api/v1/leads/account:globex.example");
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["account"]["engagedPeople"], 3);
    assert!(daemon.terminate().success());
    drop(rt);
}
