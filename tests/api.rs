//! Black-box: the operator's JSON API (`/api/v1/`) of `oie run`. Off (403, saying how to turn
//! it on) without `[server] admin_token`; 401 without or with a wrong token; the connectors'
//! states; a dead letter listed, shown with its payload and attempts, replayed dry (the payload
//! before and now, nothing requeued) and for real (the receiver gets it); a resume asked for;
//! bad requests refused with a reason.

mod common;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use common::{hot_lead, wait_until, Behaviour, Receiver, Workspace, FAST};
use serde_json::{json, Value};

const TOKEN: &str = "an-admin-token-of-some-length";

fn config(receiver: &Receiver, server: &str) -> String {
    format!(
        "{}\n[[routes]]\nname = \"hot\"\nwhen = 'trigger.kind == \"hot_lead\"'\nto = [\"hook\"]\n\n[connectors.hook]\nkind = \"webhook\"\nurl = \"{}\"\nmax_attempts = 1\n",
        FAST.replace(
            "listen = \"127.0.0.1:0\"\n",
            &format!("listen = \"127.0.0.1:0\"\n{server}")
        ),
        receiver.url("hook")
    )
}

async fn call(
    base: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let client = reqwest::Client::new();
    let mut request = client.request(method.parse().unwrap(), format!("{base}{path}"));
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    if let Some(b) = body {
        request = request.json(&b);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_is_off_without_an_admin_token() {
    let receiver = Receiver::start(&[]).await;
    let ws = Workspace::new(&config(&receiver, ""));
    let daemon = ws.start();
    let (status, body) = call(&daemon.base, "GET", "/api/v1/connectors", Some(TOKEN), None).await;
    assert_eq!(status, 403);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("[server] admin_token"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn connectors_dead_letters_replay_and_resume() {
    let fixed = Arc::new(AtomicBool::new(false));
    let receiver = Receiver::start(&[("hook", Behaviour::Switch(fixed.clone()))]).await;
    let ws = Workspace::new(&config(
        &receiver,
        "admin_token = \"${OIE_TEST_API_TOKEN}\"\n",
    ));
    ws.env("OIE_TEST_API_TOKEN", TOKEN);
    let daemon = ws.start();
    let base = daemon.base.clone();
    let get = |path: &'static str, token: Option<&'static str>| {
        let base = base.clone();
        async move { call(&base, "GET", path, token, None).await }
    };

    // Without a token, or with a wrong one: 401, saying so.
    for token in [None, Some("wrong")] {
        let (status, body) = get("/api/v1/connectors", token).await;
        assert_eq!(status, 401, "{token:?}");
        assert_eq!(body["error"], "a valid admin token is required");
    }

    // A hot lead the receiver refuses (422, one attempt): a dead letter.
    ws.import(&[hot_lead("jane")]);
    wait_until("the dead letter", 20, || !ws.dead_letters().is_empty()).await;
    let (status, body) = get("/api/v1/connectors", Some(TOKEN)).await;
    assert_eq!(status, 200);
    let hook = &body["connectors"][0];
    assert_eq!(hook["connector"], "hook");
    assert_eq!(hook["kind"], "webhook");
    assert_eq!(hook["dead"], 1);
    assert_eq!(hook["running"], true);

    let (status, body) = get("/api/v1/deadletters", Some(TOKEN)).await;
    assert_eq!(status, 200);
    let letters = body["deadLetters"].as_array().unwrap();
    assert_eq!(letters.len(), 1);
    let id = letters[0]["id"].as_i64().unwrap();
    assert_eq!(letters[0]["visitor_id"], "jane");
    assert_eq!(letters[0]["reason"], "invalid_item");
    let (status, detail) = call(
        &base,
        "GET",
        &format!("/api/v1/deadletters/{id}"),
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        detail.to_string().contains("oie.hot_lead"),
        "the payload: {detail}"
    );
    assert_eq!(get("/api/v1/deadletters/abc", Some(TOKEN)).await.0, 400);
    assert_eq!(get("/api/v1/deadletters/999999", Some(TOKEN)).await.0, 404);

    // A dry run shows the payload before and now, and requeues nothing.
    let replay = |body: Value| {
        let base = base.clone();
        async move {
            call(
                &base,
                "POST",
                "/api/v1/deadletters/replay",
                Some(TOKEN),
                Some(body),
            )
            .await
        }
    };
    let (status, dry) = replay(json!({"ids": [id], "dryRun": true})).await;
    assert_eq!(status, 200, "{dry}");
    assert_eq!(dry["dryRun"], true);
    assert_eq!(dry["letters"][0]["changed"], false);
    assert_eq!(dry["letters"][0]["now"]["type"], "oie.hot_lead");
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(ws.dead_letters().len(), 1, "a dry run requeues nothing");
    assert_eq!(receiver.accepted("hook").len(), 0);

    // The receiver is fixed; the replay reaches it.
    fixed.store(true, std::sync::atomic::Ordering::SeqCst);
    let (status, done) = replay(json!({"ids": [id, 424242]})).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["requeued"], json!([id]));
    assert_eq!(done["notFound"], json!([424242]));
    receiver
        .wait_for("the replayed delivery", Duration::from_secs(10), |r| {
            r.accepted("hook").len() == 1
        })
        .await;
    assert!(ws.dead_letters().is_empty());

    // Bad requests say what is wrong.
    let (status, body) = replay(json!({"dryRun": true})).await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("ids"), "{body}");
    let (status, _) = replay(json!({"ids": "all"})).await;
    assert_eq!(status, 400);

    // A resume is asked for a configured connector only.
    let (status, body) = call(
        &base,
        "POST",
        "/api/v1/connectors/hook/resume",
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let (status, _) = call(
        &base,
        "POST",
        "/api/v1/connectors/nope/resume",
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(status, 404);
    drop(daemon);
}
