//! The cloudbox Pub/Sub emulator started by scripts/test: topics and subscriptions are created
//! and messages published through its REST port; `oie` talks gRPC to the other port.
#![allow(dead_code)]

use base64::Engine;
use serde_json::{json, Value};

pub struct PubSub {
    /// gRPC endpoint for `oie` (`[sources.pubsub] endpoint`).
    pub grpc: String,
    rest: String,
    http: reqwest::Client,
}

impl PubSub {
    /// The emulator from the environment; `None` (the test is skipped) without it, except
    /// under CI=true, where a missing emulator is a failure.
    pub fn from_env() -> Option<PubSub> {
        match (
            std::env::var("OIE_PUBSUB_EMULATOR"),
            std::env::var("OIE_PUBSUB_REST"),
        ) {
            (Ok(grpc), Ok(rest)) => Some(PubSub {
                grpc,
                rest,
                http: reqwest::Client::new(),
            }),
            _ => {
                assert!(
                    std::env::var("CI").as_deref() != Ok("true"),
                    "OIE_PUBSUB_EMULATOR/OIE_PUBSUB_REST are not set; scripts/test starts the emulator"
                );
                eprintln!("skipped: no Pub/Sub emulator (run ./scripts/test)");
                None
            }
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let r = self
            .http
            .request(
                method,
                format!("{}/v1/projects/test-proj/{path}", self.rest),
            )
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        assert!(status.is_success(), "{path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// A fresh topic and subscription (unique names); returns the full subscription name.
    pub async fn subscription(&self, name: &str, ack_deadline: u32) -> (String, String) {
        let unique = format!(
            "{name}-{}",
            std::process::id() as u64 * 1000 + rand_suffix()
        );
        self.call(reqwest::Method::PUT, &format!("topics/{unique}"), json!({}))
            .await;
        let sub = format!("projects/test-proj/subscriptions/{unique}");
        self.call(
            reqwest::Method::PUT,
            &format!("subscriptions/{unique}"),
            json!({"name": sub, "topic": format!("projects/test-proj/topics/{unique}"), "ackDeadlineSeconds": ack_deadline}),
        )
        .await;
        (unique, sub)
    }

    /// Publishes JSON bodies with attributes, 500 per request.
    pub async fn publish(&self, topic: &str, messages: &[(Vec<u8>, Value)]) {
        for chunk in messages.chunks(500) {
            let messages: Vec<Value> = chunk
                .iter()
                .map(|(data, attributes)| {
                    json!({"data": base64::engine::general_purpose::STANDARD.encode(data), "attributes": attributes})
                })
                .collect();
            self.call(
                reqwest::Method::POST,
                &format!("topics/{topic}:publish"),
                json!({ "messages": messages }),
            )
            .await;
        }
    }

    /// Pulls what is left without acking (after `oie` stopped: nothing, if it acked everything).
    pub async fn pull(&self, subscription_id: &str) -> Vec<Value> {
        let r = self
            .call(
                reqwest::Method::POST,
                &format!("subscriptions/{subscription_id}:pull"),
                json!({"maxMessages": 100, "returnImmediately": true}),
            )
            .await;
        r["receivedMessages"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::SeqCst)
}

/// A version-1 hot-lead message for `visitor`.
pub fn hot_lead_message(visitor: &str, alert: &str) -> (Vec<u8>, Value) {
    let body = json!({
        "version": 1, "kind": "hot_lead", "id": alert, "level": "hot", "previousLevel": "warm",
        "at": "2026-11-26T10:00:00.000Z",
        "lead": {"visitorId": visitor, "email": format!("{visitor}@acme.example"), "firstName": "Jane",
                 "company": "Acme", "intentScore": 72, "engagementLevel": "hot"},
    });
    (
        body.to_string().into_bytes(),
        json!({"version": "1", "kind": "hot_lead", "visitorId": visitor}),
    )
}
