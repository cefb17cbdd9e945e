//! The SQLite scoring SQL (sql/sqlite) against the hand-computed fixture.

mod common;

use common::scoring;
use common::warehouse::Sqlite;

#[test]
fn fixture_scores_and_export() {
    let mut wh = Sqlite::new();
    scoring::fixture_scores(&mut wh);
    scoring::export(&mut wh);
}

#[test]
fn fixture_accounts_and_a_lead_moving_to_another_account() {
    let mut wh = Sqlite::new();
    scoring::fixture_scores(&mut wh);
    scoring::fixture_accounts(&mut wh);
    scoring::account_moves(&mut wh);
}

#[test]
fn every_level_change_is_kept() {
    let mut wh = Sqlite::new();
    scoring::fixture_scores(&mut wh);
    scoring::level_history(&mut wh);
}

#[test]
fn each_step_twice_changes_nothing() {
    let mut wh = Sqlite::new();
    scoring::fixture_scores(&mut wh);
    scoring::idempotence(&mut wh);
}

#[test]
fn new_events_change_only_their_visitor() {
    let mut wh = Sqlite::new();
    scoring::fixture_scores(&mut wh);
    scoring::incrementality(&mut wh);
}

#[test]
fn updated_at_moves_only_when_the_profile_changes() {
    let mut wh = Sqlite::new();
    scoring::fixture_scores(&mut wh);
    scoring::updated_only_on_change(&mut wh);
}

#[test]
fn rises_alert_once_and_falls_never() {
    scoring::hot_lead_alerts(&mut Sqlite::new());
}

#[test]
fn crm_outcomes_fold_into_state() {
    scoring::crm_fold(&mut Sqlite::new());
}
