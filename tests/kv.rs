//! Black-box: `oie run` keeping a Workers KV namespace (the Cloudflare API fake) in step — a
//! value per lead in bulk writes, a change written once, an erasure deleted, and an API that
//! fails and throttles first loses nothing.

mod common;

use std::time::Duration;

use common::{wait_until, Workspace};
use oie_fakes::cloudflare::{self, CloudflareFake};
use serde_json::{json, Value};

const NS: &str = "5a3f0c1e9b7d4e2f8a6c1b0d9e8f7a6b";

/// What both tests' configs start with: a daemon on a free port reading leads every 100 ms.
const HEADER: &str = r#"
[engine]
shutdown_timeout = "5s"

[server]
listen = "127.0.0.1:0"

[sources.leads]
interval = "100ms"
"#;

/// A workspace whose `oie` processes get the fake's token as `OIE_TEST_CF_TOKEN`.
fn with_token(config: &str) -> Workspace {
    let ws = Workspace::new(config);
    ws.env("OIE_TEST_CF_TOKEN", cloudflare::TOKEN);
    ws
}

fn workspace(fake: &CloudflareFake) -> Workspace {
    let config = format!(
        r#"{HEADER}
[delivery]
backoff_base = "100ms"
backoff_max = "400ms"

[[routes]]
name = "personalization"
when = 'trigger.kind == "sync" || trigger.kind == "erasure"'
to = ["kv"]

[connectors.kv]
kind = "cloudflare_kv"
account_id = "{}"
namespace_id = "{NS}"
api_token = "${{OIE_TEST_CF_TOKEN}}"
base_url = "{}"
batch_wait = "200ms"
expiration_ttl = "90d"
"#,
        cloudflare::ACCOUNT,
        fake.base
    );
    with_token(&config)
}

fn leads(n: usize, company: &str) -> Vec<Value> {
    (0..n)
        .map(|i| {
            json!({"visitorId": format!("v{i:04}"), "email": format!("lead{i:04}@acme.example"),
                   "firstName": "Jane", "lastName": format!("Doe{i}"), "company": company,
                   "campaignName": "Q4 Outbound", "intentScore": 40, "engagementLevel": "warm"})
        })
        .collect()
}

fn value(fake: &CloudflareFake, key: &str) -> Option<Value> {
    fake.value(NS, key)
        .map(|s| serde_json::from_str(&s.value).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_follows_the_leads_and_their_erasure() {
    let fake = CloudflareFake::start(&[NS]).await;
    // The API is down for a moment, then throttles: nothing may be lost or dead-lettered.
    fake.fail_next(&[503, 429]);
    let ws = workspace(&fake);
    ws.import(&leads(500, "Acme"));
    let daemon = ws.start();

    wait_until("500 values in KV", 30, || fake.keys(NS) == 500).await;
    assert_eq!(
        value(&fake, "v0007").unwrap(),
        json!({"firstName": "Jane", "company": "Acme", "campaignName": "Q4 Outbound", "level": "warm"})
    );
    assert_eq!(
        fake.value(NS, "v0007").unwrap().expiration_ttl,
        Some(90 * 86_400)
    );
    let (writes, deletes) = fake.calls();
    assert!(
        (1..=3).contains(&writes),
        "500 leads in {writes} bulk writes"
    );
    assert_eq!(deletes, 0);

    // One lead changes: one more write, carrying that lead.
    let mut changed = leads(8, "Acme");
    changed[7]["company"] = json!("Acme Corp");
    ws.import(&changed[7..]);
    wait_until("the changed value", 20, || {
        value(&fake, "v0007").is_some_and(|v| v["company"] == "Acme Corp")
    })
    .await;
    assert_eq!(fake.calls().0, writes + 1);

    let out = ws.oie(&["visitors", "erase", "v0007"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_until("the erased key gone", 20, || {
        fake.value(NS, "v0007").is_none()
    })
    .await;
    assert_eq!(fake.calls().1, 1);
    assert_eq!(fake.keys(NS), 499);

    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(ws.dead_letters().is_empty(), "{:?}", ws.dead_letters());
    assert!(
        !ws.logs().contains(cloudflare::TOKEN),
        "the token never reaches a log"
    );
    drop(daemon);
}

const IDS: &str = "9b1d2c3e4f5a6b7c8d9e0f1a2b3c4d5e";

/// `[connectors.ids]`: the identities namespace on `fake`.
fn identities_connector(fake: &CloudflareFake) -> String {
    format!(
        r#"[connectors.ids]
kind = "cloudflare_kv"
holds = "identities"
account_id = "{}"
namespace_id = "{IDS}"
api_token = "${{OIE_TEST_CF_TOKEN}}"
base_url = "{}"
batch_wait = "300ms"
expiration_ttl = "90d"
"#,
        cloudflare::ACCOUNT,
        fake.base
    )
}

/// `oie identities import` beside a running daemon: 25,000 identities reach the identities
/// namespace in 3 bulk writes; the same file again writes nothing; a route for everything that
/// comes first (to a file) never sees an identity, whose value carries the e-mail; erasing an
/// identity that never became a lead deletes its key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identities_reach_their_namespace_and_no_other_connector() {
    let fake = CloudflareFake::start(&[IDS]).await;
    let config = format!(
        r#"{HEADER}
[[routes]]
name = "everything"
to = ["copy"]
continue = true

[[routes]]
name = "identities"
when = 'trigger.kind == "identity" || trigger.kind == "erasure"'
to = ["ids"]

[connectors.copy]
kind = "file"
path = "copy.jsonl"

{}"#,
        identities_connector(&fake)
    );
    let ws = with_token(&config);
    let daemon = ws.start();

    let file = ws.path("identities.jsonl");
    let rows: String = (0..25_000)
        .map(|i| {
            format!(
                "{}\n",
                json!({"shortId": format!("k{:012x}", 0x5eed_0000_0000u64 + i * 7919),
                       "email": format!("p{i}@acme.example"), "firstName": "Jane",
                       "lastName": format!("Doe{i}"), "company": "Acme", "campaignName": "Q4"})
            )
        })
        .collect();
    std::fs::write(&file, rows).unwrap();
    let out = ws.oie(&["identities", "import", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("25000 identity write(s) handed to the outbox"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    wait_until("25,000 identities in KV", 60, || fake.keys(IDS) == 25_000).await;
    assert_eq!(fake.calls(), (3, 0));
    let key = format!("k{:012x}", 0x5eed_0000_0000u64 + 7 * 7919);
    let stored = fake.value(IDS, &key).unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&stored.value).unwrap(),
        json!({"email": "p7@acme.example", "firstName": "Jane", "lastName": "Doe7",
               "company": "Acme", "campaignName": "Q4"})
    );
    assert_eq!(stored.expiration_ttl, Some(90 * 86_400));

    // The same file again: nothing new to write.
    let again = ws.oie(&["identities", "import", file.to_str().unwrap()]);
    assert!(again.status.success());
    assert!(!String::from_utf8_lossy(&again.stdout).contains("handed to the outbox"));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(fake.calls(), (3, 0));

    // An identity that never became a lead is erased from KV too.
    let out = ws.oie(&["visitors", "erase", &key]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_until("the erased identity gone from KV", 20, || {
        fake.value(IDS, &key).is_none()
    })
    .await;
    assert_eq!(fake.calls(), (3, 1));

    let copy = std::fs::read_to_string(ws.path("copy.jsonl")).unwrap_or_default();
    assert!(
        !copy.contains("@acme.example"),
        "an identity reached the file connector"
    );
    assert!(ws.dead_letters().is_empty(), "{:?}", ws.dead_letters());
    drop(daemon);
}

/// Cloud mode: `oie identities import` on a BigQuery store writes `identity_map` (the BigQuery
/// emulator) and hands the KV writes to the outbox, which `oie run` sends; a second import of
/// the same file keeps the ids it generated (read back from `identity_map`) and writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identities_on_a_bigquery_store_reach_identity_map_and_kv() {
    let Some(endpoint) = common::warehouse::emulator() else {
        return;
    };
    let fake = CloudflareFake::start(&[IDS]).await;
    let dataset = format!("kv_ids_{}", std::process::id());
    let config = format!(
        r#"{HEADER}
[store]
kind = "bigquery"
project = "test-proj"
dataset = "{dataset}"
endpoint = "{endpoint}"

[[routes]]
name = "identities"
when = 'trigger.kind == "identity"'
to = ["ids"]

{}"#,
        identities_connector(&fake)
    );
    let ws = with_token(&config);
    let out = ws.oie(&["bigquery", "apply"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // 2,000 people: half bring their id, half get one generated.
    let file = ws.path("identities.csv");
    let mut csv = String::from("shortId,email,firstName,company\n");
    for i in 0..2_000u64 {
        let id = if i % 2 == 0 {
            format!("k{:012x}", 0x5eed_0000_0000u64 + i * 7919)
        } else {
            String::new()
        };
        csv.push_str(&format!("{id},p{i}@acme.example,Jane{i},Acme\n"));
    }
    std::fs::write(&file, csv).unwrap();
    let import = |out: &str| {
        let path = ws.path(out);
        let done = ws.oie(&[
            "identities",
            "import",
            file.to_str().unwrap(),
            "--out",
            path.to_str().unwrap(),
        ]);
        assert!(
            done.status.success(),
            "{}",
            String::from_utf8_lossy(&done.stderr)
        );
        (
            String::from_utf8_lossy(&done.stdout).to_string(),
            std::fs::read_to_string(path).unwrap(),
        )
    };
    let (said, ids) = import("ids.csv");
    assert!(
        said.contains("2000 identity write(s) handed to the outbox"),
        "{said}"
    );
    // (The emulator's test client blocks: off the async runtime.)
    let stored = tokio::task::spawn_blocking(move || {
        common::warehouse::BigQuery::existing(&endpoint, &dataset)
            .query("SELECT COUNT(*) AS n FROM `${dataset}.identity_map`", None)
    })
    .await
    .unwrap();
    assert_eq!(stored[0]["n"].as_deref(), Some("2000"));

    let daemon = ws.start();
    wait_until("2,000 identities in KV", 60, || fake.keys(IDS) == 2_000).await;
    assert_eq!(fake.calls(), (1, 0), "one bulk write");
    let generated = ids
        .lines()
        .nth(2)
        .unwrap()
        .split(',')
        .nth(1)
        .unwrap()
        .to_string();
    let value: Value = serde_json::from_str(&fake.value(IDS, &generated).unwrap().value).unwrap();
    assert_eq!(value["firstName"], "Jane1");

    // Again: the same ids come back from identity_map, and nothing new is written to KV.
    let (said, again) = import("again.csv");
    assert_eq!(again, ids, "generated ids are kept");
    assert!(!said.contains("handed to the outbox"), "{said}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(fake.calls(), (1, 0));
    assert!(ws.dead_letters().is_empty(), "{:?}", ws.dead_letters());
    drop(daemon);
}
