//! Black-box: accounts in embedded mode. Three people of one company become warm, warm and
//! hot within minutes: the account rises (hot with two engaged people, burning with three) and
//! one `account_hot` alert, routed by `account.engagedPeople >= 3`, lists all three — in a
//! webhook and in Slack (Block Kit). Their own alerts go elsewhere and say how many others from
//! the company were active this week; a person at a free-mail domain joins no account. In the
//! CRMs the account is one HubSpot company with its three people's contacts associated, and
//! one Salesforce Account.

mod common;

use std::time::Duration;

use common::slack_fake::{SlackFake, TOKEN};
use common::{wait_until, Receiver, Workspace, FAST};
use oie_fakes::hubspot::{self, HubSpotFake};
use oie_fakes::salesforce::{self, SalesforceFake};
use serde_json::{json, Value};

fn person(id: &str, email: &str, first: &str, score: i64, level: &str) -> Value {
    json!({"visitorId": id, "email": email, "firstName": first, "lastName": "Doe",
           "company": "Globex", "title": "Buyer", "intentScore": score, "engagementLevel": level,
           "lastVisitAt": oie::clock::now_ms() - 60_000})
}

#[tokio::test(flavor = "multi_thread")]
async fn three_engaged_people_make_one_account_alert() {
    let receiver = Receiver::start(&[]).await;
    let slack = SlackFake::start(Duration::from_millis(10)).await;
    let hs = HubSpotFake::start().await;
    let sf = SalesforceFake::start_with_test_key().await;
    let config = format!(
        r#"{FAST}
[[routes]]
name = "accounts"
when = 'trigger.kind == "account_hot" && account.engagedPeople >= 3'
to = ["acct", "slack"]

[[routes]]
name = "people"
when = 'trigger.kind == "hot_lead"'
to = ["people"]
continue = true

[[routes]]
name = "sync"
when = '(trigger.kind == "sync" && lead.email != null) || trigger.kind == "account_sync"'
to = ["crm", "sf"]

[connectors.sf]
kind = "salesforce"
client_id = "{}"
username = "{}"
private_key_file = "sf-key.pem"
login_url = "{}"
batch_wait = "100ms"

[connectors.crm]
kind = "hubspot"
base_url = "{}"
token = "${{OIE_TEST_HUBSPOT_TOKEN_ACCT}}"
batch_wait = "100ms"

[connectors.acct]
kind = "webhook"
url = "{}"

[connectors.people]
kind = "webhook"
url = "{}"

[connectors.slack]
kind = "slack"
base_url = "{}/api"
token = "${{OIE_TEST_SLACK_TOKEN_ACCT}}"
channel = "C0ACC"
rate_limit = 50
"#,
        salesforce::CLIENT_ID,
        salesforce::USERNAME,
        sf.base,
        hs.base,
        receiver.url("acct"),
        receiver.url("people"),
        slack.base
    );
    let ws = Workspace::new(&config);
    ws.env("OIE_TEST_SLACK_TOKEN_ACCT", TOKEN);
    ws.env("OIE_TEST_HUBSPOT_TOKEN_ACCT", hubspot::TOKEN);
    std::fs::write(ws.path("sf-key.pem"), salesforce::TEST_PRIVATE_KEY).unwrap();
    let daemon = ws.start();
    let account_seen = |level: &'static str| ws.seen_at("account:globex.example", level);

    // Warm: the account is warm (one engaged person).
    ws.import(&[person("ann", "ann@globex.example", "Ann", 45, "warm")]);
    account_seen("warm").await;
    // A second warm person: 50 + 10 = 60, hot — but two engaged people do not match the route.
    ws.import(&[person("bo", "Bo@Globex.example", "Bo", 50, "warm")]);
    account_seen("hot").await;
    // A hot third: 65 + 20 = 85, burning, three engaged people: the alert.
    ws.import(&[person("cy", "cy@globex.example", "Cy", 65, "hot")]);
    account_seen("burning").await;
    // A fourth at a free-mail domain: no account.
    ws.import(&[person("dan", "dan@gmail.com", "Dan", 70, "hot")]);
    receiver
        .wait_for("both people's alerts", Duration::from_secs(20), |r| {
            r.hits("people").len() == 2
        })
        .await;
    receiver
        .wait_for("the account alert", Duration::from_secs(20), |r| {
            r.hits("acct").len() == 1
        })
        .await;
    wait_until("the Slack account alert", 20, || {
        slack.messages("C0ACC").len() == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.hits("acct").len(), 1, "one account alert");

    let alert = &receiver.hits("acct")[0].body;
    assert_eq!(alert["type"], "oie.account_hot");
    assert_eq!(alert["data"]["trigger"]["level"], "burning");
    assert_eq!(alert["data"]["trigger"]["previousLevel"], "hot");
    let account = &alert["data"]["account"];
    assert_eq!(account["accountDomain"], "globex.example");
    assert_eq!(account["company"], "Globex");
    assert_eq!(
        (
            &account["people"],
            &account["engagedPeople"],
            &account["peakScore"],
            &account["accountScore"]
        ),
        (&json!(3), &json!(3), &json!(65), &json!(85))
    );
    let engaged: Vec<&str> = account["engaged"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["visitorId"].as_str().unwrap())
        .collect();
    assert_eq!(engaged, ["cy", "bo", "ann"], "best first");

    let people = receiver.hits("people");
    let of = |id: &str| {
        people
            .iter()
            .find(|h| h.body["data"]["lead"]["visitorId"] == id)
            .map(|h| h.body["data"].clone())
            .unwrap()
    };
    assert_eq!(of("cy")["account"]["accountDomain"], "globex.example");
    assert_eq!(of("cy")["account"]["othersThisWeek"], 2);
    assert_eq!(
        of("dan")["account"],
        Value::Null,
        "a free-mail person has no account"
    );

    let message = slack.messages("C0ACC").remove(0);
    let text = message.to_string();
    assert!(text.contains("Globex · account"), "{text}");
    assert!(
        text.contains("peak 65 + 10 × 2 more engaged people = 85"),
        "{text}"
    );
    for name in ["Ann Doe", "Bo Doe", "Cy Doe"] {
        assert!(text.contains(name), "{name}: {text}");
    }

    // HubSpot: one company for the account, its three people's contacts associated with it
    // (whichever of company and contact was synced second made the association); Dan's contact
    // joins no company.
    wait_until("the company with three contacts", 20, || {
        hs.companies()
            .get("globex.example")
            .is_some_and(|c| hs.contacts_of_company(&c.id).len() == 3)
    })
    .await;
    let company = &hs.companies()["globex.example"];
    assert_eq!(company.properties["name"], "Globex");
    assert_eq!(company.properties["oie_account_level"], "burning");
    let mut people: Vec<String> = ["ann", "bo", "cy"]
        .iter()
        .map(|p| hs.contact(&format!("{p}@globex.example")).unwrap().id)
        .collect();
    people.sort();
    assert_eq!(hs.contacts_of_company(&company.id), people);
    assert_eq!(hs.companies().len(), 1);
    let dan = hs.contact("dan@gmail.com").unwrap().id;
    assert!(!hs.contacts_of_company(&company.id).contains(&dan));
    // The company's id is written back under the account's key.
    let conn = rusqlite::Connection::open(ws.path("data/oie.db")).unwrap();
    let written: String = conn
        .query_row(
            "SELECT crmContactId FROM crm_sync_state WHERE visitorId = 'account:globex.example' AND connector = 'crm'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(written, company.id);

    // Salesforce: one Account for the account, four Leads.
    wait_until("the Salesforce Account", 20, || {
        sf.accounts()
            .get("globex.example")
            .is_some_and(|a| a.fields["OIE_Account_Level__c"] == "burning")
    })
    .await;
    assert_eq!(sf.accounts().len(), 1);
    assert_eq!(sf.accounts()["globex.example"].fields["Name"], "Globex");
    wait_until("four Leads", 20, || sf.records().len() == 4).await;
    drop(daemon);
}
