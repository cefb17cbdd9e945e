//! Black-box: `oie bigquery apply` against the BigQuery emulator creates the dataset and tables
//! with partitioning, clustering and expiry, changes nothing on a second run and says so,
//! recreates what went missing, and changes nothing with --dry-run.

mod common;

use common::warehouse::emulator;
use common::Workspace;
use serde_json::Value;

fn config(endpoint: &str, dataset: &str) -> String {
    format!(
        r#"
[store]
kind = "bigquery"
project = "test-proj"
dataset = "{dataset}"
endpoint = "{endpoint}"

[[routes]]
name = "hot"
to = ["out"]

[connectors.out]
kind = "file"
path = "out.jsonl"
"#
    )
}

fn rest(endpoint: &str, method: &str, path: &str) -> Value {
    let url = format!("{endpoint}/bigquery/v2/projects/test-proj{path}");
    let r = reqwest::blocking::Client::new()
        .request(method.parse().unwrap(), url)
        .bearer_auth("test")
        .send()
        .unwrap();
    r.json().unwrap_or(Value::Null)
}

fn apply(ws: &Workspace, args: &[&str]) -> (i32, String) {
    let mut all = vec!["bigquery", "apply"];
    all.extend(args);
    let out = ws.oie(&all);
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap(), text)
}

#[test]
fn apply_is_idempotent_and_repairs_what_is_missing() {
    let Some(endpoint) = emulator() else { return };
    let dataset = format!("apply_{}", std::process::id());
    let ws = Workspace::new(&config(&endpoint, &dataset));

    let (code, text) = apply(&ws, &[]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains(&format!("create dataset test-proj:{dataset}")),
        "{text}"
    );
    assert!(
        text.contains("create table events (partitioned by day of receivedAt, clustered by visitorId, eventType, partitions expire after 730 days)"),
        "{text}"
    );
    assert!(text.contains("seed page_classes"), "{text}");
    assert!(text.contains("seed free_mail_domains"), "{text}");
    assert!(
        text.contains("bq mk --transfer_config"),
        "the scheduled queries are printed"
    );

    let events = rest(
        &endpoint,
        "GET",
        &format!("/datasets/{dataset}/tables/events"),
    );
    assert_eq!(
        events["timePartitioning"]["field"], "receivedAt",
        "{events}"
    );
    assert_eq!(
        events["timePartitioning"]["expirationMs"],
        (730u64 * 86_400_000).to_string()
    );
    assert_eq!(
        events["clustering"]["fields"],
        serde_json::json!(["visitorId", "eventType"])
    );

    let (code, text) = apply(&ws, &[]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.starts_with(
            "nothing to change: the dataset and its 13 tables match sql/bigquery/schema.sql"
        ),
        "{text}"
    );

    rest(
        &endpoint,
        "DELETE",
        &format!("/datasets/{dataset}/tables/erasure_requests"),
    );
    let (_, text) = apply(&ws, &["--dry-run"]);
    assert!(
        text.starts_with("would create table erasure_requests"),
        "{text}"
    );
    assert!(
        text.contains("1 change(s) planned, 12 table(s) already up to date"),
        "{text}"
    );
    let gone = rest(
        &endpoint,
        "GET",
        &format!("/datasets/{dataset}/tables/erasure_requests"),
    );
    assert!(
        gone.get("schema").is_none(),
        "--dry-run changed nothing: {gone}"
    );
    let (_, text) = apply(&ws, &[]);
    assert!(text.starts_with("create table erasure_requests"), "{text}");
    let (_, text) = apply(&ws, &[]);
    assert!(text.starts_with("nothing to change"), "{text}");

    rest(
        &endpoint,
        "DELETE",
        &format!("/datasets/{dataset}?deleteContents=true"),
    );
}

#[test]
fn apply_needs_a_bigquery_store() {
    let ws = Workspace::new(
        "[[routes]]\nname = \"hot\"\nto = [\"out\"]\n[connectors.out]\nkind = \"file\"\npath = \"out.jsonl\"\n",
    );
    let (code, text) = apply(&ws, &[]);
    assert_eq!(code, 1);
    assert!(text.contains("[store] kind is not \"bigquery\""), "{text}");
}
