use serde_json::{json, Value};

use super::*;
use crate::{Connector, Delivery, RenderContext};

fn connector(extra: Value) -> Result<PubSub, String> {
    let mut c = json!({"topic": "projects/test-proj/topics/hot", "endpoint": "http://127.0.0.1:9"});
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    PubSub::new(serde_json::from_value(c).unwrap())
}

#[test]
fn renders_a_version_1_hot_lead_message() {
    let ps = connector(json!({})).unwrap();
    let text = ps
        .render(&RenderContext::new(json!({
            "lead": {"visitorId": "ab3f9", "intentScore": 86},
            "trigger": {"kind": "hot_lead", "level": "burning", "previousLevel": "warm", "at": "2026-11-26T10:00:00.000Z"},
            "route": "fanout",
        })))
        .unwrap();
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        body,
        json!({"version": 1, "kind": "hot_lead", "at": "2026-11-26T10:00:00.000Z", "level": "burning",
               "previousLevel": "warm", "route": "fanout", "lead": {"visitorId": "ab3f9", "intentScore": 86}})
    );
    let message = ps
        .message(&Delivery {
            key: "msg_1".into(),
            visitor_id: "ab3f9".into(),
            payload: text,
            attempt: 1,
        })
        .unwrap();
    let sent: Value = serde_json::from_slice(&message.data).unwrap();
    assert_eq!(sent["id"], "msg_1", "the idempotency key names the moment");
    assert_eq!(message.attributes["visitorId"], "ab3f9");
    assert_eq!(message.attributes["idempotencyKey"], "msg_1");
    assert_eq!(message.ordering_key, "");
    let ordered = connector(json!({"ordering": true})).unwrap();
    let m = ordered
        .message(&Delivery {
            key: "k".into(),
            visitor_id: "ab3f9".into(),
            payload: "{}".into(),
            attempt: 1,
        })
        .unwrap();
    assert_eq!(m.ordering_key, "ab3f9");
}

#[test]
fn topic_names_are_checked() {
    let err = connector(json!({"topic": "hot-leads"})).err().unwrap();
    assert!(
        err.contains("projects/my-project/topics/hot-leads"),
        "{err}"
    );
}
