//! Scoring for the embedded store: runs the steps of `sql/sqlite/queries/` in order, with
//! `:now` bound, each in its own transaction. The daemon calls this seconds after events
//! arrive; the SQL itself decides which visitors to rescore (see the files' headers).

use rusqlite::types::Value;
use rusqlite::Connection;

/// One scheduled step.
#[derive(Debug, Clone, Copy)]
pub struct Step {
    pub name: &'static str,
    pub sql: &'static str,
}

macro_rules! step {
    ($name:literal) => {
        Step {
            name: $name,
            sql: include_str!(concat!("../../sql/sqlite/queries/", $name, ".sql")),
        }
    };
}

/// The steps, in the order they run.
pub const STEPS: [Step; 7] = [
    step!("1_sessions"),
    step!("2_lead_profiles"),
    step!("3_hot_lead_alerts"),
    step!("4_personalization_export"),
    step!("5_crm_sync_state"),
    step!("6_account_profiles"),
    step!("7_level_changes"),
];

/// The account step.
pub const ACCOUNTS: Step = STEPS[5];

/// What the daemon runs seconds after events arrive, in this order (positions in [`STEPS`]):
/// sessions, profiles, level changes, accounts, alerts.
pub const RESCORE: [usize; 5] = [0, 1, 6, 5, 2];

/// The default page classes (idempotent).
pub const PAGE_CLASSES: &str = include_str!("../../sql/sqlite/page_classes.sql");

/// The default free-mail domains (idempotent).
pub const FREE_MAIL_DOMAINS: &str = include_str!("../../sql/sqlite/free_mail_domains.sql");

/// Rows a step returned: column names, then values.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Rows {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
}

/// Runs every statement of `sql` in one transaction, binding `:now` where it appears; returns
/// the rows of the last statement that produced any columns.
pub fn run_step(conn: &mut Connection, sql: &str, now_ms: i64) -> rusqlite::Result<Rows> {
    use rusqlite::fallible_iterator::FallibleIterator;
    let tx = conn.transaction()?;
    let mut out = Rows::default();
    {
        let mut batch = rusqlite::Batch::new(&tx, sql);
        while let Some(mut stmt) = batch.next()? {
            if let Some(i) = stmt.parameter_index(":now")? {
                stmt.raw_bind_parameter(i, now_ms)?;
            }
            if stmt.column_count() == 0 {
                stmt.raw_execute()?;
                continue;
            }
            out.columns = stmt.column_names().iter().map(|c| c.to_string()).collect();
            let width = out.columns.len();
            let mut rows = stmt.raw_query();
            out.rows.clear();
            while let Some(row) = rows.next()? {
                out.rows
                    .push((0..width).map(|i| row.get(i)).collect::<Result<_, _>>()?);
            }
        }
    }
    tx.commit()?;
    Ok(out)
}

/// Rescores what changed since the last run (sessions, profiles, accounts, alerts): what the
/// daemon runs seconds after events arrive. Returns how many leads were rescored.
pub fn rescore(conn: &mut Connection, now_ms: i64) -> rusqlite::Result<usize> {
    let mut rescored = 0;
    for step in RESCORE.map(|i| STEPS[i]) {
        let rows = run_step(conn, step.sql, now_ms)?;
        if step.name == "2_lead_profiles" {
            if let Some(Value::Integer(n)) = rows.rows.first().and_then(|r| r.first()) {
                rescored = *n as usize;
            }
        }
    }
    Ok(rescored)
}

/// Runs all steps; returns the personalization export (step 4).
pub fn run_all(conn: &mut Connection, now_ms: i64) -> rusqlite::Result<Rows> {
    let mut export = Rows::default();
    for step in STEPS {
        let rows = run_step(conn, step.sql, now_ms)?;
        if step.name == "4_personalization_export" {
            export = rows;
        }
    }
    Ok(export)
}
