//! Black-box: the operator's JSON API (`/api/v1/`) of `oie run`. Off (403, saying how to turn
//! it on) without `[server] admin_token`; 401 without or with a wrong token; the connectors'
//! states; a dead letter listed, shown with its payload and attempts, replayed dry (the payload
//! before and now, nothing requeued) and for real (the receiver gets it); a resume asked for;
//! bad requests refused with a reason.

mod common;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use common::{hot_lead, wait_until, Behaviour, Receiver, Workspace};
use serde_json::{json, Value};

const TOKEN: &str = "an-admin-token-of-some-length";

fn config(receiver: &Receiver, server: &str) -> String {
    common::hot_leads_to_a_webhook(receiver, server)
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

    // What was done is kept, newest first; the connector's last success is known.
    let (status, body) = get("/api/v1/actions", Some(TOKEN)).await;
    assert_eq!(status, 200);
    let actions: Vec<(&str, &str)> = body["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["via"].as_str().unwrap(), a["action"].as_str().unwrap()))
        .collect();
    assert_eq!(
        actions,
        [
            ("api", "resume"),
            ("api", "replay"),
            ("api", "replay_dry_run")
        ]
    );
    assert_eq!(body["actions"][1]["detail"]["requeued"], json!([id]));
    let (_, body) = get("/api/v1/connectors", Some(TOKEN)).await;
    assert!(
        body["connectors"][0]["lastSuccess"].as_i64().is_some(),
        "{body}"
    );
    drop(daemon);
}

/// "Now": the rises of the last 7 days, newest first, a lead's and an account's, with who and
/// why, the delivery of each, filters and pages — and never an e-mail address.
#[tokio::test(flavor = "multi_thread")]
async fn now_lists_the_rises_newest_first() {
    let receiver = Receiver::start(&[]).await;
    let text = config(&receiver, "admin_token = \"${OIE_TEST_API_TOKEN}\"\n").replace(
        "when = 'trigger.kind == \"hot_lead\"'",
        "when = 'trigger.kind == \"hot_lead\" || trigger.kind == \"account_hot\"'",
    );
    let ws = Workspace::new(&text);
    ws.env("OIE_TEST_API_TOKEN", TOKEN);
    let daemon = ws.start();
    let person = |id: &str, first: &str, score: i64, level: &str| {
        json!({"visitorId": id, "email": format!("{id}@initech.example"), "firstName": first,
               "lastName": "Lee", "company": "Initech", "intentScore": score, "engagementLevel": level,
               "pricingPageVisits": 3, "totalSessions": 2, "lastVisitAt": oie::clock::now_ms()})
    };
    ws.import(&[person("ann", "Ann", 65, "hot")]);
    receiver
        .wait_for(
            "ann's alert and the account's",
            Duration::from_secs(20),
            |r| r.accepted("hook").len() == 2,
        )
        .await;
    ws.import(&[person("bo", "Bo", 85, "burning")]);
    receiver
        .wait_for(
            "bo's alert and the account's rise",
            Duration::from_secs(20),
            |r| r.accepted("hook").len() == 4,
        )
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let now = |query: &str| {
        let path = format!("/api/v1/now{query}");
        let base = daemon.base.clone();
        async move { call(&base, "GET", &path, Some(TOKEN), None).await }
    };
    let (status, page) = now("").await;
    assert_eq!(status, 200, "{page}");
    assert!(!page.to_string().contains('@'), "no e-mail address: {page}");
    let items = page["items"].as_array().unwrap();
    let who: Vec<(&str, &str)> = items
        .iter()
        .map(|i| {
            (
                i["visitorId"].as_str().unwrap(),
                i["level"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        who,
        [
            ("account:initech.example", "burning"),
            ("bo", "burning"),
            ("account:initech.example", "hot"),
            ("ann", "hot")
        ],
        "newest rise first"
    );
    let bo = &items[1];
    assert_eq!(bo["kind"], "lead");
    assert_eq!(bo["name"], "Bo Lee");
    assert_eq!(bo["company"], "Initech");
    assert_eq!(bo["score"], 85);
    assert!(bo["why"].as_str().unwrap().contains("pricing ×3"), "{bo}");
    assert_eq!(bo["deliveries"][0]["connector"], "hook");
    assert_eq!(bo["deliveries"][0]["state"], "delivered");
    let account = &items[0];
    assert_eq!(account["kind"], "account");
    assert_eq!(account["name"], "Initech");
    assert_eq!(account["engagedPeople"], 2);
    assert!(
        account["why"].as_str().unwrap().starts_with("peak 85"),
        "{account}"
    );

    // Filters, and pages that follow one another.
    let (_, hot) = now("?level=hot").await;
    assert_eq!(hot["items"].as_array().unwrap().len(), 2);
    let (_, found) = now("?q=BO").await;
    assert_eq!(found["items"][0]["visitorId"], "bo");
    assert_eq!(found["items"].as_array().unwrap().len(), 1);
    let (_, none) = now("?route=elsewhere").await;
    assert!(none["items"].as_array().unwrap().is_empty());
    let mut seen = Vec::new();
    let mut after = String::new();
    loop {
        let (_, page) = now(&format!("?limit=1{after}")).await;
        for i in page["items"].as_array().unwrap() {
            seen.push(i["visitorId"].as_str().unwrap().to_string());
        }
        match page["next"].as_str() {
            Some(next) => after = format!("&after={next}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 4, "{seen:?}");
    let (status, _) = now("?colour=red").await;
    assert_eq!(status, 400);
    drop(daemon);
}

/// A lead's page: who it is, its sessions with their events, its rises and its deliveries
/// (from `oie simulate`'s journeys); unknown and malformed ids refused.
#[tokio::test(flavor = "multi_thread")]
async fn a_leads_page_tells_its_story() {
    let receiver = Receiver::start(&[]).await;
    let ws = Workspace::new(&config(
        &receiver,
        "admin_token = \"${OIE_TEST_API_TOKEN}\"\n",
    ));
    ws.env("OIE_TEST_API_TOKEN", TOKEN);
    let daemon = ws.start();
    let out = ws.oie(&[
        "simulate",
        "--visitors",
        "10",
        "--target",
        &daemon.base,
        "--prefix",
        "p",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    receiver
        .wait_for("the buyers' alerts", Duration::from_secs(20), |r| {
            r.accepted("hook").len() == 2
        })
        .await;
    let base = daemon.base.clone();
    let get = |path: String| {
        let base = base.clone();
        async move { call(&base, "GET", &path, Some(TOKEN), None).await }
    };
    let (_, now) = get("/api/v1/now".into()).await;
    let id = now["items"][0]["visitorId"].as_str().unwrap().to_string();
    let (status, page) = get(format!("/api/v1/leads/{id}")).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["kind"], "lead");
    assert_eq!(page["lead"]["visitorId"], id.as_str());
    assert_eq!(page["lead"]["engagementLevel"], "burning");
    let sessions = page["sessions"].as_array().unwrap();
    assert!(!sessions.is_empty(), "{page}");
    let events: Vec<&str> = sessions
        .iter()
        .flat_map(|s| s["events"].as_array().unwrap())
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert!(events.contains(&"pageview"), "{events:?}");
    let at: Vec<i64> = sessions[0]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["at"].as_i64().unwrap())
        .collect();
    assert!(
        at.windows(2).all(|w| w[0] <= w[1]),
        "events in time order: {at:?}"
    );
    assert_eq!(
        page["levels"].as_array().unwrap().last().unwrap()["level"],
        "burning"
    );
    let delivery = &page["deliveries"][0];
    assert_eq!(delivery["triggerKind"], "hot_lead");
    assert_eq!(delivery["connector"], "hook");
    assert_eq!(delivery["state"], "delivered");
    assert_eq!(get("/api/v1/leads/nobody".into()).await.0, 404);
    assert_eq!(
        get("/api/v1/leads/account:nowhere.example".into()).await.0,
        404
    );
    assert_eq!(get("/api/v1/leads/a%20b".into()).await.0, 400);
    drop(daemon);
}

/// CRM records come with a link when the connector has a `record_url`; on Now without the
/// owner's e-mail, on the lead's page with it.
#[tokio::test(flavor = "multi_thread")]
async fn crm_records_are_linked() {
    use oie_fakes::hubspot::{self, HubSpotFake};
    let receiver = Receiver::start(&[]).await;
    let hs = HubSpotFake::start().await;
    let text = config(&receiver, "admin_token = \"${OIE_TEST_API_TOKEN}\"\n")
        + &format!(
            "\n[[routes]]\nname = \"sync\"\nwhen = 'trigger.kind == \"sync\" && lead.email != null'\nto = [\"crm\"]\n\n[connectors.crm]\nkind = \"hubspot\"\nbase_url = \"{}\"\ntoken = \"${{OIE_TEST_API_HS}}\"\nbatch_wait = \"100ms\"\nrecord_url = \"https://app.hubspot.com/contacts/42/record/0-1/{{id}}\"\n",
            hs.base
        );
    let text = text.replace("to = [\"hook\"]\n", "to = [\"hook\"]\ncontinue = true\n");
    let ws = Workspace::new(&text);
    ws.env("OIE_TEST_API_TOKEN", TOKEN);
    ws.env("OIE_TEST_API_HS", hubspot::TOKEN);
    let daemon = ws.start();
    ws.import(&[hot_lead("jane")]);
    wait_until("jane's contact", 20, || {
        hs.contact("jane@example.com").is_some()
    })
    .await;
    let contact = hs.contact("jane@example.com").unwrap().id;
    let url = format!("https://app.hubspot.com/contacts/42/record/0-1/{contact}");
    let base = daemon.base.clone();
    let mut page = Value::Null;
    for _ in 0..100 {
        page = call(&base, "GET", "/api/v1/leads/jane", Some(TOKEN), None)
            .await
            .1;
        if page["crm"][0]["url"] == url.as_str() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(page["crm"][0]["url"], url.as_str(), "{page}");
    assert_eq!(page["crm"][0]["connector"], "crm");
    let (_, now) = call(&base, "GET", "/api/v1/now", Some(TOKEN), None).await;
    assert_eq!(now["items"][0]["crm"][0]["url"], url.as_str(), "{now}");
    assert!(now["items"][0]["crm"][0].get("ownerEmail").is_none());
    drop(daemon);
}
