use std::time::Duration;

use oie_fakes::salesforce::{self as fake, SalesforceFake};
use serde_json::{json, Value};

use super::limits::spacing;
use super::*;
use crate::{Connector, Delivery, Failure, Outcome, Reason, RenderContext, Secret};

fn lead(i: usize) -> Value {
    json!({
        "visitorId": format!("v{i}"), "email": format!("lead{i}@acme.example"),
        "firstName": "Jane", "lastName": format!("Doe{i}"), "company": "Acme",
        "intentScore": 60 + (i % 40) as i64, "engagementLevel": "hot",
    })
}

fn context(lead: Value) -> RenderContext {
    RenderContext::new(json!({
        "lead": lead,
        "trigger": {"kind": "sync", "level": "hot", "previousLevel": null, "at": "2026-11-26T10:00:00.000Z"},
        "route": "crm",
        "crm": [],
    }))
}

fn jwt_config(fake: &SalesforceFake, extra: Value) -> SalesforceConfig {
    let mut c = json!({
        "client_id": fake::CLIENT_ID,
        "username": fake::USERNAME,
        "login_url": fake.base,
        "fields": {"OIE_Intent_Score__c": "{{lead.intentScore}}"},
    });
    for (k, v) in extra.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    // What `${VAR}` references read here (never the process environment).
    let env = [
        ("OIE_TEST_SF_SECRET", fake::CLIENT_SECRET),
        ("OIE_TEST_SF_WRONG", "nope"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    crate::secret::with_env(&env, || serde_json::from_value(c)).unwrap()
}

fn jwt(fake: &SalesforceFake, extra: Value) -> Salesforce {
    Salesforce::new(
        jwt_config(fake, extra),
        Some(Secret::new(fake::TEST_PRIVATE_KEY)),
        "crm",
    )
    .unwrap()
}

fn deliveries(sf: &Salesforce, leads: impl IntoIterator<Item = Value>) -> Vec<Delivery> {
    leads
        .into_iter()
        .enumerate()
        .map(|(i, lead)| Delivery {
            key: format!("k{i}"),
            visitor_id: lead["visitorId"].as_str().unwrap().to_string(),
            payload: sf.render(&context(lead)).unwrap(),
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

#[tokio::test]
async fn renders_a_collection_record() {
    let fake = SalesforceFake::start_with_test_key().await;
    let sf = jwt(&fake, json!({}));
    let record: Value = serde_json::from_str(&sf.render(&context(lead(3))).unwrap()).unwrap();
    assert_eq!(
        record,
        json!({"attributes": {"type": "Lead"}, "OIE_Visitor_Id__c": "v3", "Company": "Acme",
               "Email": "lead3@acme.example", "FirstName": "Jane", "LastName": "Doe3",
               "OIE_Intent_Score__c": "63"})
    );
    let contact = jwt(&fake, json!({"object": "Contact"}));
    let record: Value = serde_json::from_str(&contact.render(&context(lead(3))).unwrap()).unwrap();
    assert!(
        record.get("Company").is_none(),
        "contacts have no Company field"
    );
}

#[tokio::test]
async fn upserts_200_per_call_then_updates() {
    let fake = SalesforceFake::start_with_test_key().await;
    let sf = jwt(&fake, json!({}));
    let batch = deliveries(&sf, (0..450).map(lead));
    let mut outcomes = Vec::new();
    for chunk in batch.chunks(sf.max_batch()) {
        outcomes.extend(sf.send(chunk).await);
    }
    assert_eq!(delivered(&outcomes), 450);
    assert_eq!((fake.collection_calls(), fake.token_calls()), (3, 1));
    assert_eq!(fake.records().len(), 450);
    let Outcome::Delivered {
        record_id: Some(id),
    } = &outcomes[17]
    else {
        panic!("{:?}", outcomes[17]);
    };
    assert_eq!(&fake.record("v17").unwrap().id, id);

    let changed = (0..450).map(|i| {
        let mut l = lead(i);
        l["intentScore"] = json!(99);
        l
    });
    for chunk in deliveries(&sf, changed).chunks(200) {
        sf.send(chunk).await;
    }
    let records = fake.records();
    assert_eq!(records.len(), 450, "updates, not creates");
    assert!(records
        .values()
        .all(|r| r.updates == 1 && r.fields["OIE_Intent_Score__c"] == "99"));
    let gauges = sf.gauges();
    assert!(gauges.contains(&("daily_used", 6.0)), "{gauges:?}");
    assert!(gauges.contains(&("daily_limit", 100_000.0)), "{gauges:?}");
}

#[tokio::test]
async fn per_record_errors_map_to_their_deliveries() {
    let fake = SalesforceFake::start_with_test_key().await;
    let sf = jwt(&fake, json!({}));
    fake.lock_once("v1");
    fake.seed_duplicate("v2");
    let mut no_last_name = lead(3);
    no_last_name["lastName"] = Value::Null;
    let batch = deliveries(&sf, [lead(0), lead(1), lead(2), no_last_name]);
    let outcomes = sf.send(&batch).await;
    assert!(matches!(outcomes[0], Outcome::Delivered { .. }));
    let locked = failure(&outcomes[1]);
    assert_eq!(locked.reason, Reason::ServerError, "{locked}");
    assert!(locked.detail.contains("UNABLE_TO_LOCK_ROW"));
    let several = failure(&outcomes[2]);
    assert_eq!(several.reason, Reason::InvalidItem);
    assert!(
        several.detail.starts_with("several records") && several.detail.contains("merge"),
        "{several}"
    );
    let missing = failure(&outcomes[3]);
    assert_eq!(missing.reason, Reason::InvalidItem);
    assert!(
        missing.detail.contains("REQUIRED_FIELD_MISSING")
            && missing.detail.contains("fields: LastName"),
        "{missing}"
    );
    // The locked row goes through on the retry.
    let outcomes = sf.send(&batch[1..2]).await;
    assert_eq!(delivered(&outcomes), 1);

    let unknown = jwt(&fake, json!({"fields": {"No_Such__c": "x"}}));
    let outcome = unknown
        .send(&deliveries(&unknown, [lead(5)]))
        .await
        .remove(0);
    assert!(
        failure(&outcome).detail.contains("INVALID_FIELD"),
        "{outcome:?}"
    );
    let err = unknown.check().await.unwrap_err();
    assert!(err.detail.contains("No_Such__c"), "{err}");
    assert!(sf.check().await.unwrap().contains("OIE_Visitor_Id__c"));
}

#[tokio::test]
async fn an_expired_session_mints_one_new_token() {
    let fake = SalesforceFake::start_with_test_key().await;
    let sf = jwt(&fake, json!({}));
    assert_eq!(delivered(&sf.send(&deliveries(&sf, [lead(0)])).await), 1);
    fake.expire_tokens();
    assert_eq!(delivered(&sf.send(&deliveries(&sf, [lead(1)])).await), 1);
    assert_eq!((fake.token_calls(), sf.token_requests()), (2, 2));
    assert_eq!(fake.collection_calls(), 2);
}

#[tokio::test]
async fn the_jwt_is_verified_and_refusals_say_what_to_check() {
    let fake = SalesforceFake::start_with_test_key().await;
    let wrong_key = Salesforce::new(
        jwt_config(&fake, json!({})),
        Some(Secret::new(include_str!(
            "../../../fakes/keys/wrong_private.pem"
        ))),
        "crm",
    )
    .unwrap();
    let outcome = wrong_key
        .send(&deliveries(&wrong_key, [lead(0)]))
        .await
        .remove(0);
    let refused = failure(&outcome);
    assert_eq!(refused.reason, Reason::Auth);
    assert!(refused.detail.contains("invalid_grant"), "{refused}");
    let other_user = jwt(&fake, json!({"username": "someone@else.example"}));
    let outcome = other_user
        .send(&deliveries(&other_user, [lead(0)]))
        .await
        .remove(0);
    assert!(failure(&outcome).detail.contains("approved"), "{outcome:?}");
    assert!(fake.records().is_empty());
    let wrong_audience = jwt(&fake, json!({"audience": "https://login.salesforce.com"}));
    assert!(wrong_audience
        .check()
        .await
        .unwrap_err()
        .detail
        .contains("invalid_grant"));
}

#[tokio::test]
async fn client_credentials_work_and_a_wrong_secret_is_an_auth_failure() {
    let fake = SalesforceFake::start_with_test_key().await;
    let cc = |secret: &str| {
        let config = jwt_config(
            &fake,
            json!({"username": null, "login_url": null, "client_secret": secret,
                   "token_url": format!("{}/services/oauth2/token", fake.base)}),
        );
        Salesforce::new(config, None, "crm").unwrap()
    };
    let sf = cc("${OIE_TEST_SF_SECRET}");
    assert_eq!(delivered(&sf.send(&deliveries(&sf, [lead(0)])).await), 1);
    let bad = cc("${OIE_TEST_SF_WRONG}");
    let outcome = bad.send(&deliveries(&bad, [lead(1)])).await.remove(0);
    let refused = failure(&outcome);
    assert_eq!(refused.reason, Reason::Auth);
    assert!(
        refused.detail.contains("invalid_client") && !refused.detail.contains("nope"),
        "{refused}"
    );
}

#[tokio::test]
async fn request_limit_exceeded_is_quota_for_the_daily_allocation_and_a_throttle_otherwise() {
    let fake = SalesforceFake::start_with_test_key().await;
    let sf = jwt(&fake, json!({}));
    fake.concurrent_limit(1);
    let outcome = sf.send(&deliveries(&sf, [lead(0)])).await.remove(0);
    let concurrent = failure(&outcome);
    assert_eq!(concurrent.reason, Reason::Throttled, "{concurrent}");
    assert!(
        concurrent
            .detail
            .starts_with("too many concurrent requests")
            && concurrent.after.is_none(),
        "{concurrent}"
    );

    fake.set_usage(15_000, 15_000);
    let outcome = sf.send(&deliveries(&sf, [lead(0)])).await.remove(0);
    let daily = failure(&outcome);
    assert_eq!(daily.reason, Reason::Quota, "{daily}");
    assert!(daily.detail.contains("daily API allocation"), "{daily}");
    assert_eq!(daily.after, Some(Duration::from_secs(15 * 60)));
}

#[test]
fn headroom_spaces_calls_so_the_rest_lasts_a_day() {
    assert_eq!(spacing(50_000, 100_000, 0.10), None);
    assert_eq!(spacing(89_999, 100_000, 0.10), None);
    // 10,000 left of 100,000: one call every 8.64 s.
    assert_eq!(
        spacing(90_000, 100_000, 0.10),
        Some(Duration::from_millis(8_640))
    );
    assert_eq!(
        spacing(99_999, 100_000, 0.10),
        Some(Duration::from_secs(15 * 60))
    );
    assert_eq!(spacing(0, 0, 0.10), None);
    assert_eq!(
        parse_limit_info("api-usage=10018/100000"),
        Some((10_018, 100_000))
    );
    assert_eq!(
        parse_limit_info("per-app-api-usage=1/2, api-usage=3/4"),
        Some((3, 4))
    );
    assert_eq!(parse_limit_info("garbage"), None);
}

#[tokio::test]
async fn config_mistakes_are_reported() {
    let fake = SalesforceFake::start_with_test_key().await;
    let err = |extra: Value, key: Option<&str>| {
        Salesforce::new(jwt_config(&fake, extra), key.map(Secret::new), "crm")
            .err()
            .unwrap()
    };
    assert!(err(json!({}), None).contains("private_key"));
    assert!(err(json!({}), Some("not a key")).contains("PEM"));
    assert!(err(
        json!({"api_version": "latest"}),
        Some(fake::TEST_PRIVATE_KEY)
    )
    .contains("v66.0"));
    assert!(err(
        json!({"fields": {"OIE_Visitor_Id__c": "x"}}),
        Some(fake::TEST_PRIVATE_KEY)
    )
    .contains("external id"));
    assert!(err(json!({"headroom": 1.5}), Some(fake::TEST_PRIVATE_KEY)).contains("headroom"));
    assert!(err(
        json!({"client_secret": "${OIE_TEST_SF_SECRET}"}),
        Some(fake::TEST_PRIVATE_KEY)
    )
    .contains("one flow"));
}

#[tokio::test]
async fn record_owners_reads_owner_emails_200_ids_a_query() {
    let fake = SalesforceFake::start_with_test_key().await;
    let sf = jwt(&fake, json!({}));
    fake.assign_new_records_to(Some("Rep@Acme.example"));
    let first = sf.send(&deliveries(&sf, (0..3).map(lead))).await;
    fake.assign_new_records_to(None);
    let mut second = Vec::new();
    for chunk in deliveries(&sf, (3..205).map(lead)).chunks(sf.max_batch()) {
        second.extend(sf.send(chunk).await);
    }
    let ids: Vec<String> = first
        .iter()
        .chain(&second)
        .map(|o| o.record_id().unwrap_or_else(|| panic!("{o:?}")).to_string())
        .collect();
    let calls = fake.calls();
    let mut asked = ids.clone();
    // An id that is not an id never reaches the query; one Salesforce does not have is absent.
    asked.push("00Q' OR Name != '".into());
    asked.push("00Q999999999999999".into());
    let owners = sf.record_owners(&asked).await.unwrap();
    assert_eq!(fake.calls() - calls, 2, "205 ids: two queries");
    assert_eq!(owners.len(), 205);
    assert_eq!(owners[&ids[0]].as_deref(), Some("rep@acme.example"));
    assert_eq!(owners[&ids[4]], None, "no owner oie can name");
    assert!(!owners.contains_key("00Q999999999999999"));
}

#[tokio::test]
async fn accounts_become_accounts_and_leads_carry_their_score() {
    let fake = SalesforceFake::start_with_test_key().await;
    // Leads carry the account's score where one is known (a template guarded by `#if`).
    let sf = jwt(
        &fake,
        json!({"fields": {"OIE_Intent_Score__c": "{{lead.intentScore}}",
                          "OIE_Account_Score__c": "{{#if account}}{{account.accountScore}}{{/if}}"}}),
    );
    let account = json!({"accountDomain": "globex.example", "company": "Globex", "accountScore": 85,
                         "accountLevel": "burning", "records": []});
    let mut with_account = context(lead(1)).data().clone();
    with_account["account"] = account.clone();
    let leads = [
        Delivery {
            key: "k0".into(),
            visitor_id: "v0".into(),
            payload: sf.render(&context(lead(0))).unwrap(),
            attempt: 1,
        },
        Delivery {
            key: "k1".into(),
            visitor_id: "v1".into(),
            payload: sf.render(&RenderContext::new(with_account)).unwrap(),
            attempt: 1,
        },
    ];
    assert_eq!(delivered(&sf.send(&leads).await), 2);
    assert!(!fake
        .record("v0")
        .unwrap()
        .fields
        .contains_key("OIE_Account_Score__c"));
    assert_eq!(
        fake.record("v1").unwrap().fields["OIE_Account_Score__c"],
        "85"
    );

    // The account itself, upserted by its domain into Account, beside a Lead in one batch.
    let account_data = json!({
        "lead": {"visitorId": "account:globex.example"},
        "trigger": {"kind": "account_sync", "level": "burning", "previousLevel": null, "at": "2026-11-26T10:00:00.000Z"},
        "route": "accounts", "crm": [], "account": account,
    });
    let account_delivery = Delivery {
        key: "acct".into(),
        visitor_id: "account:globex.example".into(),
        payload: sf.render(&RenderContext::new(account_data)).unwrap(),
        attempt: 1,
    };
    let outcomes = sf.send(&[account_delivery.clone(), leads[0].clone()]).await;
    assert_eq!(delivered(&outcomes), 2, "{outcomes:?}");
    let accounts = fake.accounts();
    let made = &accounts["globex.example"];
    assert!(made.id.starts_with("001"));
    assert_eq!(made.fields["Name"], "Globex");
    assert_eq!(made.fields["Website"], "globex.example");
    assert_eq!(made.fields["OIE_Account_Score__c"], "85");
    assert_eq!(made.fields["OIE_Account_Level__c"], "burning");
    let Outcome::Delivered {
        record_id: Some(id),
    } = &outcomes[0]
    else {
        panic!("{outcomes:?}");
    };
    assert_eq!(id, &made.id);
    sf.send(&[account_delivery]).await;
    assert_eq!(fake.accounts().len(), 1, "upserted, not created again");
    assert_eq!(fake.accounts()["globex.example"].updates, 1);
}

#[tokio::test]
async fn a_contact_joins_its_accounts_account() {
    let fake = SalesforceFake::start_with_test_key().await;
    let sf = jwt(&fake, json!({"object": "Contact"}));
    let mut data = context(lead(0)).data().clone();
    data["account"] = json!({"records": [{"connector": "other", "id": "001OTHER"},
                                         {"connector": "crm", "id": "001000000000000042"}]});
    let record: Value =
        serde_json::from_str(&sf.render(&RenderContext::new(data)).unwrap()).unwrap();
    assert_eq!(record["AccountId"], "001000000000000042");
    assert!(record.get("Company").is_none(), "Contacts have no Company");
    let alone: Value = serde_json::from_str(&sf.render(&context(lead(0))).unwrap()).unwrap();
    assert!(alone.get("AccountId").is_none());
}
