use std::sync::Arc;
use std::time::{Duration, Instant};

use oie_fakes::hubspot::{self as fake, HubSpotFake};
use serde_json::{json, Value};

use super::*;
use crate::{Connector, Delivery, Failure, Outcome, Reason, RenderContext, TemplateSet};

fn lead(i: usize) -> Value {
    json!({
        "visitorId": format!("v{i}"), "email": format!("lead{i}@acme.example"),
        "firstName": "Jane", "lastName": format!("Doe{i}"), "company": "Acme", "title": null,
        "campaignName": "Q4 Outbound", "intentScore": 70 + (i % 30) as i64, "engagementLevel": "hot",
        "totalSessions": 3, "pricingPageVisits": 2, "formSubmissions": 1,
        "lastPageUrl": "https://acme.example/pricing"
    })
}

fn context(lead: Value, trigger: &str) -> RenderContext {
    RenderContext::new(json!({
        "lead": lead,
        "trigger": {"kind": trigger, "level": "hot", "previousLevel": "warm", "at": "2026-11-26T10:00:00.000Z"},
        "route": "crm",
        "crm": [],
    }))
}

/// What `${VAR}` references read in these tests (never the process environment).
fn env() -> std::collections::HashMap<String, String> {
    [
        ("OIE_TEST_HUBSPOT_TOKEN", fake::TOKEN),
        ("OIE_TEST_HUBSPOT_SECRET", fake::CLIENT_SECRET),
        ("OIE_TEST_HUBSPOT_REFRESH", fake::REFRESH_TOKEN),
        ("OIE_TEST_HUBSPOT_BAD", "pat-wrong"),
        ("OIE_TEST_HUBSPOT_REVOKED", "revoked"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn config(base: &str, extra: Value) -> HubSpotConfig {
    let mut c = json!({
        "token": "${OIE_TEST_HUBSPOT_TOKEN}",
        "base_url": base,
        "properties": {"oie_intent_score": "{{lead.intentScore}}", "oie_engagement_level": "{{lead.engagementLevel}}"},
    });
    for (k, v) in extra.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    crate::secret::with_env(&env(), || serde_json::from_value(c)).unwrap()
}

fn hubspot(base: &str, extra: Value) -> HubSpot {
    HubSpot::new(
        config(base, extra),
        Arc::new(TemplateSet::defaults()),
        "crm",
    )
    .unwrap()
}

fn deliveries(
    hs: &HubSpot,
    leads: impl IntoIterator<Item = Value>,
    trigger: &str,
) -> Vec<Delivery> {
    leads
        .into_iter()
        .enumerate()
        .map(|(i, lead)| Delivery {
            key: format!("k{i}"),
            visitor_id: lead["visitorId"].as_str().unwrap().to_string(),
            payload: hs.render(&context(lead, trigger)).unwrap(),
            attempt: 1,
        })
        .collect()
}

fn failure(outcome: &Outcome) -> &Failure {
    outcome
        .failure()
        .unwrap_or_else(|| panic!("not a failure: {outcome:?}"))
}

fn delivered(outcomes: &[Outcome]) -> usize {
    outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Delivered { record_id: Some(_) }))
        .count()
}

#[test]
fn renders_one_input_with_defaults_and_mapped_properties() {
    let hs = hubspot("http://127.0.0.1:9", json!({}));
    let text = hs.render(&context(lead(7), "sync")).unwrap();
    let input: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(input["id"], "lead7@acme.example");
    assert_eq!(input["idProperty"], "email");
    let props = &input["properties"];
    assert_eq!(props["firstname"], "Jane");
    assert_eq!(props["lastname"], "Doe7");
    assert_eq!(props["oie_intent_score"], "77");
    // Unknown values are left out, never sent as "" (which would blank the CRM's value).
    let mut anonymous_title = lead(7);
    anonymous_title["company"] = Value::Null;
    let input: Value =
        serde_json::from_str(&hs.render(&context(anonymous_title, "sync")).unwrap()).unwrap();
    assert!(input["properties"].get("company").is_none());
    assert!(input.get("note").is_none(), "no note without note_template");
}

#[test]
fn leads_without_email_are_a_render_error_and_bad_templates_a_config_error() {
    let hs = hubspot("http://127.0.0.1:9", json!({}));
    let mut anonymous = lead(1);
    anonymous["email"] = Value::Null;
    let err = hs.render(&context(anonymous, "sync")).unwrap_err();
    assert!(err.to_string().contains("lead.email != null"), "{err}");

    let bad = HubSpot::new(
        config(
            "http://127.0.0.1:9",
            json!({"properties": {"x": "{{#if}}"}}),
        ),
        Arc::new(TemplateSet::defaults()),
        "crm",
    );
    assert!(bad.err().unwrap().contains("field `x`"));
    let both = HubSpot::new(
        config(
            "http://127.0.0.1:9",
            json!({"client_id": "a", "client_secret": "${OIE_TEST_HUBSPOT_SECRET}", "refresh_token": "${OIE_TEST_HUBSPOT_REFRESH}"}),
        ),
        Arc::new(TemplateSet::defaults()),
        "crm",
    );
    assert!(both.err().unwrap().contains("not both"));
}

#[test]
fn notes_escape_lead_text_as_html() {
    let hs = hubspot(
        "http://127.0.0.1:9",
        json!({"note_template": "hubspot/note"}),
    );
    let mut l = lead(1);
    l["firstName"] = json!("<img src=x onerror=alert(1)>");
    let input: Value = serde_json::from_str(&hs.render(&context(l, "hot_lead")).unwrap()).unwrap();
    let body = input["note"]["body"].as_str().unwrap();
    assert!(body.contains("&lt;img"), "{body}");
    assert!(!body.contains("<img"), "{body}");
    assert_eq!(input["note"]["timestamp"], "2026-11-26T10:00:00.000Z");
}

#[tokio::test]
async fn upserts_in_batches_of_100_and_updates_on_the_second_run() {
    let fake = HubSpotFake::start().await;
    let hs = hubspot(&fake.base, json!({}));
    let batch = deliveries(&hs, (0..250).map(lead), "sync");
    let mut outcomes = Vec::new();
    for chunk in batch.chunks(hs.max_batch()) {
        outcomes.extend(hs.send(chunk).await);
    }
    assert_eq!(delivered(&outcomes), 250);
    assert_eq!(fake.upsert_calls(), 3);
    assert_eq!(fake.contacts().len(), 250);
    let Outcome::Delivered {
        record_id: Some(id),
    } = &outcomes[5]
    else {
        panic!("{:?}", outcomes[5]);
    };
    assert_eq!(&fake.contact("lead5@acme.example").unwrap().id, id);

    let changed = (0..250).map(|i| {
        let mut l = lead(i);
        l["intentScore"] = json!(99);
        l
    });
    let batch = deliveries(&hs, changed, "sync");
    for chunk in batch.chunks(100) {
        hs.send(chunk).await;
    }
    let contacts = fake.contacts();
    assert_eq!(contacts.len(), 250, "updates, not creates");
    assert!(contacts
        .values()
        .all(|c| c.updates == 1 && c.properties["oie_intent_score"] == "99"));
    assert_eq!(fake.rate_limited(), (0, 0));
}

#[tokio::test]
async fn a_207_is_handled_input_by_input() {
    let fake = HubSpotFake::start().await;
    let hs = hubspot(&fake.base, json!({}));
    let mut bad_email = lead(2);
    bad_email["email"] = json!("not-an-email");
    let batch = deliveries(&hs, [lead(1), bad_email, lead(3)], "sync");
    let outcomes = hs.send(&batch).await;
    assert!(matches!(outcomes[0], Outcome::Delivered { .. }));
    assert!(matches!(outcomes[2], Outcome::Delivered { .. }));
    let bad = failure(&outcomes[1]);
    assert_eq!(bad.reason, Reason::InvalidItem);
    assert!(
        bad.detail.contains("VALIDATION_ERROR") && bad.detail.contains("invalid"),
        "{bad}"
    );

    let unknown = hubspot(&fake.base, json!({"properties": {"no_such_property": "x"}}));
    let batch = deliveries(&unknown, [lead(4)], "sync");
    let outcomes = unknown.send(&batch).await;
    let unknown = failure(&outcomes[0]);
    assert!(unknown.detail.contains("no_such_property"), "{unknown}");
    assert_eq!(unknown.reason, Reason::InvalidItem);
}

#[tokio::test]
async fn two_deliveries_for_one_email_become_one_input() {
    let fake = HubSpotFake::start().await;
    let hs = hubspot(&fake.base, json!({}));
    let mut later = lead(1);
    later["intentScore"] = json!(95);
    let batch = deliveries(&hs, [lead(1), later], "sync");
    let outcomes = hs.send(&batch).await;
    assert_eq!(delivered(&outcomes), 2, "{outcomes:?}");
    assert_eq!(outcomes[0], outcomes[1]);
    let contact = fake.contact("lead1@acme.example").unwrap();
    assert_eq!(
        contact.properties["oie_intent_score"], "95",
        "the later payload wins"
    );
}

#[tokio::test]
async fn the_window_paces_requests_without_a_single_429() {
    let fake = HubSpotFake::with_window(5, Duration::from_millis(500)).await;
    let hs = Arc::new(hubspot(
        &fake.base,
        json!({"window_limit": 5, "window": "500ms"}),
    ));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..16 {
        let hs = hs.clone();
        let d = deliveries(&hs, [lead(i)], "sync");
        tasks.push(tokio::spawn(async move { hs.send(&d).await }));
    }
    for t in tasks {
        assert_eq!(delivered(&t.await.unwrap()), 1);
    }
    assert_eq!(fake.rate_limited(), (0, 0));
    // 16 requests at 5 per 500 ms need at least three full windows.
    assert!(started.elapsed() >= Duration::from_millis(1500));
}

#[tokio::test]
async fn headers_lower_the_limit_and_a_window_429_pauses_the_connector() {
    let fake = HubSpotFake::with_window(100, Duration::from_secs(10)).await;
    let hs = hubspot(&fake.base, json!({}));
    hs.send(&deliveries(&hs, [lead(0)], "sync")).await;
    assert_eq!(hs.window_limit(), (100, Duration::from_secs(10)));
    // The portal's window shrinks under us (another app, a plan change).
    fake.set_window(1, Duration::from_millis(400));
    let outcome = hs.send(&deliveries(&hs, [lead(1)], "sync")).await.remove(0);
    let limited = failure(&outcome);
    assert_eq!(limited.reason, Reason::Throttled);
    assert!(limited.detail.contains("TEN_SECONDLY_ROLLING"), "{limited}");
    assert_eq!(limited.after, Some(Duration::from_millis(400)));
    assert_eq!(hs.window_limit(), (1, Duration::from_millis(400)));
    assert_eq!(fake.rate_limited(), (1, 0));
    // The next request waits for the window instead of meeting another 429.
    let outcome = hs.send(&deliveries(&hs, [lead(1)], "sync")).await.remove(0);
    assert!(matches!(outcome, Outcome::Delivered { .. }), "{outcome:?}");
    assert_eq!(fake.rate_limited(), (1, 0));
}

#[tokio::test]
async fn a_daily_429_is_quota_until_the_reset() {
    let fake = HubSpotFake::start().await;
    fake.set_daily(250_000, 250_000);
    let hs = hubspot(&fake.base, json!({}));
    let outcome = hs.send(&deliveries(&hs, [lead(0)], "sync")).await.remove(0);
    let quota = failure(&outcome);
    assert_eq!(quota.reason, Reason::Quota);
    let after = quota.after.expect("when to look again");
    assert!(after > Duration::ZERO && after <= Duration::from_secs(3600));
    let gauges = hs.gauges();
    assert!(gauges.contains(&("daily_remaining", 0.0)), "{gauges:?}");
    assert_eq!(fake.rate_limited(), (0, 1));
}

#[tokio::test]
async fn auth_failures_say_what_to_fix_and_5xx_retry() {
    let fake = HubSpotFake::start().await;
    let hs = hubspot(&fake.base, json!({"token": "${OIE_TEST_HUBSPOT_BAD}"}));
    let outcome = hs.send(&deliveries(&hs, [lead(0)], "sync")).await.remove(0);
    let auth = failure(&outcome);
    assert_eq!(auth.reason, Reason::Auth);
    assert!(
        auth.detail.contains("HTTP 401") && auth.detail.contains("token"),
        "{auth}"
    );
    assert!(!auth.detail.contains("pat-wrong"), "the token never shows");
    let checked = hs.check().await.unwrap_err();
    assert_eq!(checked.reason, Reason::Auth, "{checked}");

    let hs = hubspot(&fake.base, json!({}));
    fake.fail_next(&[500]);
    let outcome = hs.send(&deliveries(&hs, [lead(0)], "sync")).await.remove(0);
    assert_eq!(outcome.label(), "server_error", "{outcome:?}");
    assert!(hs.check().await.unwrap().contains("authenticated"));
}

#[tokio::test]
async fn oauth_tokens_are_refreshed_once_and_reused() {
    let fake = HubSpotFake::start().await;
    let oauth = json!({
        "token": null, "client_id": fake::CLIENT_ID,
        "client_secret": "${OIE_TEST_HUBSPOT_SECRET}", "refresh_token": "${OIE_TEST_HUBSPOT_REFRESH}",
    });
    let hs = Arc::new(hubspot(&fake.base, oauth.clone()));
    let mut tasks = Vec::new();
    for i in 0..10 {
        let hs = hs.clone();
        let d = deliveries(&hs, [lead(i)], "sync");
        tasks.push(tokio::spawn(async move { hs.send(&d).await }));
    }
    for t in tasks {
        assert_eq!(delivered(&t.await.unwrap()), 1);
    }
    assert_eq!(
        fake.token_calls(),
        1,
        "one refresh for ten concurrent calls"
    );
    assert_eq!(hs.token_requests(), 1);

    // A token that lives 61 s is renewed a minute early: every call refreshes.
    fake.set_access_lifetime(Duration::from_secs(61));
    let hs = hubspot(&fake.base, oauth.clone());
    hs.send(&deliveries(&hs, [lead(1)], "sync")).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    hs.send(&deliveries(&hs, [lead(1)], "sync")).await;
    assert_eq!(fake.token_calls(), 3);

    let mut revoked = oauth;
    revoked["refresh_token"] = json!("${OIE_TEST_HUBSPOT_REVOKED}");
    let hs = hubspot(&fake.base, revoked);
    let outcome = hs.send(&deliveries(&hs, [lead(1)], "sync")).await.remove(0);
    let refused = failure(&outcome);
    assert_eq!(refused.reason, Reason::Auth);
    assert!(
        refused.detail.contains("refused the token request"),
        "{refused}"
    );
}

#[tokio::test]
async fn hot_leads_get_a_note_on_their_contact() {
    let fake = HubSpotFake::start().await;
    let hs = hubspot(&fake.base, json!({"note_template": "hubspot/note"}));
    let mut batch = deliveries(&hs, [lead(1), lead(2)], "hot_lead");
    batch.extend(deliveries(&hs, [lead(3)], "sync"));
    let outcomes = hs.send(&batch).await;
    assert_eq!(delivered(&outcomes), 3, "{outcomes:?}");
    assert_eq!((fake.upsert_calls(), fake.note_calls()), (1, 1));
    let notes = fake.notes();
    assert_eq!(notes.len(), 2, "sync triggers get no note");
    let contact = fake.contact("lead1@acme.example").unwrap();
    let note = notes.iter().find(|n| n.contact == contact.id).unwrap();
    assert!(
        note.body.contains("Jane Doe1 is a hot lead"),
        "{}",
        note.body
    );
    assert_eq!(note.timestamp, "2026-11-26T10:00:00.000Z");
}

#[tokio::test]
async fn the_v3_path_works_too() {
    let fake = HubSpotFake::start().await;
    let hs = hubspot(&fake.base, json!({"objects_path": "/crm/v3/objects"}));
    let outcomes = hs.send(&deliveries(&hs, [lead(1)], "sync")).await;
    assert_eq!(delivered(&outcomes), 1, "{outcomes:?}");
}

#[tokio::test]
async fn record_owners_reads_each_contacts_owner_and_caches_owner_emails() {
    let fake = HubSpotFake::start().await;
    let hs = hubspot(&fake.base, json!({}));
    fake.assign_new_contacts_to(Some("Rep@Acme.example"));
    let owned = hs.send(&deliveries(&hs, (0..3).map(lead), "sync")).await;
    fake.assign_new_contacts_to(None);
    let unowned = hs.send(&deliveries(&hs, (3..5).map(lead), "sync")).await;
    let id = |o: &Outcome| o.record_id().unwrap_or_else(|| panic!("{o:?}")).to_string();
    let mut ids: Vec<String> = owned.iter().chain(&unowned).map(id).collect();
    ids.push("424242".into());
    let owners = hs.record_owners(&ids).await.unwrap();
    assert_eq!(
        owners.len(),
        5,
        "a contact HubSpot does not have is left out"
    );
    assert_eq!(owners[&ids[0]].as_deref(), Some("rep@acme.example"));
    assert_eq!(owners[&ids[2]].as_deref(), Some("rep@acme.example"));
    assert_eq!(owners[&ids[3]], None);
    assert_eq!(fake.owner_reads(), 1, "one owner, read once");
    hs.record_owners(&ids[..1]).await.unwrap();
    assert_eq!(fake.owner_reads(), 1, "cached");

    // A refused read is the call's failure (oie keeps what it knew).
    fake.fail_next(&[500]);
    let err = hs.record_owners(&ids[..1]).await.unwrap_err();
    assert_eq!(err.reason, Reason::ServerError);
}

/// An account trigger's render data: the account with the CRM records of its members.
fn account_context(members: &[(&str, &str)], records: Value) -> RenderContext {
    let member_records: Vec<Value> = members
        .iter()
        .map(|(connector, id)| json!({"connector": connector, "id": id}))
        .collect();
    RenderContext::new(json!({
        "lead": {"visitorId": "account:globex.example"},
        "trigger": {"kind": "account_sync", "level": "burning", "previousLevel": null, "at": "2026-11-26T10:00:00.000Z"},
        "route": "accounts",
        "crm": [],
        "account": {"accountDomain": "globex.example", "company": "Globex", "accountScore": 85,
                    "accountLevel": "burning", "engagedPeople": 3, "people": 3,
                    "memberRecords": member_records, "records": records},
    }))
}

#[tokio::test]
async fn accounts_become_companies_with_their_people_associated() {
    let fake = HubSpotFake::start().await;
    let hs = hubspot(&fake.base, json!({}));
    let contacts: Vec<String> = hs
        .send(&deliveries(&hs, (0..3).map(lead), "sync"))
        .await
        .iter()
        .map(|o| o.record_id().unwrap_or_else(|| panic!("{o:?}")).to_string())
        .collect();
    // The company, with the two members oie knows here (another connector's records are not
    // this portal's).
    let members = [
        ("crm", contacts[0].as_str()),
        ("crm", contacts[1].as_str()),
        ("other", "999"),
    ];
    let payload = hs.render(&account_context(&members, json!([]))).unwrap();
    let company = Delivery {
        key: "acct".into(),
        visitor_id: "account:globex.example".into(),
        payload,
        attempt: 1,
    };
    let outcome = hs.send(std::slice::from_ref(&company)).await.remove(0);
    let Outcome::Delivered {
        record_id: Some(company_id),
    } = outcome
    else {
        panic!("{outcome:?}");
    };
    let made = &fake.companies()["globex.example"];
    assert_eq!(made.id, company_id);
    assert_eq!(made.properties["name"], "Globex");
    assert_eq!(made.properties["domain"], "globex.example");
    assert_eq!(made.properties["oie_account_score"], "85");
    assert_eq!(made.properties["oie_account_level"], "burning");
    let mut want = vec![contacts[0].clone(), contacts[1].clone()];
    want.sort();
    assert_eq!(fake.contacts_of_company(&company_id), want);

    // The third person's next sync, once the account's company is known: it joins it.
    let mut ctx = context(lead(2), "sync").data().clone();
    ctx["account"] = json!({"records": [{"connector": "crm", "id": company_id}]});
    let payload = hs.render(&RenderContext::new(ctx)).unwrap();
    let sync = Delivery {
        key: "k2".into(),
        visitor_id: "v2".into(),
        payload,
        attempt: 1,
    };
    // Sent with the company again in one batch: one call each, in order.
    let outcomes = hs.send(&[company, sync]).await;
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, Outcome::Delivered { .. })),
        "{outcomes:?}"
    );
    assert_eq!(fake.contacts_of_company(&company_id).len(), 3);
    assert_eq!(fake.companies().len(), 1, "upserted, not created again");

    // A company id property HubSpot does not hold unique: a dead letter saying so.
    let by_domain = hubspot(&fake.base, json!({"company_id_property": "domain"}));
    let payload = by_domain.render(&account_context(&[], json!([]))).unwrap();
    let outcome = by_domain
        .send(&[Delivery {
            key: "acct2".into(),
            visitor_id: "account:globex.example".into(),
            payload,
            attempt: 1,
        }])
        .await
        .remove(0);
    let f = failure(&outcome);
    assert_eq!(f.reason, Reason::InvalidItem);
    assert!(f.detail.contains("not a unique property"), "{f}");
}

#[test]
fn record_urls_name_the_id_and_are_urls() {
    let hs = hubspot(
        "http://127.0.0.1:9",
        json!({"record_url": "https://app.hubspot.com/contacts/42/record/0-1/{id}"}),
    );
    assert_eq!(
        hs.record_url("501").as_deref(),
        Some("https://app.hubspot.com/contacts/42/record/0-1/501")
    );
    assert_eq!(
        hs.record_url("a/b").as_deref(),
        Some("https://app.hubspot.com/contacts/42/record/0-1/a%2Fb"),
        "the id is encoded"
    );
    assert!(hubspot("http://127.0.0.1:9", json!({}))
        .record_url("501")
        .is_none());
    for (bad, why) in [
        ("https://app.hubspot.com/contacts/42", "no `{id}`"),
        ("not a url {id}", "not a URL"),
    ] {
        let err = HubSpot::new(
            config("http://127.0.0.1:9", json!({"record_url": bad})),
            Arc::new(TemplateSet::defaults()),
            "crm",
        )
        .err()
        .unwrap();
        assert!(err.contains(why), "{bad}: {err}");
    }
}
