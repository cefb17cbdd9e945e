//! The BigQuery scoring SQL (sql/bigquery) on the BigQuery emulator, against the same
//! hand-computed fixture — and against the SQLite results, lead by lead.

mod common;

use common::scoring;
use common::warehouse::{emulator, events, rfc3339, BigQuery, Sqlite, Warehouse};
use serde_json::json;

fn warehouse(name: &str) -> Option<BigQuery> {
    emulator().map(|url| BigQuery::new(&url, &format!("oie_test_{name}_{}", std::process::id())))
}

#[test]
fn fixture_scores_equal_sqlite_lead_by_lead() {
    let Some(mut bq) = warehouse("scores") else {
        return;
    };
    let from_bq = scoring::fixture_scores(&mut bq);
    scoring::export(&mut bq);
    let mut sqlite = Sqlite::new();
    let from_sqlite = scoring::fixture_scores(&mut sqlite);
    let columns = [
        "visitorId",
        "email",
        "firstName",
        "lastName",
        "company",
        "title",
        "campaignId",
        "campaignName",
        "intentScore",
        "engagementLevel",
        "previousLevel",
        "levelChangedAt",
        "firstVisitAt",
        "lastVisitAt",
        "totalSessions",
        "totalPageviews",
        "totalActiveSeconds",
        "pricingPageVisits",
        "caseStudyViews",
        "productPageViews",
        "formSubmissions",
        "videosCompleted",
        "maxScrollDepth",
        "lastPageUrl",
        "scoreRecency",
        "scoreFrequency",
        "scoreEngagement",
        "scoreHighIntent",
        "scoreConversions",
        "topPages",
        "scoredAt",
    ];
    for (b, s) in from_bq.iter().zip(&from_sqlite) {
        for c in columns {
            // A float reads "0.0" from one engine and "0" from the other: compare the number.
            let number = |r: &common::warehouse::Row| {
                r.get(c).cloned().flatten().map(|v| match v.parse::<f64>() {
                    Ok(n) if c == "scoreEngagement" => n.to_string(),
                    _ => v,
                })
            };
            assert_eq!(
                number(b),
                number(s),
                "{:?}: {c} differs between BigQuery and SQLite",
                b.get("visitorId")
            );
        }
    }
    let sessions = |wh: &mut dyn Warehouse| {
        wh.select("SELECT sessionId, visitorId, startedAt, endedAt, eventCount, pageviews, activeMs, maxScrollDepth, formSubmissions, landingPath, exitPath FROM {}sessions ORDER BY sessionId")
    };
    assert_eq!(sessions(&mut bq), sessions(&mut sqlite));
}

#[test]
fn fixture_accounts_equal_sqlite_account_by_account() {
    let Some(mut bq) = warehouse("accounts") else {
        return;
    };
    scoring::fixture_scores(&mut bq);
    scoring::fixture_accounts(&mut bq);
    let mut sqlite = Sqlite::new();
    scoring::fixture_scores(&mut sqlite);
    let columns = "accountDomain, company, people, engagedPeople, peakScore, accountScore, accountLevel, previousLevel, levelChangedAt, lastVisitAt, topPages, scoredAt";
    let accounts = |wh: &mut dyn Warehouse| {
        wh.select(&format!(
            "SELECT {columns} FROM {{}}account_profiles ORDER BY accountDomain"
        ))
    };
    assert_eq!(accounts(&mut bq), accounts(&mut sqlite));
    scoring::account_moves(&mut bq);
    scoring::account_moves(&mut sqlite);
    assert_eq!(accounts(&mut bq), accounts(&mut sqlite));
}

#[test]
fn every_level_change_is_kept() {
    let Some(mut bq) = warehouse("levels") else {
        return;
    };
    scoring::fixture_scores(&mut bq);
    scoring::level_history(&mut bq);
}

#[test]
fn each_step_twice_changes_nothing() {
    let Some(mut bq) = warehouse("idem") else {
        return;
    };
    scoring::fixture_scores(&mut bq);
    scoring::idempotence(&mut bq);
}

#[test]
fn new_events_change_only_their_visitor() {
    let Some(mut bq) = warehouse("incr") else {
        return;
    };
    scoring::fixture_scores(&mut bq);
    scoring::incrementality(&mut bq);
}

#[test]
fn updated_at_moves_only_when_the_profile_changes() {
    let Some(mut bq) = warehouse("updated") else {
        return;
    };
    scoring::fixture_scores(&mut bq);
    // BigQuery rescores every visitor with events in the last 2 days on each run.
    let rescored = scoring::updated_only_on_change(&mut bq);
    assert!(!rescored.is_empty(), "recent visitors are rescored");
}

#[test]
fn rises_alert_once_and_falls_never() {
    let Some(mut bq) = warehouse("alerts") else {
        return;
    };
    scoring::hot_lead_alerts(&mut bq);
}

#[test]
fn crm_outcomes_fold_into_state() {
    let Some(mut bq) = warehouse("crm") else {
        return;
    };
    scoring::crm_fold(&mut bq);
}

/// The Worker's streaming scorer records the rises it published (`source = 'edge'`); the
/// scheduled query skips a rise already alerted that way, but not one alerted before the lead's
/// level fell again.
#[test]
fn rises_the_streaming_scorer_alerted_are_not_alerted_again() {
    let Some(mut bq) = warehouse("edge") else {
        return;
    };
    let (hour, day) = (3_600_000, 86_400_000);
    let edge = |bq: &BigQuery, at: i64, level: &str| {
        let id = format!("w1:{at}");
        bq.insert_all(
            "hot_lead_alerts",
            vec![
                json!({"alertId": id, "visitorId": "w1", "previousLevel": "warm",
            "newLevel": level, "intentScore": 83, "levelChangedAt": at, "alertedAt": at,
            "alertTime": rfc3339(at), "source": "edge"}),
            ],
        );
    };
    let alerts = |bq: &mut BigQuery| {
        bq.select("SELECT alertId, newLevel, source FROM {}hot_lead_alerts ORDER BY levelChangedAt")
            .into_iter()
            .map(|r| {
                (
                    r["alertId"].clone(),
                    r["newLevel"].clone(),
                    r["source"].clone(),
                )
            })
            .collect::<Vec<_>>()
    };
    // Warm (51) at t1; burning (83) by t2, which the Worker alerted a minute before the
    // scheduled run.
    let t1 = scoring::warm_lead(&mut bq);
    let t2 = t1 + hour;
    scoring::pricing_visit(&mut bq, t2);
    edge(&bq, t2 - 60_000, "burning");
    bq.run_all(t2);
    let edge_only = vec![(
        Some(format!("w1:{}", t2 - 60_000)),
        Some("burning".to_string()),
        Some("edge".to_string()),
    )];
    assert_eq!(
        alerts(&mut bq),
        edge_only,
        "the rise the Worker alerted is not alerted again"
    );
    // 40 days later time alone brings it down to warm; then it rises again, and this rise the
    // Worker did not see: the old edge alert (before the fall) does not hide it.
    let t3 = t2 + 40 * day;
    bq.run_all(t3);
    let t4 = t3 + hour;
    let back = json!([["s3", "-2m", "pageview", "/pricing"], ["s3", "-1m", "form_submit", "/pricing", {"formId": "demo"}]]);
    let mut again = events(Some("w1"), &back, t4, t4);
    again
        .iter_mut()
        .for_each(|e| e.event_id = format!("{}-t4", e.event_id));
    bq.insert_events(&again);
    bq.run_all(t4);
    let all = alerts(&mut bq);
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(
        all[1],
        (Some(format!("w1:{t4}")), Some("burning".to_string()), None)
    );
}
