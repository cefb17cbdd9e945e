use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;

use super::*;
use crate::{Connector, Delivery, Outcome, Secret, TemplateSet};

fn key(secret: &str) -> SigningKey {
    SigningKey::parse(secret).unwrap()
}

#[test]
fn standard_webhooks_vector_1() {
    let k = key("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD");
    let body = br#"{"email":"test@example.com","username":"test_user"}"#;
    let sig = sign(&k, "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk", 1649367553, body);
    assert_eq!(sig, "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=");
    assert_ne!(sig, "v1,R3PTzyfHASBKHH98a7yexTwaJ4yNIcGhFQc1yuN+BPU=");
}

#[test]
fn standard_webhooks_vector_2() {
    let k = key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    let sig = sign(
        &k,
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1614265330,
        br#"{"test": 2432232314}"#,
    );
    assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

#[test]
fn bad_secrets_are_refused() {
    assert!(SigningKey::parse("whsec_!!!").is_err());
    assert!(SigningKey::parse("whsec_").is_err());
}

type Seen = Arc<Mutex<Vec<(HeaderMap, String)>>>;

/// A receiver answering `status` and recording what it got.
async fn receiver(status: u16) -> (String, Seen) {
    let seen: Seen = Arc::default();
    let log = seen.clone();
    let app = Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: String| {
            let log = log.clone();
            async move {
                log.lock().unwrap().push((headers, body));
                let mut h = HeaderMap::new();
                if status == 429 {
                    h.insert("retry-after", "7".parse().unwrap());
                }
                h.insert("location", "http://127.0.0.1:1/elsewhere".parse().unwrap());
                (StatusCode::from_u16(status).unwrap(), h, "nope")
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/hook"), seen)
}

fn webhook(url: &str, secret: Option<&str>) -> Webhook {
    let config = WebhookConfig {
        url: Secret::new(url),
        secret: secret.map(Secret::new),
        template: "webhook/default".into(),
        headers: [("x-team".to_string(), Secret::new("revops"))].into(),
        timeout: Duration::from_millis(500),
    };
    Webhook::new(config, Arc::new(TemplateSet::defaults())).unwrap()
}

fn delivery() -> Delivery {
    Delivery {
        key: "msg_abc".into(),
        visitor_id: "v1".into(),
        payload: r#"{"hello":"world"}"#.into(),
        attempt: 1,
    }
}

#[tokio::test]
async fn signs_and_sends_headers() {
    let (url, seen) = receiver(200).await;
    let secret = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    let outcomes = webhook(&url, Some(secret)).send(&[delivery()]).await;
    assert_eq!(outcomes, vec![Outcome::Delivered { record_id: None }]);
    let seen = seen.lock().unwrap();
    let (headers, body) = &seen[0];
    assert_eq!(body, r#"{"hello":"world"}"#);
    assert_eq!(headers["webhook-id"], "msg_abc");
    assert_eq!(headers["x-team"], "revops");
    assert_eq!(headers["content-type"], "application/json");
    let ts: i64 = headers["webhook-timestamp"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let expected = sign(&key(secret), "msg_abc", ts, body.as_bytes());
    assert_eq!(headers["webhook-signature"].to_str().unwrap(), expected);
}

#[tokio::test]
async fn classifies_answers() {
    for (status, expected) in [
        (503, "throttled"),
        (429, "throttled"),
        (500, "server_error"),
        (401, "auth"),
        (404, "not_found"),
        (410, "gone"),
        (302, "redirect"),
        (422, "invalid_item"),
    ] {
        let (url, seen) = receiver(status).await;
        let outcomes = webhook(&url, None).send(&[delivery()]).await;
        assert_eq!(outcomes[0].label(), expected, "HTTP {status}");
        assert_eq!(seen.lock().unwrap().len(), 1, "redirects are not followed");
        if status == 429 {
            let failure = outcomes[0].failure().unwrap();
            assert_eq!(failure.after, Some(Duration::from_secs(7)));
        }
    }
}

#[tokio::test]
async fn unreachable_endpoint_retries_without_leaking_the_url() {
    let hook = webhook("http://127.0.0.1:9/secret-token-in-path", None);
    let outcomes = hook.send(&[delivery()]).await;
    let Outcome::Failed(failure) = &outcomes[0] else {
        panic!("{outcomes:?}")
    };
    assert_eq!(failure.reason, crate::Reason::Transport);
    assert!(!failure.detail.contains("secret-token"), "{failure}");
}

#[test]
fn unknown_template_is_refused() {
    let config = WebhookConfig {
        url: Secret::new("http://127.0.0.1/"),
        secret: None,
        template: "webhook/nope".into(),
        headers: Default::default(),
        timeout: Duration::from_secs(1),
    };
    let err = Webhook::new(config, Arc::new(TemplateSet::defaults()))
        .err()
        .unwrap();
    assert_eq!(err, "template `webhook/nope` does not exist");
}
