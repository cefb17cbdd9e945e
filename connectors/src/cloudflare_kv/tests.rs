use std::sync::Arc;
use std::time::Duration;

use oie_fakes::cloudflare::{self as fake, CloudflareFake};
use serde_json::{json, Value};

use super::*;
use crate::{Connector, Delivery, Outcome, Reason, RenderContext, TemplateSet};

const NS: &str = "5a3f0c1e9b7d4e2f8a6c1b0d9e8f7a6b";

fn context(visitor: &str, trigger: &str) -> RenderContext {
    RenderContext::new(json!({
        "lead": {"visitorId": visitor, "firstName": "Jane", "company": "Acme", "campaignName": "Q4",
                 "engagementLevel": "hot", "email": "jane@acme.example"},
        "trigger": {"kind": trigger, "level": "hot", "at": "2026-11-26T10:00:00.000Z"},
        "route": "kv",
        "crm": [],
    }))
}

/// A config read as `config.toml` would give it; `extra` adds or replaces keys.
fn config(token: &str, base: &str, extra: Value) -> Result<CloudflareKvConfig, serde_json::Error> {
    let env = [("OIE_TEST_CF_TOKEN".to_string(), token.to_string())].into();
    let mut c = json!({
        "account_id": fake::ACCOUNT, "namespace_id": NS,
        "api_token": "${OIE_TEST_CF_TOKEN}", "base_url": base,
    });
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    crate::secret::with_env(&env, || serde_json::from_value(c))
}

fn connector(fake: &CloudflareFake, extra: Value) -> CloudflareKv {
    let config = config(fake::TOKEN, &fake.base, extra).unwrap();
    CloudflareKv::new(config, Arc::new(TemplateSet::defaults())).unwrap()
}

fn delivery(kv: &CloudflareKv, visitor: &str, trigger: &str) -> Delivery {
    Delivery {
        key: format!("msg_{visitor}_{trigger}"),
        visitor_id: visitor.into(),
        payload: kv.render(&context(visitor, trigger)).unwrap(),
        attempt: 1,
    }
}

fn delivered(outcomes: &[Outcome]) -> usize {
    outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Delivered { .. }))
        .count()
}

/// The value is what the Worker's `/personalize` reads, never the e-mail; 25,000 changes go out
/// in 3 bulk writes; an erasure is one bulk delete.
#[tokio::test]
async fn values_go_out_in_bulk_and_erasures_delete_them() {
    let fake = CloudflareFake::start(&[NS]).await;
    let kv = connector(&fake, json!({"expiration_ttl": "90d"}));
    let all: Vec<Delivery> = (0..25_000)
        .map(|i| delivery(&kv, &format!("v{i}"), "sync"))
        .collect();
    let mut outcomes = Vec::new();
    for batch in all.chunks(kv.max_batch()) {
        outcomes.extend(kv.send(batch).await);
    }
    assert_eq!(delivered(&outcomes), 25_000);
    assert_eq!(fake.calls(), (3, 0));
    assert_eq!(fake.keys(NS), 25_000);
    let stored = fake.value(NS, "v7").unwrap();
    let value: Value = serde_json::from_str(&stored.value).unwrap();
    assert_eq!(
        value,
        json!({"firstName": "Jane", "company": "Acme", "campaignName": "Q4", "level": "hot"})
    );
    assert_eq!(stored.expiration_ttl, Some(90 * 86_400));

    let gone = kv.send(&[delivery(&kv, "v7", "erasure")]).await;
    assert_eq!(delivered(&gone), 1);
    assert_eq!(fake.calls(), (3, 1));
    assert!(fake.value(NS, "v7").is_none());
}

/// A put and an erasure of one key in a batch: the erasure wins. Two puts: the last one.
/// A key over 512 bytes fails alone.
#[tokio::test]
async fn order_within_a_batch_and_one_bad_item() {
    let fake = CloudflareFake::start(&[NS]).await;
    let kv = connector(&fake, json!({}));
    let mut older = delivery(&kv, "v1", "sync");
    older.payload = json!({"op": "put", "key": "v1", "value": "{\"level\":\"warm\"}"}).to_string();
    let long = "x".repeat(513);
    let batch = vec![
        older,
        delivery(&kv, "v1", "sync"),
        delivery(&kv, "v2", "sync"),
        delivery(&kv, "v2", "erasure"),
        delivery(&kv, &long, "sync"),
    ];
    let outcomes = kv.send(&batch).await;
    assert_eq!(delivered(&outcomes), 4);
    match &outcomes[4] {
        Outcome::Failed(f) => assert_eq!(f.reason, Reason::InvalidItem),
        other => panic!("{other:?}"),
    }
    assert!(fake.value(NS, "v1").unwrap().value.contains("hot"));
    assert!(fake.value(NS, "v2").is_none());
    assert_eq!(fake.calls(), (1, 1));
}

/// The API's answers: a wrong token is an auth failure (the connector parks), an unknown
/// namespace is not found, past the limit a 429 with Retry-After throttles, a 5xx is a server
/// error; the envelope's errors are in the detail.
#[tokio::test]
async fn the_api_s_answers_are_classified() {
    let fake = CloudflareFake::start(&[NS]).await;
    fake.set_limit(2, Duration::from_secs(60));
    let kv = connector(&fake, json!({}));
    let first = kv.send(&[delivery(&kv, "v1", "sync")]).await;
    assert_eq!(delivered(&first), 1);
    assert!(kv.check().await.is_ok());
    match &kv.send(&[delivery(&kv, "v2", "sync")]).await[0] {
        Outcome::Failed(f) => {
            assert_eq!(f.reason, Reason::Throttled);
            assert!(f.after.is_some_and(|d| d >= Duration::from_secs(1)));
            assert!(f.detail.contains("971"), "{}", f.detail);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(fake.limited(), 1);

    let fake = CloudflareFake::start(&[NS]).await;
    let config = config("wrong", &fake.base, json!({})).unwrap();
    let wrong = CloudflareKv::new(config, Arc::new(TemplateSet::defaults())).unwrap();
    let refused = wrong.check().await.unwrap_err();
    assert_eq!(refused.reason, Reason::Auth);
    assert!(
        refused.detail.contains("Authentication error"),
        "{}",
        refused.detail
    );
    assert!(!refused.detail.contains(fake::TOKEN));

    let elsewhere = CloudflareFake::start(&["another"]).await;
    let missing = connector(&elsewhere, json!({}));
    match &missing.send(&[delivery(&missing, "v1", "sync")]).await[0] {
        Outcome::Failed(f) => {
            assert_eq!(f.reason, Reason::NotFound);
            assert!(f.detail.contains("namespace not found"), "{}", f.detail);
        }
        other => panic!("{other:?}"),
    }

    fake.fail_next(&[503]);
    let kv = connector(&fake, json!({}));
    match &kv.send(&[delivery(&kv, "v1", "erasure")]).await[0] {
        Outcome::Failed(f) => assert_eq!(f.reason, Reason::Throttled),
        other => panic!("{other:?}"),
    }
}

/// What the config refuses before anything is sent.
#[test]
fn bad_configs_are_refused() {
    let make = |extra: Value| {
        let config = config("t", "http://127.0.0.1:9", extra).unwrap();
        CloudflareKv::new(config, Arc::new(TemplateSet::defaults())).err()
    };
    assert_eq!(make(json!({})), None);
    assert!(make(json!({"expiration_ttl": "30s"}))
        .unwrap()
        .contains("at least 60s"));
    assert!(make(json!({"template": "kv/nope"}))
        .unwrap()
        .contains("does not exist"));
    assert!(make(json!({"namespace_id": "../x"}))
        .unwrap()
        .contains("not a Cloudflare id"));
    // The token is a secret: only from the environment.
    assert!(config(
        "t",
        "http://127.0.0.1:9",
        json!({"api_token": "cf-literal"})
    )
    .is_err());
}
