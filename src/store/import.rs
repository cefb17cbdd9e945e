//! `oie leads import FILE`: CSV (with a header) or JSON lines, upserted by `visitorId`.
//! A bad row is reported with its line number and the rest still load.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context as _;
use rusqlite::types::Value as SqlValue;
use serde_json::{Map, Value};

use super::SqliteStore;
use crate::lead::{stored_fields, FieldType, Level};

/// Columns the store maintains itself.
const MANAGED: &[&str] = &["updatedAt", "changeSeq"];

/// What an import did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Rows written (new or changed or unchanged).
    pub loaded: usize,
    /// `line N: reason` for each rejected row.
    pub rejected: Vec<String>,
    /// Columns that were not lead fields, ignored.
    pub ignored_columns: Vec<String>,
}

/// Imports `path` into `store`.
pub fn import_file(store: &SqliteStore, path: &Path) -> anyhow::Result<ImportReport> {
    let is_lead_field = |k: &str| {
        crate::lead::is_field(k) && !MANAGED.contains(&k) && !crate::lead::MARKS.contains(&k)
    };
    let (rows, mut report) = read_rows(path, &is_lead_field)?;
    store.with_conn(|conn| {
        let tx = conn.transaction()?;
        for (line, row) in rows {
            match normalize(&row).and_then(|r| upsert(&tx, &r).map_err(|e| e.to_string())) {
                Ok(()) => report.loaded += 1,
                Err(reason) => report.rejected.push(format!("line {line}: {reason}")),
            }
        }
        tx.commit()?;
        Ok(())
    })?;
    Ok(report)
}

/// Rows of a CSV or JSON-lines file, with their line numbers.
pub(crate) type Rows = Vec<(usize, Map<String, Value>)>;

/// Reads `path` as CSV (by extension) or JSON lines; every row keyed by its column names.
/// Columns `known` refuses are listed in the report's `ignored_columns`.
pub(crate) fn read_rows(
    path: &Path,
    known: &dyn Fn(&str) -> bool,
) -> anyhow::Result<(Rows, ImportReport)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let is_csv = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    let (rows, mut report, mut columns) = if is_csv {
        csv_rows(&text)?
    } else {
        json_rows(&text)
    };
    columns.retain(|c| !known(c));
    columns.sort();
    columns.dedup();
    report.ignored_columns = columns;
    Ok((rows, report))
}

/// Rows, the problems reading them, and every column name seen.
fn json_rows(text: &str) -> (Rows, ImportReport, Vec<String>) {
    let mut report = ImportReport::default();
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(object)) => rows.push((i + 1, object)),
            Ok(_) => report
                .rejected
                .push(format!("line {}: expected a JSON object", i + 1)),
            Err(e) => report
                .rejected
                .push(format!("line {}: invalid JSON: {e}", i + 1)),
        }
    }
    let columns = rows.iter().flat_map(|(_, r)| r.keys()).cloned().collect();
    (rows, report, columns)
}

/// Rows, the problems reading them, and the header's column names.
fn csv_rows(text: &str) -> anyhow::Result<(Rows, ImportReport, Vec<String>)> {
    let mut report = ImportReport::default();
    let mut reader = csv::ReaderBuilder::new()
        .flexible(false)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .context("reading the CSV header")?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    let mut rows = Vec::new();
    for record in reader.records() {
        match record {
            Ok(record) => {
                let line = record.position().map(|p| p.line() as usize).unwrap_or(0);
                let row = headers
                    .iter()
                    .zip(record.iter())
                    .filter(|(_, v)| !v.trim().is_empty())
                    .map(|(h, v)| (h.clone(), Value::from(v.trim())))
                    .collect();
                rows.push((line, row));
            }
            Err(e) => {
                let line = e.position().map(|p| p.line() as usize).unwrap_or(0);
                report.rejected.push(format!("line {line}: {e}"));
            }
        }
    }
    Ok((rows, report, headers))
}

/// Checks and converts one row to column values; derives the level from the score when only
/// the score is given.
fn normalize(row: &Map<String, Value>) -> Result<Vec<(&'static str, SqlValue)>, String> {
    let mut out = Vec::new();
    for (name, ty) in stored_fields() {
        if MANAGED.contains(name) {
            continue;
        }
        if let Some(value) = row.get(*name) {
            out.push((*name, convert(name, *ty, value)?));
        }
    }
    let id = out
        .iter()
        .find(|(n, _)| *n == "visitorId")
        .map(|(_, v)| v.clone());
    match id {
        Some(SqlValue::Text(id)) if !id.trim().is_empty() => {}
        _ => return Err("visitorId is missing or empty".into()),
    }
    check_score_and_level(&mut out)?;
    Ok(out)
}

fn convert(name: &str, ty: FieldType, value: &Value) -> Result<SqlValue, String> {
    match (ty, value) {
        (_, Value::Null) => Ok(SqlValue::Null),
        (FieldType::Text, Value::String(s)) => Ok(SqlValue::Text(s.clone())),
        (FieldType::Text, Value::Number(n)) => Ok(SqlValue::Text(n.to_string())),
        (FieldType::Integer, Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
            .map(SqlValue::Integer)
            .ok_or_else(|| format!("{name} must be a whole number, got {n}")),
        // Timestamps as CRMs and spreadsheets export them, or epoch milliseconds.
        (FieldType::Integer, Value::String(s)) if name.ends_with("At") => {
            crate::clock::parse_time(s).map(SqlValue::Integer).ok_or_else(|| {
                format!("{name} must be a date like 2026-11-26T10:00:00Z (or epoch milliseconds), got \"{s}\"")
            })
        }
        (FieldType::Integer, Value::String(s)) => s
            .trim()
            .parse::<i64>()
            .map(SqlValue::Integer)
            .map_err(|_| format!("{name} must be a whole number, got \"{s}\"")),
        (FieldType::Real, Value::Number(n)) => n
            .as_f64()
            .map(SqlValue::Real)
            .ok_or_else(|| format!("{name} must be a number, got {n}")),
        (FieldType::Real, Value::String(s)) => s
            .trim()
            .parse::<f64>()
            .map(SqlValue::Real)
            .map_err(|_| format!("{name} must be a number, got \"{s}\"")),
        (FieldType::Bool, Value::Bool(b)) => Ok(SqlValue::Integer(i64::from(*b))),
        (FieldType::Bool, Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Ok(SqlValue::Integer(1)),
            "false" | "0" | "no" | "" => Ok(SqlValue::Integer(0)),
            _ => Err(format!("{name} must be true or false, got \"{s}\"")),
        },
        // JSON as text: a CSV cell holds it as text already, a JSON line as JSON.
        (FieldType::Json, Value::String(s)) => serde_json::from_str::<Value>(s)
            .map(|_| SqlValue::Text(s.clone()))
            .map_err(|e| format!("{name} must be JSON, got \"{s}\" ({e})")),
        (FieldType::Json, other) => Ok(SqlValue::Text(other.to_string())),
        (_, other) => Err(format!("{name} has an unsupported value {other}")),
    }
}

fn check_score_and_level(out: &mut Vec<(&'static str, SqlValue)>) -> Result<(), String> {
    let score = out.iter().find_map(|(n, v)| match (n, v) {
        (&"intentScore", SqlValue::Integer(s)) => Some(*s),
        _ => None,
    });
    if let Some(s) = score {
        if !(0..=100).contains(&s) {
            return Err(format!("intentScore must be between 0 and 100, got {s}"));
        }
    }
    let level = out.iter().find_map(|(n, v)| match (n, v) {
        (&"engagementLevel", SqlValue::Text(l)) => Some(l.clone()),
        _ => None,
    });
    match (level, score) {
        (Some(l), _) if Level::parse(&l).is_none() => Err(format!(
            "engagementLevel must be cold, warm, hot or burning, got \"{l}\""
        )),
        (None, Some(s)) => {
            out.push((
                "engagementLevel",
                SqlValue::Text(Level::of_score(s).as_str().into()),
            ));
            Ok(())
        }
        _ => Ok(()),
    }
}

fn upsert(tx: &rusqlite::Transaction, row: &[(&'static str, SqlValue)]) -> rusqlite::Result<()> {
    let names: Vec<&str> = row.iter().map(|(n, _)| *n).collect();
    let placeholders: Vec<String> = (1..=row.len()).map(|i| format!("?{i}")).collect();
    let updates: Vec<String> = names
        .iter()
        .filter(|n| **n != "visitorId")
        .map(|n| format!("{n} = excluded.{n}"))
        .collect();
    let conflict = if updates.is_empty() {
        "DO NOTHING".to_string()
    } else {
        format!("DO UPDATE SET {}", updates.join(", "))
    };
    let sql = format!(
        "INSERT INTO lead_profiles ({}) VALUES ({}) ON CONFLICT (visitorId) {conflict}",
        names.join(", "),
        placeholders.join(", ")
    );
    let mut stmt = tx.prepare_cached(&sql)?;
    stmt.execute(rusqlite::params_from_iter(row.iter().map(|(_, v)| v)))?;
    Ok(())
}

/// Where imported identities go: the embedded store's `identity_map`, or BigQuery's.
pub trait IdentityTarget {
    /// The newest short id of each of these e-mail addresses (keys lower-cased), so a second
    /// import does not change links already sent.
    fn ids_of(&self, emails: &[String]) -> anyhow::Result<HashMap<String, String>>;
    /// Writes checked identities (`row` with its `shortId`, `createdAt` in ms), in file order.
    fn write(&self, rows: &[(Map<String, Value>, i64)]) -> anyhow::Result<()>;
}

impl IdentityTarget for SqliteStore {
    fn ids_of(&self, emails: &[String]) -> anyhow::Result<HashMap<String, String>> {
        let mut known = HashMap::new();
        for email in emails {
            if let Some(id) = self.id_of(email)? {
                known.insert(email.to_lowercase(), id);
            }
        }
        Ok(known)
    }

    fn write(&self, rows: &[(Map<String, Value>, i64)]) -> anyhow::Result<()> {
        for (row, created) in rows {
            self.insert_identity(row, *created)?;
        }
        Ok(())
    }
}

/// A short id a visitor can carry in a link: letters, digits, `_ . : -`, at most 64.
pub fn check_short_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("shortId is missing or empty".into());
    }
    if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_.:-".contains(c))
        || id.len() > 64
    {
        return Err(format!(
            "shortId \"{id}\" may only use letters, digits, _ . : - (at most 64)"
        ));
    }
    Ok(())
}

/// `oie identities import FILE`: short id → person (shortId, email, firstName, lastName,
/// company, title, campaignId, campaignName), CSV or JSON lines; a bad row is reported by line.
pub fn import_identities(
    target: &dyn IdentityTarget,
    path: &Path,
    now_ms: i64,
) -> anyhow::Result<IdentitiesReport> {
    const KNOWN: &[&str] = &[
        "shortId",
        "email",
        "firstName",
        "lastName",
        "company",
        "title",
        "campaignId",
        "campaignName",
        "createdAt",
    ];
    let (rows, report) = read_rows(path, &|k| KNOWN.contains(&k))?;
    let emails: Vec<String> = rows
        .iter()
        .filter(|(_, row)| text(row, "shortId").is_none())
        .filter_map(|(_, row)| text(row, "email"))
        .collect();
    // Ids already given to these addresses, and those given earlier in this file.
    let mut known = target.ids_of(&emails)?;
    let mut out = IdentitiesReport {
        report,
        ..IdentitiesReport::default()
    };
    let mut checked = Vec::new();
    for (line, mut row) in rows {
        let given = text(&row, "shortId");
        let email = text(&row, "email");
        let id = match (
            &given,
            email.as_ref().and_then(|e| known.get(&e.to_lowercase())),
        ) {
            (Some(id), _) => id.clone(),
            (None, Some(known)) => known.clone(),
            (None, None) => {
                out.generated += 1;
                super::ids::generate()
            }
        };
        if let Err(reason) = check_short_id(&id) {
            out.report.rejected.push(format!("line {line}: {reason}"));
            continue;
        }
        row.insert("shortId".into(), Value::String(id.clone()));
        // When the person was added (identity_retention counts from it); now by default.
        let created = match row.get("createdAt") {
            None | Some(Value::Null) => now_ms,
            Some(v) => {
                let text = v
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string());
                match crate::clock::parse_time(&text) {
                    Some(ms) => ms,
                    None => {
                        out.report.rejected.push(format!(
                            "line {line}: createdAt must be a date like 2026-11-26T10:00:00Z (or epoch milliseconds), got {v}"
                        ));
                        continue;
                    }
                }
            }
        };
        out.report.loaded += 1;
        if given.is_some() && super::ids::entropy_bits(&id) < super::ids::MIN_BITS {
            out.guessable.push(id.clone());
        }
        if let Some(email) = &email {
            known.insert(email.to_lowercase(), id.clone());
        }
        out.ids.push((email.unwrap_or_default(), id));
        out.rows.push(row.clone());
        checked.push((row, created));
    }
    target.write(&checked)?;
    Ok(out)
}

/// What an identities import did, beyond the rows.
#[derive(Debug, Default)]
pub struct IdentitiesReport {
    pub report: ImportReport,
    /// (e-mail, id) of every identity loaded, in file order: the merge field for the e-mail tool.
    pub ids: Vec<(String, String)>,
    /// Ids oie made for rows without one.
    pub generated: usize,
    /// Ids the file brought with fewer than 40 bits of entropy.
    pub guessable: Vec<String>,
    /// Every identity loaded, as stored (with its `shortId`), in file order.
    pub rows: Vec<serde_json::Map<String, Value>>,
}

fn text(row: &serde_json::Map<String, Value>, key: &str) -> Option<String> {
    row.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::store;

    #[test]
    fn csv_bad_rows_are_reported_and_the_rest_load() {
        let (dir, store) = store();
        let file = dir.path().join("leads.csv");
        std::fs::write(
            &file,
            "visitorId,email,firstName,intentScore,engagementLevel,shoeSize\n\
             v1,jane@acme.com,Jane,85,,42\n\
             ,nobody@acme.com,No,10,,1\n\
             v3,bob@acme.com,Bob,lots,,1\n\
             v4,eve@acme.com,Eve,50,tepid,1\n\
             v5,al@acme.com,Al,61,,1\n",
        )
        .unwrap();
        let report = import_file(&store, &file).unwrap();
        assert_eq!(report.loaded, 2);
        assert_eq!(
            report.rejected,
            vec![
                "line 3: visitorId is missing or empty",
                "line 4: intentScore must be a whole number, got \"lots\"",
                "line 5: engagementLevel must be cold, warm, hot or burning, got \"tepid\"",
            ]
        );
        assert_eq!(report.ignored_columns, vec!["shoeSize"]);
        let v1 = store.lead("v1").unwrap().unwrap();
        assert_eq!(v1.level(), Level::Burning, "level derived from the score");
        assert_eq!(v1.get("email"), "jane@acme.com");
        assert_eq!(store.lead("v5").unwrap().unwrap().level(), Level::Hot);
    }

    #[test]
    fn json_lines_upsert_and_track_changes() {
        let (dir, store) = store();
        let file = dir.path().join("leads.jsonl");
        std::fs::write(
            &file,
            "{\"visitorId\":\"v1\",\"company\":\"Acme\",\"intentScore\":30}\n{oops\n[1]\n",
        )
        .unwrap();
        let report = import_file(&store, &file).unwrap();
        assert_eq!(report.loaded, 1);
        assert_eq!(report.rejected.len(), 2);
        assert!(report.rejected[0].starts_with("line 2: invalid JSON"));
        assert_eq!(report.rejected[1], "line 3: expected a JSON object");
        let first = store.changed_leads(0, 10).unwrap();
        assert_eq!(first.len(), 1);
        let seq = first[0].version();
        assert!(seq > 0);

        // The same values again: no change.
        import_file(&store, &file).unwrap();
        assert!(store.changed_leads(seq, 10).unwrap().is_empty());

        // A changed field: a new change number, other fields kept.
        std::fs::write(
            &file,
            "{\"visitorId\":\"v1\",\"intentScore\":70,\"engagementLevel\":\"hot\"}\n",
        )
        .unwrap();
        import_file(&store, &file).unwrap();
        let changed = store.changed_leads(seq, 10).unwrap();
        assert_eq!(changed.len(), 1);
        assert_eq!(changed[0].get("company"), "Acme");
        assert_eq!(changed[0].level(), Level::Hot);
        assert!(changed[0].version() > seq);
    }

    /// Dates as CRMs and spreadsheets export them, beside epoch milliseconds; a bad one is
    /// reported with its line.
    #[test]
    fn iso_dates_and_epoch_milliseconds_both_import() {
        let (dir, store) = store();
        let csv = dir.path().join("leads.csv");
        std::fs::write(
            &csv,
            "visitorId,intentScore,lastVisitAt,firstVisitAt\n\
             c1,50,2026-11-26T10:00:00Z,2026-11-01\n\
             c2,50,2026-11-26 11:00:00,1795000000000\n\
             c3,50,26/11/2026,\n",
        )
        .unwrap();
        let report = import_file(&store, &csv).unwrap();
        assert_eq!(report.loaded, 2);
        assert_eq!(
            report.rejected,
            vec!["line 4: lastVisitAt must be a date like 2026-11-26T10:00:00Z (or epoch milliseconds), got \"26/11/2026\""]
        );
        let c1 = store.lead("c1").unwrap().unwrap();
        assert_eq!(c1.get("lastVisitAt"), 1_795_687_200_000i64);
        assert_eq!(c1.get("firstVisitAt"), 1_793_491_200_000i64);
        assert_eq!(
            store.lead("c2").unwrap().unwrap().get("lastVisitAt"),
            1_795_690_800_000i64
        );
        let jsonl = dir.path().join("leads.jsonl");
        std::fs::write(
            &jsonl,
            "{\"visitorId\": \"j1\", \"lastVisitAt\": \"2026-11-26T11:00:00+01:00\"}\n\
             {\"visitorId\": \"j2\", \"lastVisitAt\": 1795687200000}\n",
        )
        .unwrap();
        assert_eq!(import_file(&store, &jsonl).unwrap().loaded, 2);
        for id in ["j1", "j2"] {
            assert_eq!(
                store.lead(id).unwrap().unwrap().get("lastVisitAt"),
                1_795_687_200_000i64
            );
        }
    }
}
