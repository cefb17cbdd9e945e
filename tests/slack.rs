//! Black-box: `oie run` delivering hot leads to a local Slack fake.

mod common;

use std::time::Duration;

use common::slack_fake::{SlackFake, TOKEN};
use common::{hot_lead, wait_until, Workspace, FAST};
use serde_json::{json, Value};

fn config(fake: &SlackFake, connector: &str, route_extra: &str) -> String {
    format!(
        r#"{FAST}
[[routes]]
name = "hot"
when = 'trigger.kind == "hot_lead"'
to = ["sales"]
{route_extra}

[connectors.sales]
kind = "slack"
base_url = "{}/api"
{connector}
"#,
        fake.base
    )
}

fn leads(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            let mut lead = hot_lead(&format!("lead-{i:03}"));
            lead["firstName"] = json!(format!("Lead{i:03}"));
            lead
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_of_200_arrives_whole_without_a_single_429() {
    // Slack allows about 1 message per second per channel; the fake is set 25/s strict, oie 20/s.
    let fake = SlackFake::start(Duration::from_millis(40)).await;
    let ws = Workspace::new(&config(
        &fake,
        "token = \"${OIE_TEST_SLACK_BOT_TOKEN}\"\nchannel = \"C0SALES\"\nrate_limit = 20",
        "",
    ));
    ws.env("OIE_TEST_SLACK_BOT_TOKEN", TOKEN);
    ws.import(&leads(200));
    let daemon = ws.start();
    wait_until("200 messages", 40, || fake.messages("C0SALES").len() >= 200).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let messages = fake.messages("C0SALES");
    assert_eq!(messages.len(), 200, "every lead once");
    assert_eq!(
        fake.rate_limited(),
        0,
        "the limiter kept below Slack's limit"
    );
    let mut names: Vec<String> = messages
        .iter()
        .map(|m| m["text"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 200, "no lead twice");
    assert!(ws.dead_letters().is_empty());
    assert!(daemon.terminate().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_default_limit_is_one_message_per_second() {
    let fake = SlackFake::start(Duration::from_millis(900)).await;
    let ws = Workspace::new(&config(
        &fake,
        "webhook_url = \"${OIE_TEST_SLACK_HOOK}\"",
        "",
    ));
    ws.env(
        "OIE_TEST_SLACK_HOOK",
        format!("{}/hooks/C0DEFAULT", fake.base),
    );
    ws.import(&leads(4));
    let daemon = ws.start();
    wait_until("4 messages", 20, || fake.messages("C0DEFAULT").len() >= 4).await;
    assert_eq!(fake.rate_limited(), 0);
    for m in fake.messages("C0DEFAULT") {
        // Slack never previews a link a visitor's browser named.
        assert_eq!(
            (&m["unfurl_links"], &m["unfurl_media"]),
            (&json!(false), &json!(false))
        );
    }
    drop(daemon);
}

#[tokio::test(flavor = "multi_thread")]
async fn group_wait_turns_a_burst_into_digests() {
    let fake = SlackFake::start(Duration::from_millis(900)).await;
    let ws = Workspace::new(&config(
        &fake,
        "webhook_url = \"${OIE_TEST_SLACK_DIGEST_HOOK}\"",
        "group_wait = \"2s\"",
    ));
    ws.env(
        "OIE_TEST_SLACK_DIGEST_HOOK",
        format!("{}/hooks/C0DIGEST", fake.base),
    );
    ws.import(&leads(200));
    let daemon = ws.start();
    let count = |m: &Value| {
        m["text"]
            .as_str()
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse::<usize>()
            .unwrap()
    };
    wait_until("digests of all 200 leads", 30, || {
        fake.messages("C0DIGEST").iter().map(count).sum::<usize>() >= 200
    })
    .await;
    let digests = fake.messages("C0DIGEST");
    assert!(
        digests.len() <= 5,
        "a handful of digests, not {}",
        digests.len()
    );
    assert_eq!(digests.iter().map(count).sum::<usize>(), 200);
    for d in &digests {
        let blocks = d["blocks"].as_array().unwrap();
        assert!(blocks.len() <= 50, "{} blocks", blocks.len());
        let n = count(d);
        assert!(d["text"].as_str().unwrap().ends_with("new hot leads") || n == 1);
        if n > 20 {
            assert_eq!(
                blocks.last().unwrap()["elements"][0]["text"],
                format!("…and {} more", n - 20)
            );
        }
    }
    assert_eq!(fake.rate_limited(), 0);
    let (_, metrics) = daemon.get("/metrics").await;
    assert!(
        metrics.contains(
            "oie_deliveries_total{connector=\"sales\",outcome=\"delivered\",reason=\"\",route=\"hot\"} 200"
        ),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn lead_text_cannot_ping_the_channel_or_plant_a_link() {
    let fake = SlackFake::start(Duration::from_millis(10)).await;
    let ws = Workspace::new(&config(
        &fake,
        "webhook_url = \"${OIE_TEST_SLACK_ESCAPE_HOOK}\"",
        "",
    ));
    ws.env(
        "OIE_TEST_SLACK_ESCAPE_HOOK",
        format!("{}/hooks/C0ESC", fake.base),
    );
    let mut lead = hot_lead("evil-1");
    lead["company"] = json!("<!channel> *Acme* & <https://evil.example|click>");
    lead["firstName"] = json!("<@U123>");
    ws.import(&[lead]);
    let daemon = ws.start();
    wait_until("the message", 15, || !fake.messages("C0ESC").is_empty()).await;
    let raw = fake.messages("C0ESC")[0].to_string();
    assert!(
        !raw.contains("<!channel>") && !raw.contains("<https://evil") && !raw.contains("<@U123>"),
        "{raw}"
    );
    assert!(
        raw.contains("&lt;!channel&gt; *Acme* &amp; &lt;https://evil.example|click&gt;"),
        "{raw}"
    );
    drop(daemon);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_channel_the_app_cannot_post_to_parks_the_connector_with_what_to_fix() {
    let fake = SlackFake::start(Duration::from_millis(10)).await;
    let ws = Workspace::new(&config(
        &fake,
        "token = \"${OIE_TEST_SLACK_TOKEN_OK}\"\nchannel = \"private\"",
        "",
    ));
    ws.env("OIE_TEST_SLACK_TOKEN_OK", TOKEN);
    ws.import(&leads(3));
    let daemon = ws.start();
    wait_until("parked", 15, || {
        ws.connector_status("sales")["state"] == "parked"
    })
    .await;
    let status = ws.connector_status("sales");
    assert_eq!(status["reason"], "auth", "{status}");
    let detail = status["detail"].as_str().unwrap();
    assert!(detail.starts_with("slack not_in_channel"), "{detail}");
    assert!(detail.contains("/invite"), "{detail}");
    assert_eq!(
        status["queued"], 3,
        "every message would fail the same way: all kept"
    );
    assert!(ws.dead_letters().is_empty());
    drop(daemon);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_refused_for_a_few_seconds_loses_nothing() {
    let fake = SlackFake::start(Duration::from_millis(10)).await;
    let ws = Workspace::new(&config(
        &fake,
        "token = \"${OIE_TEST_SLACK_TOKEN_ROTATE}\"\nchannel = \"C0ROT\"\nrate_limit = 50",
        "",
    ));
    ws.env("OIE_TEST_SLACK_TOKEN_ROTATE", TOKEN);
    fake.refuse_tokens_for(Duration::from_secs(3));
    ws.import(&leads(20));
    let daemon = ws.start();
    wait_until("20 messages after the rotation", 30, || {
        fake.messages("C0ROT").len() == 20
    })
    .await;
    assert!(fake.refused() >= 1, "the token was refused at first");
    assert!(
        fake.refused() <= 8,
        "a parked connector probes, it does not hammer: {}",
        fake.refused()
    );
    assert!(ws.dead_letters().is_empty(), "nothing dead-lettered");
    let (_, metrics) = daemon.get("/metrics").await;
    assert!(
        metrics.contains(
            r#"oie_deliveries_total{connector="sales",outcome="held",reason="auth",route="hot"}"#
        ),
        "{metrics}"
    );
    assert_eq!(ws.connector_status("sales")["state"], "ok");
    drop(daemon);
}

#[test]
fn routes_test_shows_the_block_kit_message_and_check_refuses_digests_elsewhere() {
    let ws = Workspace::new(&format!(
        "{FAST}\n[[routes]]\nname = \"hot\"\nwhen = 'true'\nto = [\"sales\"]\n\n[connectors.sales]\nkind = \"slack\"\nwebhook_url = \"${{OIE_TEST_SLACK_RT_HOOK}}\"\n"
    ));
    ws.env("OIE_TEST_SLACK_RT_HOOK", "http://127.0.0.1:9/hooks/C0RT");
    std::fs::write(ws.path("lead.json"), r#"{"visitorId": "ab3f9", "firstName": "Jane", "lastName": "Doe", "company": "Acme", "intentScore": 86}"#).unwrap();
    let out = ws.oie(&[
        "routes",
        "test",
        "--lead",
        ws.path("lead.json").to_str().unwrap(),
    ]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("→ connector `sales` (slack)"), "{text}");
    assert!(text.contains("\"type\": \"header\""), "{text}");
    assert!(text.contains("🔥🔥🔥 Jane Doe · Acme"), "{text}");
    // A connector's own hints (the thread of a per-lead connector) are not what Slack gets.
    let threaded = Workspace::new(&format!(
        "{FAST}\n[[routes]]\nname = \"hot\"\nwhen = 'true'\nto = [\"sales\"]\n\n[connectors.sales]\nkind = \"slack\"\ntoken = \"${{OIE_TEST_SLACK_RT_TOKEN}}\"\nchannel = \"C0RT\"\nthread = \"per_lead\"\n"
    ));
    threaded.env("OIE_TEST_SLACK_RT_TOKEN", TOKEN);
    std::fs::copy(ws.path("lead.json"), threaded.path("lead.json")).unwrap();
    let out = threaded.oie(&[
        "routes",
        "test",
        "--lead",
        threaded.path("lead.json").to_str().unwrap(),
    ]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("\"type\": \"header\""), "{text}");
    assert!(!text.contains("_oie_"), "{text}");

    let bad = Workspace::new(&format!(
        "{FAST}\n[[routes]]\nname = \"hot\"\nto = [\"hook\"]\ngroup_wait = \"30s\"\n\n[connectors.hook]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:9/\"\n"
    ));
    let out = bad.oie(&["check"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains(
            "route `hot` has group_wait, but connector `hook` (webhook) cannot send digests"
        ),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn connectors_check_signs_in_with_the_bot_token() {
    let fake = SlackFake::start(Duration::ZERO).await;
    let ws = Workspace::new(&format!(
        "{}\n[connectors.other]\nkind = \"slack\"\nbase_url = \"{}/api\"\ntoken = \"${{OIE_TEST_SLACK_BAD_TOKEN}}\"\nchannel = \"C0X\"\n",
        config(
            &fake,
            "token = \"${OIE_TEST_SLACK_BOT_TOKEN}\"\nchannel = \"C0SALES\"",
            ""
        ),
        fake.base
    ));
    ws.env("OIE_TEST_SLACK_BAD_TOKEN", "xoxb-revoked");
    ws.env("OIE_TEST_SLACK_BOT_TOKEN", TOKEN);
    let out = ws.oie(&["connectors", "check"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("sales (slack): ok — authenticated as oie in Acme"),
        "{text}"
    );
    assert!(
        text.contains(
            "other (slack): FAILED — auth: auth.test: slack invalid_auth (HTTP 200): the token is invalid or revoked"
        ),
        "{text}"
    );
    assert!(fake.messages("C0SALES").is_empty(), "a check posts nothing");
}

/// `thread = "per_lead"`: a lead's first alert starts a thread, the next ones reply in it, and
/// only the rise to burning is also shown in the channel; another lead gets its own thread.
#[tokio::test(flavor = "multi_thread")]
async fn one_thread_per_lead() {
    let fake = SlackFake::start(Duration::from_millis(10)).await;
    let ws = Workspace::new(&config(
        &fake,
        "token = \"${OIE_TEST_SLACK_TOKEN_THREADS}\"\nchannel = \"C0THR\"\nthread = \"per_lead\"\nrate_limit = 50",
        "",
    ));
    ws.env("OIE_TEST_SLACK_TOKEN_THREADS", TOKEN);
    let daemon = ws.start();
    let at = |score: i64, level: &str| {
        let mut lead = hot_lead("jane");
        lead["intentScore"] = json!(score);
        lead["engagementLevel"] = json!(level);
        lead
    };
    // hot, then burning, then down to warm (no alert) and hot again: three alerts.
    for (n, (score, level)) in [(70, "hot"), (85, "burning"), (45, "warm"), (65, "hot")]
        .into_iter()
        .enumerate()
    {
        ws.import(&[at(score, level)]);
        ws.seen_at("jane", level).await;
        let want = [1, 2, 2, 3][n];
        wait_until("the alert", 20, || fake.messages("C0THR").len() == want).await;
    }
    ws.import(&[hot_lead("john")]);
    wait_until("john's alert", 20, || fake.messages("C0THR").len() == 4).await;
    let messages = fake.messages("C0THR");
    let parent = messages[0]["ts"].as_str().unwrap();
    assert!(
        messages[0].get("thread_ts").is_none(),
        "the first alert starts the thread"
    );
    assert_eq!(messages[1]["thread_ts"], parent);
    assert_eq!(
        messages[1]["reply_broadcast"], true,
        "a rise to burning shows in the channel"
    );
    assert_eq!(messages[2]["thread_ts"], parent);
    assert!(messages[2].get("reply_broadcast").is_none());
    assert!(
        messages[3].get("thread_ts").is_none(),
        "another lead, another thread"
    );
    for m in &messages {
        assert!(
            m.get("_oie_thread").is_none(),
            "the hint never reaches Slack: {m}"
        );
    }
    // After a restart the thread is still known. (A graceful stop: a kill could come between
    // john's message and its record, and his alert would then, rightly, be sent again.)
    assert!(daemon.terminate().success());
    let daemon = ws.start();
    ws.import(&[at(45, "warm")]);
    ws.seen_at("jane", "warm").await;
    ws.import(&[at(90, "burning")]);
    wait_until("the alert after the restart", 20, || {
        fake.messages("C0THR").len() == 5
    })
    .await;
    assert_eq!(fake.messages("C0THR")[4]["thread_ts"], parent);
    // An erasure forgets the thread.
    let out = ws.oie(&["visitors", "erase", "jane"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    ws.import(&[at(70, "hot")]);
    wait_until("the alert after the erasure", 20, || {
        fake.messages("C0THR").len() == 6
    })
    .await;
    assert!(fake.messages("C0THR")[5].get("thread_ts").is_none());
    drop(daemon);
}

#[test]
fn check_says_an_incoming_webhook_cannot_thread() {
    let ws = Workspace::new(&format!(
        "{FAST}\n[[routes]]\nname = \"hot\"\nto = [\"sales\"]\n\n[connectors.sales]\nkind = \"slack\"\nwebhook_url = \"${{OIE_TEST_SLACK_HOOK}}\"\nthread = \"per_lead\"\n"
    ));
    ws.env(
        "OIE_TEST_SLACK_HOOK",
        "https://hooks.slack.com/services/T/B/x",
    );
    let out = ws.oie(&["check"]);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("connectors.sales: thread = \"per_lead\" needs `token` and `channel`: an incoming webhook cannot reply in a thread"),
        "{said}"
    );
}

/// `recipient = "owner"`: a lead whose HubSpot owner's e-mail maps to a Slack user gets a
/// direct message there; one without an owner goes to the fallback channel. The owner comes
/// from the contact oie syncs (read after the sync, kept in `crm_sync_state.ownerEmail`), so a
/// lead's first alert, sent while its contact is being created, goes to the fallback channel.
#[tokio::test(flavor = "multi_thread")]
async fn alerts_go_to_the_crm_owner_in_slack_or_the_fallback_channel() {
    use oie_fakes::hubspot::{self, HubSpotFake};
    let fake = SlackFake::start(Duration::from_millis(10)).await;
    fake.add_user("U0REP", "Rep@Acme.example");
    let hs = HubSpotFake::start().await;
    let config = format!(
        r#"{FAST}
[[routes]]
name = "dm"
when = 'trigger.kind == "hot_lead"'
to = ["sales-dm"]

[[routes]]
name = "sync"
when = 'trigger.kind == "sync"'
to = ["crm"]

[connectors.sales-dm]
kind = "slack"
base_url = "{}/api"
token = "${{OIE_TEST_SLACK_TOKEN_DM}}"
recipient = "owner"
fallback_channel = "C0FALL"
rate_limit = 50

[connectors.crm]
kind = "hubspot"
base_url = "{}"
token = "${{OIE_TEST_HUBSPOT_TOKEN_DM}}"
batch_wait = "100ms"
"#,
        fake.base, hs.base
    );
    let ws = Workspace::new(&config);
    ws.env("OIE_TEST_SLACK_TOKEN_DM", TOKEN);
    ws.env("OIE_TEST_HUBSPOT_TOKEN_DM", hubspot::TOKEN);
    let daemon = ws.start();
    let owner_of = |visitor: &str| -> Option<String> {
        let conn = rusqlite::Connection::open(ws.path("data/oie.db")).unwrap();
        conn.query_row(
            "SELECT ownerEmail FROM crm_sync_state WHERE visitorId = ?1 AND crmContactId IS NOT NULL",
            [visitor],
            |r| r.get(0),
        )
        .unwrap_or(None)
    };
    let synced = |visitor: &str| {
        let conn = rusqlite::Connection::open(ws.path("data/oie.db")).unwrap();
        conn.query_row(
            "SELECT COUNT(*) FROM crm_sync_state WHERE visitorId = ?1 AND crmContactId IS NOT NULL",
            [visitor],
            |r| r.get::<_, i64>(0),
        )
        .unwrap()
            == 1
    };
    let burning = |id: &str| {
        let mut lead = hot_lead(id);
        lead["intentScore"] = json!(90);
        lead["engagementLevel"] = json!("burning");
        lead
    };

    // HubSpot gives new contacts to the rep (a workflow's rotation); zoe's contact has none.
    hs.assign_new_contacts_to(Some("rep@acme.example"));
    ws.import(&[hot_lead("jane")]);
    wait_until("jane's owner read after the sync", 20, || {
        owner_of("jane").as_deref() == Some("rep@acme.example")
    })
    .await;
    hs.assign_new_contacts_to(None);
    ws.import(&[hot_lead("zoe")]);
    wait_until("zoe synced", 20, || synced("zoe")).await;
    assert_eq!(owner_of("zoe"), None);
    wait_until("both first alerts", 20, || {
        fake.messages("C0FALL").len() == 2
    })
    .await;

    // Now that the owners are known: jane's rise is a DM to the rep, zoe's the fallback's.
    ws.import(&[burning("jane"), burning("zoe")]);
    wait_until("jane's DM", 20, || fake.messages("U0REP").len() == 1).await;
    wait_until("zoe's alert in the fallback channel", 20, || {
        fake.messages("C0FALL").len() == 3
    })
    .await;
    let dm = fake.messages("U0REP").remove(0).to_string();
    assert!(dm.contains("jane|dm") && dm.contains("is burning"), "{dm}");
    assert!(!dm.contains("_oie_owner"), "the hint never reaches Slack");
    let fallback = fake.messages("C0FALL")[2].to_string();
    assert!(
        fallback.contains("zoe|dm") && fallback.contains("is burning"),
        "{fallback}"
    );
    assert_eq!(fake.lookups(), 1, "one lookup for the rep's e-mail");
    drop(daemon);
}
