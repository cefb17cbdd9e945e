//! Prints the CRM figures of issue 7 (no assertions; figures vary with the machine): leads
//! synced per second through the real dispatcher, connector and writeback to the local HubSpot
//! and Salesforce fakes, and API calls per 1,000 leads.
//!
//! `cargo bench --bench crm` (add `-- quick` for smaller runs).

mod common;

use std::time::Duration;

use oie_fakes::hubspot::{self, HubSpotFake};
use oie_fakes::salesforce::{self, SalesforceFake};

fn main() {
    let quick = std::env::args().any(|a| a == "quick");
    let scale = if quick { 10 } else { 1 };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        // A Professional portal: 190 requests per 10 s, so 100 calls fit one window.
        let hs = HubSpotFake::with_window(190, Duration::from_secs(10)).await;
        let connector = format!(
            "kind = \"hubspot\"\nbase_url = \"{}\"\ntoken = \"${{OIE_BENCH_HUBSPOT_TOKEN}}\"\nwindow_limit = 190\nbatch_wait = \"0s\"\n\n[connectors.crm.properties]\noie_intent_score = \"{{{{lead.intentScore}}}}\"\noie_engagement_level = \"{{{{lead.engagementLevel}}}}\"",
            hs.base
        );
        let n = 10_000 / scale;
        let secs = sync_rate(&connector, ("OIE_BENCH_HUBSPOT_TOKEN", hubspot::TOKEN), n).await;
        report("HubSpot", n, secs, hs.upsert_calls(), hs.token_calls());
        assert_eq!(hs.contacts().len(), n, "every lead became one contact");

        let sf = SalesforceFake::start_with_test_key().await;
        let connector = format!(
            "kind = \"salesforce\"\nclient_id = \"{}\"\nusername = \"{}\"\nprivate_key = \"${{OIE_BENCH_SF_KEY}}\"\nlogin_url = \"{}\"\nbatch_wait = \"0s\"\n\n[connectors.crm.fields]\nOIE_Intent_Score__c = \"{{{{lead.intentScore}}}}\"",
            salesforce::CLIENT_ID,
            salesforce::USERNAME,
            sf.base
        );
        let n = 20_000 / scale;
        let secs = sync_rate(&connector, ("OIE_BENCH_SF_KEY", salesforce::TEST_PRIVATE_KEY), n).await;
        report("Salesforce", n, secs, sf.collection_calls(), sf.token_calls());
        assert_eq!(sf.records().len(), n, "every lead became one record");
    });
}

fn report(vendor: &str, n: usize, secs: f64, calls: u64, tokens: u64) {
    println!(
        "{vendor}: {n} leads synced and written back in {secs:.2} s = {:.0} leads/s; {} API calls ({:.1} per 1,000 leads) + {tokens} token request(s)",
        n as f64 / secs,
        calls,
        calls as f64 * 1000.0 / n as f64
    );
}

fn lead(i: usize) -> serde_json::Value {
    serde_json::json!({"visitorId": format!("v{i:07}"), "email": format!("p{i}@example.com"),
        "firstName": "Jane", "lastName": format!("Doe{i}"), "company": "Acme",
        "intentScore": 40 + (i % 60) as i64, "engagementLevel": "warm", "changeSeq": i as i64 + 1})
}

/// Queues `n` sync deliveries for connector `crm` (its `secret` variable set for the config)
/// and delivers them; returns the seconds.
async fn sync_rate(connector: &str, secret: (&str, &str), n: usize) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[[routes]]\nname = \"crm\"\nwhen = 'trigger.kind == \"sync\"'\nto = [\"crm\"]\n\n[connectors.crm]\n{connector}\n"
    );
    let path = dir.path().join("config.toml");
    std::fs::write(&path, text).unwrap();
    common::deliver_all(dir.path(), &path, &[secret], "crm", n, lead).await
}
