//! The scenarios every scoring implementation must pass (issue: warehouse SQL).
#![allow(dead_code)]

use serde_json::json;

use super::warehouse::{events, fixture, load_fixture, Row, Warehouse};

fn get<'a>(row: &'a Row, column: &str) -> Option<&'a str> {
    row.get(column).and_then(|v| v.as_deref())
}

/// Every visitor gets the hand-computed score and level; returns the profiles.
pub fn fixture_scores(wh: &mut dyn Warehouse) -> Vec<Row> {
    let f = fixture();
    load_fixture(wh, &f);
    wh.run_all(f["nowMs"].as_i64().unwrap());
    let profiles = wh.table("lead_profiles", "visitorId");
    let mut wrong = Vec::new();
    for v in f["visitors"].as_array().unwrap() {
        let id = v["id"].as_str().unwrap();
        let Some(p) = profiles.iter().find(|p| get(p, "visitorId") == Some(id)) else {
            wrong.push(format!("{id}: no profile"));
            continue;
        };
        let expected = (
            v["score"].to_string(),
            v["level"].as_str().unwrap().to_string(),
        );
        let got = (
            get(p, "intentScore").unwrap_or("").to_string(),
            get(p, "engagementLevel").unwrap_or("").to_string(),
        );
        if got != expected {
            wrong.push(format!(
                "{id} ({}): got {got:?}, want {expected:?} = {}",
                v["why"], v["arithmetic"]
            ));
        }
        // Why: the parts of the score and the most viewed pages.
        for (column, part) in [
            ("scoreRecency", "recency"),
            ("scoreFrequency", "frequency"),
            ("scoreEngagement", "engagement"),
            ("scoreHighIntent", "highIntent"),
            ("scoreConversions", "conversions"),
        ] {
            let want = v["parts"][part].as_f64();
            let got = get(p, column).and_then(|s| s.parse::<f64>().ok());
            if want.is_none() || got != want {
                wrong.push(format!("{id}: {column} = {got:?}, want {want:?}"));
            }
        }
        let pages =
            get(p, "topPages").and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok());
        if pages.as_ref() != Some(&v["topPages"]) {
            wrong.push(format!(
                "{id}: topPages = {pages:?}, want {}",
                v["topPages"]
            ));
        }
        for (column, want) in v["counters"].as_object().into_iter().flatten() {
            let want = want
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| want.to_string());
            if get(p, column) != Some(want.as_str()) {
                wrong.push(format!(
                    "{id}: {column} = {:?}, want {want}",
                    get(p, column)
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "wrong scores:\n{}", wrong.join("\n"));
    assert_eq!(
        profiles.len(),
        f["visitors"].as_array().unwrap().len(),
        "anonymous events make no profile"
    );
    let sessions = wh.select("SELECT sessionId FROM {}sessions WHERE visitorId IS NULL");
    assert_eq!(sessions.len(), 1, "anonymous events still make a session");
    profiles
}

/// The hot and burning leads of the fixture, best first, with nothing a page may not show.
pub fn export(wh: &mut dyn Warehouse) {
    let f = fixture();
    let rows = wh.run(4, f["nowMs"].as_i64().unwrap());
    let ids: Vec<&str> = rows.iter().filter_map(|r| get(r, "visitorId")).collect();
    assert_eq!(ids, vec!["v28", "v32", "v21", "v22", "v31"]);
    let columns: Vec<&String> = rows[0].keys().collect();
    assert_eq!(
        columns,
        vec![
            "campaignName",
            "company",
            "engagementLevel",
            "firstName",
            "intentScore",
            "visitorId"
        ]
    );
    assert_eq!(get(&rows[1], "firstName"), Some("Jane"));
}

const TABLES: [(&str, &str); 7] = [
    ("sessions", "sessionId"),
    ("lead_profiles", "visitorId"),
    ("hot_lead_alerts", "alertId"),
    ("crm_sync_state", "visitorId, connector"),
    ("page_classes", "pageClass, pattern"),
    ("account_profiles", "accountDomain"),
    ("level_changes", "visitorId, changedAt"),
];

fn snapshot(wh: &mut dyn Warehouse) -> Vec<Vec<Row>> {
    TABLES.iter().map(|(t, order)| wh.table(t, order)).collect()
}

/// After the fixture: every step run again with the same `now` changes nothing.
pub fn idempotence(wh: &mut dyn Warehouse) {
    let now = fixture()["nowMs"].as_i64().unwrap();
    let before = snapshot(wh);
    for n in 1..=7 {
        wh.run(n, now);
        let after = snapshot(wh);
        for (i, (table, _)) in TABLES.iter().enumerate() {
            assert_eq!(before[i], after[i], "step {n} run twice changed {table}");
        }
    }
}

/// After the fixture: a new event for one visitor changes only that visitor's rows.
pub fn incrementality(wh: &mut dyn Warehouse) {
    let f = fixture();
    let now = f["nowMs"].as_i64().unwrap();
    let sessions = wh.table("sessions", "sessionId");
    let profiles = wh.table("lead_profiles", "visitorId");
    wh.insert_events(
        &events(
            Some("v01"),
            &json!([["s1", "-30m", "pageview", "/pricing"]]),
            now,
            now,
        )
        .into_iter()
        .map(|mut e| {
            e.event_id = "v01-late".into();
            e
        })
        .collect::<Vec<_>>(),
    );
    wh.run_all(now);
    let changed = |before: &[Row], after: &[Row], key: &str| -> Vec<String> {
        assert_eq!(before.len(), after.len());
        before
            .iter()
            .zip(after)
            .filter(|(b, a)| b != a)
            .map(|(b, _)| get(b, key).unwrap_or("").to_string())
            .collect()
    };
    assert_eq!(
        changed(&sessions, &wh.table("sessions", "sessionId"), "sessionId"),
        vec!["v01-s1"]
    );
    assert_eq!(
        changed(
            &profiles,
            &wh.table("lead_profiles", "visitorId"),
            "visitorId"
        ),
        vec!["v01"]
    );
    let v01 = wh.select(
        "SELECT intentScore, pricingPageVisits FROM {}lead_profiles WHERE visitorId = 'v01'",
    );
    // 30 + 4 + engagement 3 (2 pageviews) + high intent 8 = 45
    assert_eq!(get(&v01[0], "intentScore"), Some("45"));
    assert_eq!(get(&v01[0], "pricingPageVisits"), Some("1"));
}

/// A later run rescores recent visitors; `updatedAt` moves only for those whose profile changed,
/// so a reader of changes is not handed unchanged leads again. Returns the visitors that were
/// rescored without a change.
pub fn updated_only_on_change(wh: &mut dyn Warehouse) -> Vec<String> {
    let f = fixture();
    let now = f["nowMs"].as_i64().unwrap();
    let before = wh.table("lead_profiles", "visitorId");
    let late = events(
        Some("v01"),
        &json!([["s1", "+30s", "pageview", "/pricing"]]),
        now,
        now + 30_000,
    );
    wh.insert_events(
        &late
            .into_iter()
            .map(|mut e| {
                e.event_id = "v01-later".into();
                e
            })
            .collect::<Vec<_>>(),
    );
    wh.run_all(now + 60_000);
    let after = wh.table("lead_profiles", "visitorId");
    assert_eq!(before.len(), after.len());
    let ignored = ["scoredAt", "updatedAt", "changeSeq"];
    let (mut changed, mut rescored_only) = (Vec::new(), Vec::new());
    for (b, a) in before.iter().zip(&after) {
        let id = get(b, "visitorId").unwrap().to_string();
        let fields_moved = b
            .iter()
            .any(|(k, v)| !ignored.contains(&k.as_str()) && a.get(k) != Some(v));
        let updated = get(b, "updatedAt") != get(a, "updatedAt");
        assert_eq!(
            fields_moved, updated,
            "{id}: updatedAt moved = {updated}, fields moved = {fields_moved}"
        );
        if updated {
            changed.push(id);
        } else if get(b, "scoredAt") != get(a, "scoredAt") {
            rescored_only.push(id);
        }
    }
    assert!(changed.contains(&"v01".to_string()), "{changed:?}");
    rescored_only
}

/// Lead `w1` made warm (51) at `T1` by a scoring run; returns `T1`.
pub fn warm_lead(wh: &mut dyn Warehouse) -> i64 {
    let t1: i64 = 1_793_534_400_000;
    let warm = json!([["s1", "-5m", "pageview", "/"], ["s1", "-5m", "form_submit", "/", {"formId": "demo"}]]);
    wh.insert_events(&events(Some("w1"), &warm, t1, t1));
    wh.run_all(t1);
    t1
}

/// Three pricing views for `w1` in a second session just before `t2` (with `warm_lead`: 83,
/// burning), stored but not scored.
pub fn pricing_visit(wh: &mut dyn Warehouse, t2: i64) {
    let pricing = json!([
        ["s2", "-2m", "pageview", "/pricing"],
        ["s2", "-2m", "pageview", "/pricing"],
        ["s2", "-1m", "pageview", "/pricing"]
    ]);
    let mut more = events(Some("w1"), &pricing, t2, t2);
    more.iter_mut()
        .for_each(|e| e.event_id = format!("{}-t2", e.event_id));
    wh.insert_events(&more);
}

/// A rise from warm to burning gives one alert row; a second run gives none; a fall gives none.
pub fn hot_lead_alerts(wh: &mut dyn Warehouse) {
    let t1 = warm_lead(wh);
    let hour = 3_600_000;
    let level = |wh: &mut dyn Warehouse| {
        wh.select("SELECT engagementLevel, previousLevel, intentScore FROM {}lead_profiles WHERE visitorId = 'w1'")
    };
    // 30 + 4 + 1.5 + 15 = 50.5 → 51
    assert_eq!(get(&level(wh)[0], "engagementLevel"), Some("warm"));
    assert!(
        wh.table("hot_lead_alerts", "alertId").is_empty(),
        "warm is not hot"
    );

    let t2 = t1 + hour;
    pricing_visit(wh, t2);
    wh.run_all(t2);
    // 30 + 8 (2 sessions) + 6 (4 pageviews) + 24 (3 pricing) + 15 = 83
    let now_level = level(wh);
    assert_eq!(get(&now_level[0], "intentScore"), Some("83"));
    assert_eq!(get(&now_level[0], "engagementLevel"), Some("burning"));
    let alerts = wh.table("hot_lead_alerts", "alertId");
    assert_eq!(alerts.len(), 1, "one rise, one alert");
    assert_eq!(get(&alerts[0], "previousLevel"), Some("warm"));
    assert_eq!(get(&alerts[0], "newLevel"), Some("burning"));
    assert_eq!(get(&alerts[0], "intentScore"), Some("83"));
    wh.run_all(t2);
    assert_eq!(
        wh.table("hot_lead_alerts", "alertId").len(),
        1,
        "a second run alerts nothing new"
    );

    // 40 days later, with no new events, time alone lowers the score: a fall, no alert.
    let t3 = t2 + 40 * 24 * hour;
    wh.run_all(t3);
    // recency 5 + 8 + 6 + 24 + 15 = 58
    let fallen = level(wh);
    assert_eq!(get(&fallen[0], "intentScore"), Some("58"));
    assert_eq!(get(&fallen[0], "engagementLevel"), Some("warm"));
    assert_eq!(get(&fallen[0], "previousLevel"), Some("burning"));
    assert_eq!(
        wh.table("hot_lead_alerts", "alertId").len(),
        1,
        "a fall alerts nothing"
    );
}

/// The latest outcome per lead and connector; a failure never marks a lead as synced.
pub fn crm_fold(wh: &mut dyn Warehouse) {
    let now: i64 = 1_793_534_400_000;
    let m = 60_000;
    let log = |id: &str,
               v: &str,
               c: &str,
               ok: bool,
               crm: Option<&str>,
               err: Option<&str>,
               at: i64| {
        json!({"deliveryId": id, "visitorId": v, "connector": c, "success": ok, "crmContactId": crm, "error": err, "syncedAt": at})
    };
    wh.insert_sync_log(&[
        log(
            "d1",
            "a",
            "hubspot",
            false,
            None,
            Some("VALIDATION_ERROR"),
            now - 3 * m,
        ),
        log("d2", "a", "hubspot", true, Some("101"), None, now - 2 * m),
        log(
            "d3",
            "b",
            "hubspot",
            false,
            None,
            Some("INVALID_EMAIL"),
            now - m,
        ),
        log(
            "d4",
            "c",
            "salesforce",
            true,
            Some("003A"),
            None,
            now - 5 * m,
        ),
        log(
            "d5",
            "c",
            "salesforce",
            false,
            None,
            Some("UNABLE_TO_LOCK_ROW"),
            now - m,
        ),
    ]);
    wh.run(5, now);
    let first = wh.table("crm_sync_state", "visitorId, connector");
    wh.run(5, now);
    assert_eq!(
        first,
        wh.table("crm_sync_state", "visitorId, connector"),
        "folding twice changes nothing"
    );
    type State<'a> = (
        Option<&'a str>,
        Option<&'a str>,
        Option<&'a str>,
        Option<&'a str>,
    );
    let state: Vec<State> = first
        .iter()
        .map(|r| {
            (
                get(r, "visitorId"),
                get(r, "crmContactId"),
                get(r, "syncedToCRM"),
                get(r, "lastError"),
            )
        })
        .collect();
    assert_eq!(
        state,
        vec![
            (Some("a"), Some("101"), Some("1"), None),
            (Some("b"), None, Some("0"), Some("INVALID_EMAIL")),
            (
                Some("c"),
                Some("003A"),
                Some("1"),
                Some("UNABLE_TO_LOCK_ROW")
            ),
        ]
    );
    assert_eq!(
        get(&first[2], "lastSyncedAt"),
        Some((now - 5 * m).to_string().as_str())
    );

    // A later success clears the error and takes the new id.
    wh.insert_sync_log(&[log(
        "d6",
        "c",
        "salesforce",
        true,
        Some("003B"),
        None,
        now + m,
    )]);
    wh.run(5, now + 2 * m);
    let c = wh.select(
        "SELECT crmContactId, lastError, lastSyncedAt FROM {}crm_sync_state WHERE visitorId = 'c'",
    );
    assert_eq!(get(&c[0], "crmContactId"), Some("003B"));
    assert_eq!(get(&c[0], "lastError"), None);

    // The owner: from the latest outcome that read it ('' = none); one that did not read it
    // keeps it.
    let owned = |id: &str, at: i64, owner: Option<&str>| {
        let mut row = log(id, "o", "hubspot", true, Some("501"), None, at);
        row["ownerEmail"] = json!(owner);
        row
    };
    wh.insert_sync_log(&[
        owned("d7", now + 3 * m, Some("rep@acme.example")),
        owned("d8", now + 4 * m, None),
    ]);
    wh.run(5, now + 5 * m);
    let owner = |wh: &mut dyn Warehouse, v: &str| {
        let rows = wh.select(&format!(
            "SELECT ownerEmail FROM {{}}crm_sync_state WHERE visitorId = '{v}'"
        ));
        get(&rows[0], "ownerEmail").map(str::to_string)
    };
    assert_eq!(owner(wh, "o").as_deref(), Some("rep@acme.example"));
    assert_eq!(owner(wh, "a"), None, "never read");
    wh.insert_sync_log(&[owned("d9", now + 6 * m, Some(""))]);
    wh.run(5, now + 7 * m);
    assert_eq!(owner(wh, "o"), None, "the record has no owner now");
}

/// After the fixture: every account has its hand-computed row (and no lead at a free-mail
/// domain, or without a valid e-mail, makes one).
pub fn fixture_accounts(wh: &mut dyn Warehouse) {
    let f = fixture();
    let now = f["nowMs"].as_i64().unwrap();
    let accounts = wh.table("account_profiles", "accountDomain");
    let profiles = wh.table("lead_profiles", "visitorId");
    let mut wrong = Vec::new();
    for a in f["accounts"].as_array().unwrap() {
        let domain = a["domain"].as_str().unwrap();
        let Some(row) = accounts
            .iter()
            .find(|r| get(r, "accountDomain") == Some(domain))
        else {
            wrong.push(format!("{domain}: no account"));
            continue;
        };
        let text = |v: &serde_json::Value| match v {
            serde_json::Value::Null => None,
            serde_json::Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        };
        let last_visit = a["peopleIds"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|id| {
                profiles
                    .iter()
                    .find(|p| get(p, "visitorId") == id.as_str())
                    .and_then(|p| get(p, "lastVisitAt"))
                    .map(|t| t.parse::<i64>().unwrap())
            })
            .max();
        for (column, want) in [
            ("people", text(&a["people"])),
            ("engagedPeople", text(&a["engagedPeople"])),
            ("peakScore", text(&a["peakScore"])),
            ("accountScore", text(&a["accountScore"])),
            ("accountLevel", text(&a["level"])),
            ("company", text(&a["company"])),
            ("previousLevel", None),
            ("levelChangedAt", Some(now.to_string())),
            ("scoredAt", Some(now.to_string())),
            ("lastVisitAt", last_visit.map(|t| t.to_string())),
        ] {
            if get(row, column).map(str::to_string) != want {
                wrong.push(format!(
                    "{domain} ({}): {column} = {:?}, want {want:?} ({})",
                    a["why"],
                    get(row, column),
                    a["arithmetic"]
                ));
            }
        }
        let pages =
            get(row, "topPages").and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok());
        if pages.as_ref() != Some(&a["topPages"]) {
            wrong.push(format!(
                "{domain}: topPages = {pages:?}, want {}",
                a["topPages"]
            ));
        }
    }
    assert!(wrong.is_empty(), "wrong accounts:\n{}", wrong.join("\n"));
    let domains: Vec<&str> = accounts
        .iter()
        .filter_map(|r| get(r, "accountDomain"))
        .collect();
    assert_eq!(
        domains.len(),
        f["accounts"].as_array().unwrap().len(),
        "only the fixture's accounts ({}): {domains:?}",
        f["noAccount"]["why"]
    );
}

/// After the fixture: a lead whose e-mail moves to another company's domain leaves its old
/// account (deleted, as it was the only member) and joins the new one; no other account row
/// changes. Then each step again changes nothing.
pub fn account_moves(wh: &mut dyn Warehouse) {
    let f = fixture();
    let now = f["nowMs"].as_i64().unwrap();
    let before = wh.table("account_profiles", "accountDomain");
    wh.insert_identity(
        &json!({"shortId": "v31", "email": "li.wei@globex.example", "firstName": "Li",
        "lastName": "Wei", "company": "Globex", "title": "CTO", "createdAt": 1000}),
    );
    wh.insert_events(
        &events(
            Some("v31"),
            &json!([["s1", "-30m", "pageview", "/pricing"]]),
            now,
            now,
        )
        .into_iter()
        .map(|mut e| {
            e.event_id = "v31-late".into();
            e
        })
        .collect::<Vec<_>>(),
    );
    wh.run_all(now);
    let after = wh.table("account_profiles", "accountDomain");
    let domain = |r: &Row| get(r, "accountDomain").unwrap_or("").to_string();
    let unchanged: Vec<String> = before
        .iter()
        .filter(|b| after.contains(b))
        .map(domain)
        .collect();
    assert_eq!(
        unchanged,
        [
            "acme-corp.example",
            "acme.example",
            "hooli.example",
            "umbrella.example"
        ],
        "only the two accounts v31 left and joined change"
    );
    assert!(
        !after.iter().any(|r| domain(r) == "initech.example"),
        "an account without members is deleted"
    );
    let score = |v: &str| {
        let rows = wh.select(&format!(
            "SELECT intentScore FROM {{}}lead_profiles WHERE visitorId = '{v}'"
        ));
        get(&rows[0], "intentScore")
            .unwrap()
            .parse::<i64>()
            .unwrap()
    };
    let peak = ["v21", "v23", "v24", "v31"]
        .map(score)
        .into_iter()
        .max()
        .unwrap();
    let globex = after
        .iter()
        .find(|r| domain(r) == "globex.example")
        .unwrap();
    assert_eq!(get(globex, "people"), Some("4"));
    assert_eq!(get(globex, "engagedPeople"), Some("4"));
    assert_eq!(get(globex, "peakScore"), Some(peak.to_string().as_str()));
    assert_eq!(
        get(globex, "accountScore"),
        Some((peak + 30).min(100).to_string().as_str()),
        "min(100, peak + 10 × (4 − 1))"
    );
    let pages: serde_json::Value = serde_json::from_str(get(globex, "topPages").unwrap()).unwrap();
    assert_eq!(pages[0], json!({"path": "/pricing", "views": 5}), "{pages}");
    let snapshot = wh.table("account_profiles", "accountDomain");
    for n in 1..=6 {
        wh.run(n, now);
    }
    assert_eq!(snapshot, wh.table("account_profiles", "accountDomain"));
}

/// After the fixture: every lead's first level is on record; a later rise is a second row (the
/// level it left, the one it reached, the score then); running the step again adds nothing.
pub fn level_history(wh: &mut dyn Warehouse) {
    let f = fixture();
    let now = f["nowMs"].as_i64().unwrap();
    let rows = wh.select("SELECT visitorId FROM {}level_changes");
    assert_eq!(
        rows.len(),
        f["visitors"].as_array().unwrap().len(),
        "one first level each"
    );
    let v28 = wh.select(
        "SELECT previousLevel, newLevel, intentScore, changedAt FROM {}level_changes WHERE visitorId = 'v28'",
    );
    assert_eq!(get(&v28[0], "previousLevel"), None);
    assert_eq!(get(&v28[0], "newLevel"), Some("burning"));
    assert_eq!(get(&v28[0], "intentScore"), Some("100"));
    assert_eq!(get(&v28[0], "changedAt"), Some(now.to_string().as_str()));
    // v01 (cold, 36) views pricing a minute later: warm.
    let later = now + 60_000;
    wh.insert_events(
        &events(
            Some("v01"),
            &json!([["s1", "-30s", "pageview", "/pricing"]]),
            later,
            later,
        )
        .into_iter()
        .map(|mut e| {
            e.event_id = "v01-history".into();
            e
        })
        .collect::<Vec<_>>(),
    );
    wh.run_all(later);
    let history = |wh: &mut dyn Warehouse| {
        wh.select(
            "SELECT previousLevel, newLevel, changedAt FROM {}level_changes WHERE visitorId = 'v01' ORDER BY changedAt",
        )
    };
    let v01 = history(wh);
    assert_eq!(v01.len(), 2, "{v01:?}");
    assert_eq!(get(&v01[1], "previousLevel"), Some("cold"));
    assert_eq!(get(&v01[1], "newLevel"), Some("warm"));
    assert_eq!(get(&v01[1], "changedAt"), Some(later.to_string().as_str()));
    wh.run(7, later);
    assert_eq!(history(wh), v01, "running the step again adds nothing");
}
