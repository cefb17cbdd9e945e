//! Black-box: `oie run` keeping a Workers KV namespace (the Cloudflare API fake) in step — a
//! value per lead in bulk writes, a change written once, an erasure deleted, and an API that
//! fails and throttles first loses nothing.

mod common;

use std::time::Duration;

use common::{wait_until, Workspace};
use oie_fakes::cloudflare::{self, CloudflareFake};
use serde_json::{json, Value};

const NS: &str = "5a3f0c1e9b7d4e2f8a6c1b0d9e8f7a6b";

fn workspace(fake: &CloudflareFake) -> Workspace {
    let config = format!(
        r#"
[engine]
shutdown_timeout = "5s"

[server]
listen = "127.0.0.1:0"

[sources.leads]
interval = "100ms"

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
    let ws = Workspace::new(&config);
    ws.env("OIE_TEST_CF_TOKEN", cloudflare::TOKEN);
    ws
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
