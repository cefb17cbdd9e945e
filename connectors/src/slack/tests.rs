use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};

use super::*;
use crate::{Connector, Delivery, Outcome, RenderContext, Secret, TemplateSet};

fn lead(overrides: Value) -> Value {
    let mut lead = json!({
        "visitorId": "ab3f9", "email": "jane@acme.example", "firstName": "Jane", "lastName": "Doe",
        "company": "Acme", "title": "VP Sales", "campaignId": "q4", "campaignName": "Q4 Outbound",
        "intentScore": 86, "engagementLevel": "burning", "totalSessions": 3, "pricingPageVisits": 2,
        "formSubmissions": 1, "lastPageUrl": "https://acme.example/pricing",
        "topPages": [{"path": "/pricing", "views": 2}, {"path": "/", "views": 1}]
    });
    for (k, v) in overrides.as_object().unwrap() {
        lead[k] = v.clone();
    }
    lead
}

fn data(lead: Value) -> Value {
    json!({"lead": lead, "trigger": {"kind": "hot_lead", "level": "burning", "previousLevel": "warm", "at": "2026-11-26T10:00:00.000Z"}, "route": "hot"})
}

fn config(extra: Value) -> SlackConfig {
    let mut c = json!({"webhook_url": "${OIE_TEST_SLACK_WEBHOOK}"});
    for (k, v) in extra.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    crate::secret::with_env(&env(), || serde_json::from_value(c)).unwrap()
}

/// What `${VAR}` references read here (never the process environment).
fn env() -> std::collections::HashMap<String, String> {
    [
        ("OIE_TEST_SLACK_WEBHOOK", "http://127.0.0.1:9/hook"),
        ("OIE_TEST_SLACK_TOKEN", "xoxb-test"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn slack(extra: Value) -> Slack {
    Slack::new(
        config(extra),
        Arc::new(TemplateSet::defaults()),
        Arc::new(crate::MemoryState::default()),
    )
    .unwrap()
}

fn render(lead: Value) -> Value {
    let text = slack(json!({}))
        .render(&RenderContext::new(data(lead)))
        .unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Every text the message shows, for looking at it as a reader would.
fn texts(message: &Value) -> Vec<String> {
    let mut out = vec![message["text"].as_str().unwrap().to_string()];
    for b in message["blocks"].as_array().unwrap() {
        for t in [&b["text"]["text"], &b["text"]] {
            if let Some(s) = t.as_str() {
                out.push(s.to_string());
            }
        }
        for f in b["fields"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(b["elements"].as_array().into_iter().flatten())
        {
            if let Some(s) = f["text"].as_str() {
                out.push(s.to_string());
            }
        }
    }
    out
}

#[test]
fn the_default_alert_matches_its_golden_file() {
    let message = render(lead(json!({})));
    let golden: Value = serde_json::from_str(include_str!("golden/hot_lead_full.json")).unwrap();
    assert_eq!(
        message,
        golden,
        "{}",
        serde_json::to_string_pretty(&message).unwrap()
    );
}

#[test]
fn missing_optional_fields_still_read_well() {
    let bare = lead(
        json!({"firstName": null, "lastName": null, "company": null, "title": null,
                           "campaignName": null, "lastPageUrl": null}),
    );
    let message = render(bare);
    let golden: Value = serde_json::from_str(include_str!("golden/hot_lead_bare.json")).unwrap();
    assert_eq!(
        message,
        golden,
        "{}",
        serde_json::to_string_pretty(&message).unwrap()
    );
    for text in texts(&message) {
        assert!(
            !text.contains("undefined") && !text.contains("null"),
            "{text}"
        );
        assert!(
            !text.trim().is_empty() && !text.ends_with('\n'),
            "empty field: {text:?}"
        );
    }
    assert_eq!(message["blocks"][0]["text"]["text"], "🔥🔥🔥 Visitor ab3f9");
    let only_last = render(lead(json!({"firstName": null, "company": null})));
    assert_eq!(only_last["blocks"][0]["text"]["text"], "🔥🔥🔥 Doe");
}

#[test]
fn lead_text_can_neither_mention_nor_link() {
    let evil = "<!channel> *Acme* & <https://evil.example|click>";
    let text = slack(json!({}))
        .render(&RenderContext::new(data(lead(
            json!({"company": evil, "title": evil, "topPages": [{"path": evil, "views": 1}]}),
        ))))
        .unwrap();
    let message: Value = serde_json::from_str(&text).expect("valid JSON");
    for t in texts(&message) {
        assert!(!t.contains("<!channel>") && !t.contains("<https://"), "{t}");
    }
    let escaped = "&lt;!channel&gt; *Acme* &amp; &lt;https://evil.example|click&gt;";
    assert!(
        message["text"].as_str().unwrap().contains(escaped),
        "{}",
        message["text"]
    );
    assert!(texts(&message)
        .iter()
        .any(|t| t.contains(&format!("*Title*\n{escaped}"))));
}

/// A lead with no visits behind its score has no "why" and no top pages (no empty blocks).
#[test]
fn no_why_without_visits() {
    let quiet = lead(
        json!({"pricingPageVisits": 0, "formSubmissions": 0, "totalSessions": 0, "topPages": []}),
    );
    let message = render(quiet);
    for t in texts(&message) {
        assert!(!t.contains("Why") && !t.contains("Top pages"), "{t}");
    }
    let line = crate::templates::why(&json!({"pricingPageVisits": 3, "caseStudyViews": 1,
        "formSubmissions": 2, "videosCompleted": 1, "totalSessions": 1}));
    assert_eq!(
        line,
        "pricing ×3 · case studies ×1 · 2 forms submitted · video watched · 1 visit"
    );
}

#[test]
fn limits_are_enforced_with_an_ellipsis() {
    let long = "x".repeat(5000);
    let message = render(lead(json!({"firstName": long.clone(), "title": long})));
    let header = message["blocks"][0]["text"]["text"].as_str().unwrap();
    assert_eq!(header.chars().count(), 150);
    assert!(header.ends_with('…'));
    for f in message["blocks"][1]["fields"].as_array().unwrap() {
        assert!(f["text"].as_str().unwrap().chars().count() <= 2000);
    }
    let mut big = json!({"blocks": (0..60).map(|i| json!({"type": "section", "text": {"type": "mrkdwn", "text": i.to_string()}})).collect::<Vec<_>>()});
    enforce_limits(&mut big);
    let blocks = big["blocks"].as_array().unwrap();
    assert_eq!(blocks.len(), 50);
    assert_eq!(blocks[49]["elements"][0]["text"], "…and 11 more");
    assert_eq!(
        big["text"], "New hot lead",
        "a text fallback is always sent"
    );
}

#[test]
fn a_digest_lists_leads_within_the_limits() {
    let items: Vec<Value> = (0..32)
        .map(|i| {
            data(lead(
                json!({"visitorId": format!("v{i}"), "firstName": format!("Lead{i}")}),
            ))
        })
        .collect();
    let message: Value =
        serde_json::from_str(&slack(json!({})).render_digest(&items).unwrap()).unwrap();
    let blocks = message["blocks"].as_array().unwrap();
    assert_eq!(message["text"], "32 new hot leads");
    assert_eq!(blocks.len(), 1 + DIGEST_SHOWN + 1);
    assert!(blocks.len() <= 50);
    assert_eq!(
        blocks.last().unwrap()["elements"][0]["text"],
        "…and 12 more"
    );
    assert!(blocks[1]["text"]["text"]
        .as_str()
        .unwrap()
        .starts_with("🔥🔥🔥 *Lead0 Doe* · Acme — score 86, 2 pricing visits"));
    let one: Value =
        serde_json::from_str(&slack(json!({})).render_digest(&items[..1]).unwrap()).unwrap();
    assert_eq!(one["text"], "1 new hot lead");
}

#[test]
fn crm_link_when_a_record_is_known() {
    let s = slack(json!({"crm_record_url": "https://crm.example/leads/{id}"}));
    let mut d = data(lead(json!({})));
    d["crm"] = json!([{"connector": "hubspot", "id": "901"}]);
    let message: Value = serde_json::from_str(&s.render(&RenderContext::new(d)).unwrap()).unwrap();
    let actions = message["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "actions")
        .unwrap();
    let elements = actions["elements"].as_array().unwrap();
    assert_eq!(elements[3]["url"], "https://crm.example/leads/901");
    // The buttons carry the lead and the route; without a CRM record there is no link.
    let ids: Vec<&str> = elements[..3]
        .iter()
        .map(|e| e["action_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["oie_claim", "oie_snooze", "oie_not_a_fit"]);
    assert!(elements[..3].iter().all(|e| e["value"] == "ab3f9|hot"));
    let without = render(lead(json!({})));
    let blocks = without["blocks"].as_array().unwrap();
    let actions = blocks.iter().find(|b| b["type"] == "actions").unwrap();
    assert_eq!(actions["elements"].as_array().unwrap().len(), 3);
}

#[test]
fn config_needs_one_mode() {
    let templates = Arc::new(TemplateSet::defaults());
    let none: SlackConfig = serde_json::from_value(json!({})).unwrap();
    assert_eq!(
        Slack::new(none, templates.clone(), memory()).err().unwrap(),
        "set `webhook_url`, or `token` and `channel`"
    );
    let no_channel: SlackConfig = crate::secret::with_env(&env(), || {
        serde_json::from_value(json!({"token": "${OIE_TEST_SLACK_TOKEN}"}))
    })
    .unwrap();
    assert!(Slack::new(no_channel, templates, memory())
        .err()
        .unwrap()
        .contains("needs `channel`"));
    let literal = serde_json::from_value::<SlackConfig>(json!({"token": "xoxb-literal"}));
    assert!(literal.is_err(), "tokens are never literals");
}

type Seen = Arc<Mutex<Vec<(HeaderMap, Value)>>>;

/// Answers each request with the next (status, headers, body) in `answers`.
async fn fake(answers: Vec<(u16, Option<&'static str>, &'static str)>) -> (String, Seen) {
    let seen: Seen = Arc::default();
    let answers = Arc::new(Mutex::new(answers.into_iter()));
    let log = seen.clone();
    let handler = move |headers: HeaderMap, body: String| {
        let (log, answers) = (log.clone(), answers.clone());
        async move {
            log.lock()
                .unwrap()
                .push((headers, serde_json::from_str(&body).unwrap()));
            let (status, retry, body) = answers.lock().unwrap().next().unwrap_or((200, None, "ok"));
            let mut h = HeaderMap::new();
            if let Some(r) = retry {
                h.insert("retry-after", r.parse().unwrap());
            }
            (StatusCode::from_u16(status).unwrap(), h, body).into_response()
        }
    };
    let app = Router::new()
        .route("/hook", post(handler.clone()))
        .route("/api/chat.postMessage", post(handler));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), seen)
}

fn delivery() -> Delivery {
    let payload = slack(json!({}))
        .render(&RenderContext::new(data(lead(json!({})))))
        .unwrap();
    Delivery {
        key: "k".into(),
        visitor_id: "ab3f9".into(),
        payload,
        attempt: 1,
    }
}

fn webhook_to(base: &str) -> Slack {
    let mut c = config(json!({}));
    c.webhook_url = Some(Secret::new(format!("{base}/hook")));
    Slack::new(c, Arc::new(TemplateSet::defaults()), memory()).unwrap()
}

fn api_to(base: &str) -> Slack {
    slack(
        json!({"webhook_url": null, "token": "${OIE_TEST_SLACK_TOKEN}", "channel": "C0123", "thread_ts": "171.1", "base_url": format!("{base}/api")}),
    )
}

#[tokio::test]
async fn incoming_webhook_answers() {
    let cases: Vec<(u16, Option<&'static str>, &'static str, &str)> = vec![
        (200, None, "ok", "delivered"),
        (404, None, "channel_not_found", "not_found"),
        (404, None, "no_service", "not_found"),
        (410, None, "channel_is_archived", "gone"),
        (403, None, "action_prohibited", "auth"),
        (400, None, "invalid_payload", "invalid_item"),
        (429, Some("3"), "rate_limited", "throttled"),
        (500, None, "rollup_error", "server_error"),
    ];
    for (status, retry, body, expected) in cases {
        let (base, seen) = fake(vec![(status, retry, body)]).await;
        let outcome = webhook_to(&base).send(&[delivery()]).await.remove(0);
        assert_eq!(outcome.label(), expected, "{status} {body}");
        if retry.is_some() {
            assert_eq!(
                outcome.failure().and_then(|f| f.after),
                Some(Duration::from_secs(3))
            );
        }
        assert!(seen.lock().unwrap()[0].1["blocks"].is_array());
    }
}

#[tokio::test]
async fn invalid_blocks_falls_back_once_to_text() {
    let (base, seen) = fake(vec![(400, None, "invalid_blocks"), (200, None, "ok")]).await;
    let outcome = webhook_to(&base).send(&[delivery()]).await.remove(0);
    assert_eq!(outcome, Outcome::Delivered { record_id: None });
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    assert!(seen[1].1.get("blocks").is_none());
    assert!(seen[1].1["text"]
        .as_str()
        .unwrap()
        .contains("Jane Doe from Acme"));
}

#[tokio::test]
async fn chat_post_message_answers() {
    let cases: Vec<(u16, Option<&'static str>, &'static str, &str)> = vec![
        (200, None, r#"{"ok":true,"ts":"1.2"}"#, "delivered"),
        (
            200,
            None,
            r#"{"ok":false,"error":"not_in_channel"}"#,
            "auth",
        ),
        (200, None, r#"{"ok":false,"error":"invalid_auth"}"#, "auth"),
        (200, None, r#"{"ok":false,"error":"missing_scope"}"#, "auth"),
        (
            200,
            None,
            r#"{"ok":false,"error":"internal_error"}"#,
            "server_error",
        ),
        (
            429,
            Some("2"),
            r#"{"ok":false,"error":"ratelimited"}"#,
            "throttled",
        ),
        (
            200,
            None,
            r#"{"ok":false,"error":"msg_too_long"}"#,
            "invalid_item",
        ),
        (503, None, "", "throttled"),
    ];
    for (status, retry, body, expected) in cases {
        let (base, seen) = fake(vec![(status, retry, body)]).await;
        let outcome = api_to(&base).send(&[delivery()]).await.remove(0);
        assert_eq!(outcome.label(), expected, "{body}");
        let (headers, sent) = seen.lock().unwrap()[0].clone();
        assert_eq!(headers["authorization"], "Bearer xoxb-test");
        assert_eq!(sent["channel"], "C0123");
        assert_eq!(sent["thread_ts"], "171.1");
    }
}

/// The last page comes from the visitor's browser: the alert shows its path only, escaped, and
/// Slack never unfurls it.
#[test]
fn the_last_page_shows_only_its_path() {
    let message = render(lead(json!({
        "lastPageUrl": "https://acme.example.evil.example/<!channel>?email=jane@acme.example#token"
    })));
    let text = texts(&message).join("\n");
    assert!(text.contains("Last page: /%3C!channel%3E"), "{text}");
    assert!(
        !text.contains("evil.example") && !text.contains("jane@") && !text.contains("token"),
        "{text}"
    );
    assert_eq!(
        crate::templates::url_path("/pricing?plan=pro#faq"),
        "/pricing",
        "a bare path loses its query and fragment too"
    );
}

/// Every Block Kit message the default templates render — the goldens, a lead with nothing to
/// say why, hostile text, a digest — passes Slack's own validation (`slack_sdk.models.blocks`,
/// PyPI, in the venv scripts/test makes). Skipped when that Python is missing, except in CI.
#[test]
fn rendered_blocks_pass_slack_sdk_validation() {
    let Some(python) = oie_fakes::reference::python_with("slack_sdk.models.blocks") else {
        return;
    };
    let evil = "<!channel> *Acme* & <https://evil.example|click>";
    let digest: Vec<Value> = (0..32)
        .map(|i| data(lead(json!({"visitorId": format!("v{i}")}))))
        .collect();
    let messages = vec![
        render(lead(json!({}))),
        render(lead(
            json!({"firstName": null, "lastName": null, "company": null, "title": null,
                           "campaignName": null, "lastPageUrl": null}),
        )),
        render(lead(
            json!({"pricingPageVisits": 0, "formSubmissions": 0, "totalSessions": 0, "topPages": []}),
        )),
        render(lead(
            json!({"company": evil, "title": evil, "firstName": "x".repeat(5000),
                           "topPages": [{"path": evil, "views": 1}]}),
        )),
        serde_json::from_str(&slack(json!({})).render_digest(&digest).unwrap()).unwrap(),
        account_alert(evil),
        account_alert("Globex"),
    ];
    let check = "import json, sys\n\
                 from slack_sdk.models.blocks import Block\n\
                 n = 0\n\
                 for m in json.load(sys.stdin):\n\
                 \x20   assert len(m['blocks']) <= 50, len(m['blocks'])\n\
                 \x20   for b in m['blocks']:\n\
                 \x20       Block.parse(b).validate_json(); n += 1\n\
                 print(n)";
    let messages = serde_json::to_string(&messages).unwrap();
    let out = oie_fakes::reference::run(&python, check, &[], messages.as_bytes());
    assert!(
        out.status.success(),
        "slack_sdk refused a block: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let blocks: usize = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert!(blocks > 10, "{blocks} blocks checked");
}

/// The default account alert for an account named `company` with three engaged people.
fn account_alert(company: &str) -> Value {
    let person = |id: &str, first: &str, score: i64| {
        json!({"visitorId": id, "firstName": first, "lastName": "Doe", "title": company,
               "intentScore": score, "engagementLevel": "warm", "lastVisitAt": 1_795_700_000_000_i64})
    };
    let data = json!({
        "lead": {"visitorId": "account:globex.example"},
        "trigger": {"kind": "account_hot", "level": "burning", "previousLevel": "hot", "at": "2026-11-26T10:00:00.000Z"},
        "route": "accounts",
        "account": {"accountDomain": "globex.example", "company": company, "people": 4,
                    "engagedPeople": 3, "peakScore": 65, "accountScore": 85, "accountLevel": "burning",
                    "topPages": [{"path": "/pricing", "views": 3}],
                    "engaged": [person("cy", "Cy", 65), person("bo", "Bo", 50), person("ann", "Ann", 45)]},
    });
    let text = slack(json!({})).render(&RenderContext::new(data)).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn the_account_alert_says_who_and_why() {
    let text = account_alert("Globex").to_string();
    for expected in [
        "Globex · account",
        "85 / 100, burning (was hot)",
        "3 of 4 seen in 90 days",
        "peak 65 + 10 × 2 more engaged people = 85",
        "Cy Doe, Globex: warm (65), last seen 2026-11-26",
        "/pricing ×3",
    ] {
        assert!(text.contains(expected), "{expected}: {text}");
    }
    let evil = account_alert("<!channel>").to_string();
    assert!(!evil.contains("<!channel>"), "{evil}");
}

fn memory() -> Arc<dyn crate::VisitorState> {
    Arc::new(crate::MemoryState::default())
}

/// A Slack for `recipient = "owner"`: `users.lookupByEmail` knows rep@ (U0REP) and bot@
/// (U0BOT, which cannot be messaged), answers `ratelimited` for busy@, and `users_not_found`
/// otherwise; `chat.postMessage` takes any channel but U0BOT. Every call is logged as
/// (method, `channel` or `email`).
async fn owner_slack() -> (String, Arc<Mutex<Vec<(String, String)>>>) {
    use axum::extract::Query;
    let log: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let (l1, l2) = (log.clone(), log.clone());
    let lookup = move |Query(q): Query<std::collections::HashMap<String, String>>| {
        let log = l1.clone();
        async move {
            let email = q.get("email").cloned().unwrap_or_default();
            log.lock().unwrap().push(("lookup".into(), email.clone()));
            match email.as_str() {
                "rep@acme.example" => {
                    axum::Json(json!({"ok": true, "user": {"id": "U0REP"}})).into_response()
                }
                "bot@acme.example" => {
                    axum::Json(json!({"ok": true, "user": {"id": "U0BOT"}})).into_response()
                }
                "busy@acme.example" => (
                    StatusCode::TOO_MANY_REQUESTS,
                    [("retry-after", "7")],
                    axum::Json(json!({"ok": false, "error": "ratelimited"})),
                )
                    .into_response(),
                _ => axum::Json(json!({"ok": false, "error": "users_not_found"})).into_response(),
            }
        }
    };
    let post_message = move |body: String| {
        let log = l2.clone();
        async move {
            let message: Value = serde_json::from_str(&body).unwrap();
            let channel = message["channel"].as_str().unwrap().to_string();
            log.lock().unwrap().push(("post".into(), channel.clone()));
            let answer = if channel == "U0BOT" {
                json!({"ok": false, "error": "cannot_dm_bot"})
            } else {
                json!({"ok": true, "channel": channel, "ts": "1795700000.000001"})
            };
            axum::Json(answer)
        }
    };
    let app = Router::new()
        .route("/api/users.lookupByEmail", axum::routing::get(lookup))
        .route("/api/chat.postMessage", post(post_message));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), log)
}

fn owner_delivery(slack: &Slack, owner: Option<&str>) -> Delivery {
    let mut input = data(lead(json!({})));
    input["crm"] = json!([
        {"connector": "salesforce", "id": "00Q1", "ownerEmail": null},
        {"connector": "hubspot", "id": "501", "ownerEmail": owner},
    ]);
    Delivery {
        key: "k".into(),
        visitor_id: "ab3f9".into(),
        payload: slack.render(&RenderContext::new(input)).unwrap(),
        attempt: 1,
    }
}

#[tokio::test]
async fn recipient_owner_sends_a_dm_to_the_crm_owner_or_to_the_fallback_channel() {
    let (base, log) = owner_slack().await;
    let slack = slack(json!({
        "webhook_url": null, "token": "${OIE_TEST_SLACK_TOKEN}", "recipient": "owner",
        "fallback_channel": "C0FALL", "base_url": format!("{base}/api"),
    }));
    let (slack, log) = (&slack, &log);
    let sent = |owner: Option<&str>| {
        let d = owner_delivery(slack, owner);
        async move {
            log.lock().unwrap().clear();
            let outcome = slack.send(&[d]).await.remove(0);
            (outcome, log.lock().unwrap().clone())
        }
    };
    let call = |m: &str, v: &str| (m.to_string(), v.to_string());

    // The owner is in Slack: a DM, and the user is remembered.
    let (outcome, calls) = sent(Some("rep@acme.example")).await;
    assert_eq!(outcome, Outcome::Delivered { record_id: None });
    assert_eq!(
        calls,
        vec![call("lookup", "rep@acme.example"), call("post", "U0REP")]
    );
    let (_, calls) = sent(Some("rep@acme.example")).await;
    assert_eq!(calls, vec![call("post", "U0REP")], "the lookup is cached");

    // No owner: the fallback channel, without a lookup.
    let (outcome, calls) = sent(None).await;
    assert_eq!(outcome, Outcome::Delivered { record_id: None });
    assert_eq!(calls, vec![call("post", "C0FALL")]);

    // An owner without a Slack account: the fallback channel (and that is remembered too).
    let (_, calls) = sent(Some("left@acme.example")).await;
    assert_eq!(
        calls,
        vec![call("lookup", "left@acme.example"), call("post", "C0FALL")]
    );
    let (_, calls) = sent(Some("left@acme.example")).await;
    assert_eq!(calls, vec![call("post", "C0FALL")]);

    // Slack refuses the DM for that user: the fallback channel, and the alert is delivered.
    let (outcome, calls) = sent(Some("bot@acme.example")).await;
    assert_eq!(outcome, Outcome::Delivered { record_id: None });
    assert_eq!(
        calls,
        vec![
            call("lookup", "bot@acme.example"),
            call("post", "U0BOT"),
            call("post", "C0FALL")
        ]
    );

    // A throttled lookup throttles the delivery; nothing is posted.
    let (outcome, calls) = sent(Some("busy@acme.example")).await;
    assert_eq!(outcome.label(), "throttled");
    assert_eq!(
        outcome.failure().unwrap().after,
        Some(Duration::from_secs(7))
    );
    assert_eq!(calls, vec![call("lookup", "busy@acme.example")]);
}

#[test]
fn recipient_owner_config_mistakes_are_reported() {
    let templates = Arc::new(TemplateSet::defaults());
    let error = |extra: Value| {
        Slack::new(config(extra), templates.clone(), memory())
            .err()
            .unwrap()
    };
    let api = |extra: Value| {
        let mut c = json!({"webhook_url": null, "token": "${OIE_TEST_SLACK_TOKEN}"});
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    };
    assert!(
        error(json!({"recipient": "owner", "fallback_channel": "C1"})).contains("needs `token`")
    );
    assert!(error(api(json!({"recipient": "owner"}))).contains("needs `fallback_channel`"));
    assert!(error(api(
        json!({"recipient": "owner", "channel": "C1", "fallback_channel": "C2"})
    ))
    .contains("instead of `channel`"));
    assert!(
        error(api(json!({"channel": "C1", "fallback_channel": "C2"})))
            .contains("goes with recipient = \"owner\"")
    );
    assert!(error(api(json!({"recipient": "manager", "channel": "C1"})))
        .contains("\"channel\" (the default) and \"owner\""));
    // Without recipient = "owner" the render carries no owner hint.
    let plain = slack(json!({}))
        .render(&RenderContext::new(data(lead(json!({})))))
        .unwrap();
    assert!(!plain.contains("_oie_owner"));
}

#[test]
fn a_persons_alert_says_how_many_others_of_its_account_are_active() {
    let with_others = |others: i64| {
        let mut d = data(lead(json!({})));
        d["account"] = json!({"accountDomain": "globex.example", "company": "Globex", "othersThisWeek": others});
        slack(json!({})).render(&RenderContext::new(d)).unwrap()
    };
    assert!(with_others(2).contains("👥 2 others from Globex active this week"));
    assert!(with_others(1).contains("👥 1 other from Globex active this week"));
    assert!(!with_others(0).contains("active this week"));
    let alone = slack(json!({}))
        .render(&RenderContext::new(data(lead(json!({})))))
        .unwrap();
    assert!(!alone.contains("active this week"), "no account, no line");
}

#[test]
fn an_account_is_its_own_thread_and_a_rise_to_burning_shows_in_the_channel() {
    let threaded = slack(
        json!({"webhook_url": null, "token": "${OIE_TEST_SLACK_TOKEN}",
                                 "channel": "C0123", "thread": "per_lead"}),
    );
    let data = |level: &str, previous: &str| {
        json!({
            "lead": {"visitorId": "account:globex.example"},
            "trigger": {"kind": "account_hot", "level": level, "previousLevel": previous, "at": "2026-11-26T10:00:00.000Z"},
            "route": "accounts",
            "account": {"accountDomain": "globex.example", "company": "Globex", "people": 3, "engagedPeople": 3,
                        "peakScore": 65, "accountScore": 85, "accountLevel": level, "topPages": [], "engaged": []},
        })
    };
    let render = |level: &str, previous: &str| -> Value {
        let text = threaded
            .render(&RenderContext::new(data(level, previous)))
            .unwrap();
        serde_json::from_str(&text).unwrap()
    };
    let burning = render("burning", "hot");
    assert!(burning["text"]
        .as_str()
        .unwrap()
        .contains("Globex is burning"));
    assert_eq!(burning["_oie_thread"]["broadcast"], true);
    assert_eq!(render("hot", "warm")["_oie_thread"]["broadcast"], false);
}
