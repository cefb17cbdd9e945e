//! Black-box: the buttons of Slack alerts. The fake Slack takes the alert; the test then posts
//! clicks to `oie run`'s `POST /slack/actions` the way Slack does (form-encoded `payload=`,
//! `block_actions`, a `response_url`), signed with Slack's own SDK (`slack_sdk.signature`, from
//! the venv scripts/test makes), and checks what oie does: the message updated in place, who
//! has the lead told to a second claimer, later alerts held by Snooze and Not a fit, every click
//! recorded and counted, and forged or stale posts refused as the SDK refuses them.

mod common;

use std::time::Duration;

use common::slack_fake::{SlackFake, TOKEN};
use common::{hot_lead, wait_until, Daemon, Receiver, Workspace, FAST};
use serde_json::{json, Value};

const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";

/// Python with slack-sdk, or `None` (then the test is skipped, except in CI).
fn python() -> Option<String> {
    oie_fakes::reference::python_with("slack_sdk.signature")
}

/// `slack_sdk.signature.SignatureVerifier(SECRET)`: the signature of `body` at `timestamp`,
/// and whether the SDK itself accepts (`headers`, `body`) now.
fn sdk(python: &str, timestamp: i64, body: &str, check: Option<(&str, &str)>) -> (String, bool) {
    let script = "import sys\n\
                  from slack_sdk.signature import SignatureVerifier\n\
                  v = SignatureVerifier(sys.argv[1])\n\
                  body = sys.stdin.read()\n\
                  print(v.generate_signature(timestamp=sys.argv[2], body=body))\n\
                  if len(sys.argv) > 3:\n\
                  \x20   print(v.is_valid(body=body, timestamp=sys.argv[3], signature=sys.argv[4]))\n\
                  else:\n\
                  \x20   print(False)";
    let timestamp = timestamp.to_string();
    let mut args = vec![SECRET, timestamp.as_str()];
    if let Some((t, s)) = check {
        args.extend([t, s]);
    }
    let out = oie_fakes::reference::run(python, script, &args, body.as_bytes());
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let mut lines = text.lines();
    let signature = lines.next().unwrap().to_string();
    let valid = lines.next() == Some("True");
    (signature, valid)
}

/// A click as Slack posts it: the form body.
fn click(
    action: &str,
    message: &Value,
    user: &str,
    n: u32,
    response_url: &str,
    channel: &str,
) -> String {
    let value = message["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "actions")
        .and_then(|b| {
            b["elements"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["action_id"] == action)
        })
        .map(|e| e["value"].clone())
        .expect("the alert has the button");
    let payload = json!({
        "type": "block_actions",
        "user": {"id": user, "username": user.to_lowercase(), "team_id": "T0ACME"},
        "container": {"type": "message", "channel_id": channel, "message_ts": message["ts"]},
        "channel": {"id": channel},
        "response_url": response_url,
        "message": {"text": message["text"], "blocks": message["blocks"], "ts": message["ts"]},
        "actions": [{"type": "button", "action_id": action, "block_id": "oie_actions",
                     "value": value, "action_ts": format!("1795700{n:03}.000200")}],
    });
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", &payload.to_string())
        .finish()
}

async fn post(daemon: &Daemon, body: &str, timestamp: i64, signature: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("{}/slack/actions", daemon.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-slack-request-timestamp", timestamp.to_string())
        .header("x-slack-signature", signature)
        .body(body.to_string())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread")]
async fn claim_snooze_and_not_a_fit_from_slack() {
    let Some(python) = python() else { return };
    let fake = SlackFake::start(Duration::from_millis(10)).await;
    let receiver = Receiver::start(&[]).await;
    let config = format!(
        "{}\n[[routes]]\nname = \"hot\"\nwhen = 'trigger.kind == \"hot_lead\"'\nto = [\"sales\"]\n\n[connectors.sales]\nkind = \"slack\"\nbase_url = \"{}/api\"\ntoken = \"${{OIE_TEST_SLACK_TOKEN_ACT}}\"\nchannel = \"C0ACT\"\nrate_limit = 50\n",
        FAST.replace(
            "listen = \"127.0.0.1:0\"\n",
            "listen = \"127.0.0.1:0\"\nslack_signing_secret = \"${OIE_TEST_SLACK_SIGNING}\"\n"
        ),
        fake.base
    );
    let ws = Workspace::new(&config);
    ws.env("OIE_TEST_SLACK_TOKEN_ACT", TOKEN);
    ws.env("OIE_TEST_SLACK_SIGNING", SECRET);
    let daemon = ws.start();
    ws.import(&[hot_lead("jane"), hot_lead("john"), hot_lead("mary")]);
    wait_until("three alerts", 20, || fake.messages("C0ACT").len() == 3).await;
    // Each lead's alert, by the ts Slack gave it (updates change its blocks, not its ts).
    let first: Vec<Value> = fake.messages("C0ACT");
    let ts_of = |who: &str| {
        first
            .iter()
            .find(|m| m.to_string().contains(&format!("{who}|hot")))
            .map(|m| m["ts"].clone())
            .unwrap()
    };
    let ts: std::collections::HashMap<&str, Value> = ["jane", "john", "mary"]
        .into_iter()
        .map(|w| (w, ts_of(w)))
        .collect();
    let alert = |who: &str| {
        fake.messages("C0ACT")
            .into_iter()
            .find(|m| m["ts"] == ts[who])
            .unwrap()
    };
    let now = oie::clock::now_ms() / 1000;
    let send = |action: &'static str, who: &'static str, user: &'static str, n: u32| {
        // The alert as first posted: a second person may click before the update reaches them.
        let original = first.iter().find(|m| m["ts"] == ts[who]).unwrap();
        let body = click(
            action,
            original,
            user,
            n,
            &receiver.url(&format!("respond{n}")),
            "C0ACT",
        );
        let (signature, valid) = sdk(&python, now, &body, None);
        (body, signature, valid)
    };

    // Claim: the message is updated in place (chat.update, through the outbox, by the
    // connector that posted it), our buttons gone, who and when shown.
    let (body, signature, _) = send("oie_claim", "jane", "U0ADA", 1);
    let (_, sdk_ok) = sdk(&python, now, &body, Some((&now.to_string(), &signature)));
    assert!(sdk_ok, "slack_sdk accepts the signature oie is given");
    assert_eq!(post(&daemon, &body, now, &signature).await, 200);
    wait_until("the message update", 10, || fake.updates() == 1).await;
    let shown = alert("jane").to_string();
    assert!(shown.contains("Claimed by <@U0ADA>"), "{shown}");
    assert!(
        !shown.contains("oie_claim"),
        "the buttons leave a claimed alert: {shown}"
    );
    // The same click posted again (Slack retries) is recorded once and answers nothing new.
    assert_eq!(post(&daemon, &body, now, &signature).await, 200);
    // Someone else clicks Claim: told who has it, only them.
    let (body, signature, _) = send("oie_claim", "jane", "U0BOB", 2);
    assert_eq!(post(&daemon, &body, now, &signature).await, 200);
    wait_until("the answer to the second claimer", 10, || {
        !receiver.hits("respond2").is_empty()
    })
    .await;
    let told = &receiver.hits("respond2")[0].body;
    assert_eq!(told["response_type"], "ephemeral");
    assert!(
        told["text"]
            .as_str()
            .unwrap()
            .starts_with("Already claimed by <@U0ADA>"),
        "{told}"
    );

    // Snooze john, rule mary out: their next rises send nothing on this route.
    let (body, signature, _) = send("oie_snooze", "john", "U0ADA", 3);
    assert_eq!(post(&daemon, &body, now, &signature).await, 200);
    let (body, signature, _) = send("oie_not_a_fit", "mary", "U0ADA", 4);
    assert_eq!(post(&daemon, &body, now, &signature).await, 200);
    wait_until("both updates", 10, || fake.updates() == 3).await;
    assert!(alert("john").to_string().contains("Snoozed by <@U0ADA>"));
    assert!(
        alert("john").to_string().contains("oie_claim"),
        "a snoozed lead can still be claimed"
    );
    assert!(alert("mary").to_string().contains("Not a fit"));
    // Not a fit is in the lead store too.
    wait_until("mary disqualified in lead_profiles", 10, || {
        let conn = rusqlite::Connection::open(ws.path("data/oie.db")).unwrap();
        conn.query_row(
            "SELECT disqualified, disqualifiedBy FROM lead_profiles WHERE visitorId = 'mary'",
            [],
            |r| Ok((r.get::<_, Option<i64>>(0)?, r.get::<_, Option<String>>(1)?)),
        )
        .unwrap()
            == (Some(1), Some("U0ADA".to_string()))
    })
    .await;
    let at = |id: &str, score: i64, level: &str| {
        let mut l = hot_lead(id);
        l["intentScore"] = json!(score);
        l["engagementLevel"] = json!(level);
        l
    };
    ws.import(&[at("john", 45, "warm"), at("mary", 45, "warm")]);
    ws.seen_at("john", "warm").await;
    ws.seen_at("mary", "warm").await;
    ws.import(&[
        at("john", 90, "burning"),
        at("mary", 90, "burning"),
        at("zoe", 90, "burning"),
    ]);
    wait_until("zoe's alert", 20, || fake.messages("C0ACT").len() == 4).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let texts: Vec<String> = fake
        .messages("C0ACT")
        .iter()
        .map(|m| m.to_string())
        .collect();
    assert_eq!(
        texts.len(),
        4,
        "john (snoozed) and mary (not a fit) were not alerted again"
    );

    // A click in a channel no connector of oie posts to (an incoming webhook's, say): the
    // message is updated through the click's response_url instead.
    let zoe = fake.messages("C0ACT").into_iter().last().unwrap();
    let body = click(
        "oie_claim",
        &zoe,
        "U0ADA",
        6,
        &receiver.url("respond6"),
        "C0WEB",
    );
    let (signature, _) = sdk(&python, now, &body, None);
    assert_eq!(post(&daemon, &body, now, &signature).await, 200);
    wait_until("the update through response_url", 10, || {
        !receiver.hits("respond6").is_empty()
    })
    .await;
    let update = &receiver.hits("respond6")[0].body;
    assert_eq!(update["replace_original"], true);
    assert!(
        update.to_string().contains("Claimed by <@U0ADA>"),
        "{update}"
    );
    assert_eq!(fake.updates(), 3);

    // Forged, altered and stale posts are refused, as the SDK refuses them.
    let body = click(
        "oie_claim",
        &zoe,
        "U0EVE",
        5,
        &receiver.url("respond5"),
        "C0ACT",
    );
    let (signature, _) = sdk(&python, now, &body, None);
    let altered = body.replace("U0EVE", "U0ADA");
    assert!(!sdk(&python, now, &altered, Some((&now.to_string(), &signature))).1);
    assert_eq!(post(&daemon, &altered, now, &signature).await, 401);
    let stale = now - 600;
    let (old_signature, _) = sdk(&python, stale, &body, None);
    assert!(
        !sdk(
            &python,
            stale,
            &body,
            Some((&stale.to_string(), &old_signature))
        )
        .1
    );
    assert_eq!(post(&daemon, &body, stale, &old_signature).await, 401);
    assert_eq!(post(&daemon, &body, now, "v0=00").await, 401);

    // Every click is recorded and counted.
    let conn = rusqlite::Connection::open(ws.path("data/outbox.db")).unwrap();
    let recorded: Vec<(String, String, String, String)> = conn
        .prepare("SELECT visitor_id, action, user_id, outcome FROM lead_actions ORDER BY at, id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let r = |v: &str, a: &str, u: &str, o: &str| (v.into(), a.into(), u.into(), o.into());
    assert_eq!(
        recorded,
        vec![
            r("jane", "claim", "U0ADA", "done"),
            r("jane", "claim", "U0BOB", "already_claimed"),
            r("john", "snooze", "U0ADA", "done"),
            r("mary", "not_a_fit", "U0ADA", "done"),
            r("zoe", "claim", "U0ADA", "done"),
        ]
    );
    let (_, metrics) = daemon.get("/metrics").await;
    for line in [
        r#"oie_slack_actions_total{action="claim",outcome="done"} 2"#,
        r#"oie_slack_actions_total{action="claim",outcome="repeated"} 1"#,
        r#"oie_slack_actions_total{action="claim",outcome="already_claimed"} 1"#,
        r#"oie_slack_actions_total{action="unknown",outcome="refused"} 3"#,
    ] {
        assert!(metrics.contains(line), "{line}\n{metrics}");
    }
    drop(daemon);
}

/// Without a signing secret the endpoint does not exist.
#[tokio::test(flavor = "multi_thread")]
async fn no_signing_secret_no_endpoint() {
    let ws = Workspace::new(&format!(
        "{FAST}\n[[routes]]\nname = \"hot\"\nto = [\"out\"]\n\n[connectors.out]\nkind = \"file\"\npath = \"out.jsonl\"\n"
    ));
    let daemon = ws.start();
    let status = reqwest::Client::new()
        .post(format!("{}/slack/actions", daemon.base))
        .body("payload=%7B%7D")
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    assert_eq!(status, 404);
    drop(daemon);
}

/// A workspace whose hot leads go to Slack (with buttons) and whose syncs go to the CRM
/// connector `crm` (`crm` is the rest of its section).
fn claim_workspace(fake: &SlackFake, crm: &str) -> Workspace {
    let config = format!(
        "{}\n[[routes]]\nname = \"hot\"\nwhen = 'trigger.kind == \"hot_lead\"'\nto = [\"sales\"]\ncontinue = true\n\n[[routes]]\nname = \"sync\"\nwhen = 'trigger.kind == \"sync\"'\nto = [\"crm\"]\n\n[connectors.sales]\nkind = \"slack\"\nbase_url = \"{}/api\"\ntoken = \"${{OIE_TEST_SLACK_TOKEN_ACT}}\"\nchannel = \"C0ACT\"\nrate_limit = 50\n\n[connectors.crm]\nbatch_wait = \"100ms\"\n{crm}",
        FAST.replace(
            "listen = \"127.0.0.1:0\"\n",
            "listen = \"127.0.0.1:0\"\nslack_signing_secret = \"${OIE_TEST_SLACK_SIGNING}\"\n"
        ),
        fake.base,
    );
    let ws = Workspace::new(&config);
    ws.env("OIE_TEST_SLACK_TOKEN_ACT", TOKEN);
    ws.env("OIE_TEST_SLACK_SIGNING", SECRET);
    ws
}

/// `user` clicks Claim on `alert` (its message update goes through the connector; no
/// response_url is needed).
async fn claim_as(daemon: &Daemon, python: &str, alert: &Value, user: &str, n: u32) {
    let now = oie::clock::now_ms() / 1000;
    let body = click(
        "oie_claim",
        alert,
        user,
        n,
        "http://127.0.0.1:9/none",
        "C0ACT",
    );
    let (signature, _) = sdk(python, now, &body, None);
    assert_eq!(post(daemon, &body, now, &signature).await, 200);
}

/// Waits until the lead's CRM record id is written back (a click needs it).
async fn record_written_back(ws: &Workspace, visitor: &str) {
    wait_until("the record id written back", 20, || {
        let conn = rusqlite::Connection::open(ws.path("data/oie.db")).unwrap();
        conn.query_row(
            "SELECT COUNT(*) FROM crm_sync_state WHERE visitorId = ?1 AND crmContactId IS NOT NULL",
            [visitor],
            |r| r.get::<_, i64>(0),
        )
        .unwrap()
            == 1
    })
    .await;
}

/// Claim makes the clicker the lead's owner in the CRM oie syncs it to: Slack tells their
/// e-mail (`users.info`), HubSpot the owner with it (`/crm/v3/owners`), and the contact gets
/// `hubspot_owner_id` — handed over through the outbox and written back like any sync.
#[tokio::test(flavor = "multi_thread")]
async fn claim_sets_the_hubspot_owner() {
    use oie_fakes::hubspot::{self, HubSpotFake};
    let Some(python) = python() else { return };
    let fake = SlackFake::start(Duration::from_millis(10)).await;
    fake.add_user("U0ADA", "ada@acme.example");
    let hs = HubSpotFake::start().await;
    let owner = hs.add_owner("ada@acme.example");
    let ws = claim_workspace(
        &fake,
        &format!(
            "kind = \"hubspot\"\nbase_url = \"{}\"\ntoken = \"${{OIE_TEST_HUBSPOT_TOKEN}}\"\n",
            hs.base
        ),
    );
    ws.env("OIE_TEST_HUBSPOT_TOKEN", hubspot::TOKEN);
    let daemon = ws.start();
    ws.import(&[hot_lead("jane")]);
    wait_until("the alert and the contact", 20, || {
        fake.messages("C0ACT").len() == 1 && hs.contact("jane@example.com").is_some()
    })
    .await;
    let contact = hs.contact("jane@example.com").unwrap();
    record_written_back(&ws, "jane").await;
    let alert = fake.messages("C0ACT").remove(0);
    claim_as(&daemon, &python, &alert, "U0ADA", 1).await;
    wait_until("the owner in HubSpot", 20, || {
        hs.contact("jane@example.com")
            .is_some_and(|c| c.properties.get("hubspot_owner_id") == Some(&owner))
    })
    .await;
    assert_eq!(hs.contact("jane@example.com").unwrap().id, contact.id);
    wait_until("the message update", 10, || fake.updates() == 1).await;
    // A claimer HubSpot does not know: a dead letter that says what to do, nothing else.
    let zoe = hot_lead("zoe");
    ws.import(&[zoe]);
    wait_until("zoe's alert and contact", 20, || {
        fake.messages("C0ACT").len() == 2 && hs.contact("zoe@example.com").is_some()
    })
    .await;
    fake.add_user("U0BOB", "bob@acme.example");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let alert = fake.messages("C0ACT").remove(1);
    claim_as(&daemon, &python, &alert, "U0BOB", 2).await;
    wait_until("the dead letter", 20, || !ws.dead_letters().is_empty()).await;
    let dead = ws.dead_letters();
    assert!(
        dead.iter().any(|d| d
            .to_string()
            .contains("no owner with the e-mail bob@acme.example")),
        "{dead:?}"
    );
    assert!(!hs
        .contact("zoe@example.com")
        .unwrap()
        .properties
        .contains_key("hubspot_owner_id"));
    // Bob joins the portal; the dead letter, replayed as its error says, sets him as owner.
    let bob = hs.add_owner("bob@acme.example");
    let out = ws.oie(&["deadletters", "replay", "--all"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_until("bob as zoe's owner after the replay", 20, || {
        hs.contact("zoe@example.com")
            .is_some_and(|c| c.properties.get("hubspot_owner_id") == Some(&bob))
    })
    .await;
    drop(daemon);
}

/// The same for Salesforce: the active User with the claimer's e-mail becomes the Lead's
/// `OwnerId`.
#[tokio::test(flavor = "multi_thread")]
async fn claim_sets_the_salesforce_owner() {
    use oie_fakes::salesforce::{self, SalesforceFake};
    let Some(python) = python() else { return };
    let fake = SlackFake::start(Duration::from_millis(10)).await;
    fake.add_user("U0ADA", "ada@acme.example");
    let sf = SalesforceFake::start_with_test_key().await;
    sf.add_user("ada@acme.example", false);
    let ada = sf.add_user("ada@acme.example", true);
    let ws = claim_workspace(
        &fake,
        &format!(
            "kind = \"salesforce\"\nclient_id = \"{}\"\nusername = \"{}\"\nprivate_key_file = \"sf-key.pem\"\nlogin_url = \"{}\"\n",
            salesforce::CLIENT_ID,
            salesforce::USERNAME,
            sf.base
        ),
    );
    std::fs::write(ws.path("sf-key.pem"), salesforce::TEST_PRIVATE_KEY).unwrap();
    let daemon = ws.start();
    let mut jane = hot_lead("jane");
    jane["lastName"] = json!("Doe"); // Salesforce requires it of a Lead
    ws.import(&[jane]);
    wait_until("the alert and the Lead", 20, || {
        fake.messages("C0ACT").len() == 1 && sf.record("jane").is_some()
    })
    .await;
    record_written_back(&ws, "jane").await;
    let alert = fake.messages("C0ACT").remove(0);
    claim_as(&daemon, &python, &alert, "U0ADA", 1).await;
    wait_until("the owner in Salesforce", 20, || {
        sf.record("jane")
            .is_some_and(|r| r.fields.get("OwnerId") == Some(&json!(ada)))
    })
    .await;
    assert!(ws.dead_letters().is_empty(), "{:?}", ws.dead_letters());
    drop(daemon);
}
