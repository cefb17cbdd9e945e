//! The BigQuery scoring SQL (sql/bigquery) on the BigQuery emulator, against the same
//! hand-computed fixture — and against the SQLite results, lead by lead.

mod common;

use common::scoring;
use common::warehouse::{emulator, BigQuery, Sqlite, Warehouse};

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
        "scoredAt",
    ];
    for (b, s) in from_bq.iter().zip(&from_sqlite) {
        for c in columns {
            assert_eq!(
                b.get(c),
                s.get(c),
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
