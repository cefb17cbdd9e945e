//! The scoring SQL under test, behind one interface for both stores: SQLite (sql/sqlite) and
//! the BigQuery emulator (sql/bigquery), loaded with the same fixture.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{json, Value};

/// A row as text (`None` for NULL), so both stores compare alike.
pub type Row = BTreeMap<String, Option<String>>;

/// One event to load.
#[derive(Debug, Clone)]
pub struct Event {
    pub event_id: String,
    pub visitor_id: Option<String>,
    pub session_id: String,
    pub event_type: String,
    pub timestamp: i64,
    pub path: String,
    pub data: Option<Value>,
    pub received_at: i64,
}

pub trait Warehouse {
    fn insert_events(&mut self, events: &[Event]);
    fn insert_identity(&mut self, identity: &Value);
    fn insert_sync_log(&mut self, rows: &[Value]);
    /// Runs step `n` (1–5) at `now_ms`; returns the rows a SELECT step produced.
    fn run(&mut self, n: usize, now_ms: i64) -> Vec<Row>;
    fn select(&mut self, sql: &str) -> Vec<Row>;
    /// `SELECT * FROM table` in a stable order.
    fn table(&mut self, table: &str, order_by: &str) -> Vec<Row> {
        self.select(&format!("SELECT * FROM {{}}{table} ORDER BY {order_by}"))
    }
    fn run_all(&mut self, now_ms: i64) -> Vec<Row> {
        let mut export = Vec::new();
        for n in [1, 2, 7, 6, 3, 4, 5] {
            let rows = self.run(n, now_ms);
            if n == 4 {
                export = rows;
            }
        }
        export
    }
}

// ── the fixture ─────────────────────────────────────────────────────────────────────────────

pub fn fixture() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("sql/tests/fixture.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// "-24h-1ms", "-3d", "-60m" → milliseconds.
pub fn offset_ms(text: &str) -> i64 {
    let mut total = 0i64;
    let mut rest = text;
    while !rest.is_empty() {
        let sign = if rest.starts_with('-') { -1 } else { 1 };
        rest = rest.trim_start_matches(['-', '+']);
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let n: i64 = rest[..digits].parse().unwrap();
        rest = &rest[digits..];
        let unit_len = rest.find(['-', '+']).unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            u => panic!("unknown unit {u} in {text}"),
        };
        rest = &rest[unit_len..];
        total += sign * n * unit;
    }
    total
}

/// Events from fixture tuples `[session, offset, type, path, data?, eventId?]`.
pub fn events(visitor: Option<&str>, tuples: &Value, now_ms: i64, received_at: i64) -> Vec<Event> {
    let prefix = visitor.unwrap_or("anon");
    tuples
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let t = t.as_array().unwrap();
            let session = t[0].as_str().unwrap();
            Event {
                event_id: t
                    .get(5)
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("{prefix}-{i}")),
                visitor_id: visitor.map(str::to_string),
                session_id: format!("{prefix}-{session}"),
                event_type: t[2].as_str().unwrap().to_string(),
                timestamp: now_ms + offset_ms(t[1].as_str().unwrap()),
                path: t[3].as_str().unwrap().to_string(),
                data: t.get(4).filter(|d| !d.is_null()).cloned(),
                received_at,
            }
        })
        .collect()
}

/// Loads the whole fixture into `wh`.
pub fn load_fixture(wh: &mut dyn Warehouse, f: &Value) {
    let now = f["nowMs"].as_i64().unwrap();
    let mut all = events(None, &f["anonymous"], now, now);
    for v in f["visitors"].as_array().unwrap() {
        all.extend(events(v["id"].as_str(), &v["events"], now, now));
    }
    wh.insert_events(&all);
    for i in f["identities"].as_array().unwrap() {
        wh.insert_identity(i);
    }
}

// ── SQLite ──────────────────────────────────────────────────────────────────────────────────

pub struct Sqlite {
    pub conn: rusqlite::Connection,
    _dir: tempfile::TempDir,
}

impl Sqlite {
    pub fn new() -> Sqlite {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("oie.db");
        drop(oie::store::SqliteStore::open(&path).unwrap());
        let conn = rusqlite::Connection::open(&path).unwrap();
        Sqlite { conn, _dir: dir }
    }
}

fn sqlite_text(v: rusqlite::types::ValueRef) -> Option<String> {
    use rusqlite::types::ValueRef::*;
    match v {
        Null => None,
        Integer(i) => Some(i.to_string()),
        Real(f) => Some(f.to_string()),
        Text(t) => Some(String::from_utf8_lossy(t).into_owned()),
        Blob(b) => Some(format!("{b:?}")),
    }
}

impl Warehouse for Sqlite {
    fn insert_events(&mut self, events: &[Event]) {
        let tx = self.conn.transaction().unwrap();
        for e in events {
            tx.execute(
                "INSERT OR IGNORE INTO events (eventId, visitorId, sessionId, eventType, timestamp, url, path, data, serverTimestamp, receivedAt)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)",
                rusqlite::params![e.event_id, e.visitor_id, e.session_id, e.event_type, e.timestamp,
                    format!("https://example.com{}", e.path), e.path, e.data.as_ref().map(|d| d.to_string()), e.received_at],
            )
            .unwrap();
        }
        tx.commit().unwrap();
    }

    fn insert_identity(&mut self, i: &Value) {
        self.conn
            .execute(
                "INSERT INTO identity_map (shortId, email, firstName, lastName, company, title, campaignId, campaignName, createdAt)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                rusqlite::params![i["shortId"].as_str(), i["email"].as_str(), i["firstName"].as_str(), i["lastName"].as_str(),
                    i["company"].as_str(), i["title"].as_str(), i["campaignId"].as_str(), i["campaignName"].as_str(),
                    i["createdAt"].as_i64().unwrap_or(0)],
            )
            .unwrap();
    }

    fn insert_sync_log(&mut self, rows: &[Value]) {
        for r in rows {
            self.conn
                .execute(
                    "INSERT INTO crm_sync_log (deliveryId, visitorId, connector, success, crmContactId, error, syncedAt, ownerEmail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    rusqlite::params![r["deliveryId"].as_str(), r["visitorId"].as_str(), r["connector"].as_str(), r["success"].as_bool(),
                        r["crmContactId"].as_str(), r["error"].as_str(), r["syncedAt"].as_i64(), r["ownerEmail"].as_str()],
                )
                .unwrap();
        }
    }

    fn run(&mut self, n: usize, now_ms: i64) -> Vec<Row> {
        let rows =
            oie::scoring::run_step(&mut self.conn, oie::scoring::STEPS[n - 1].sql, now_ms).unwrap();
        rows.rows
            .iter()
            .map(|r| {
                rows.columns
                    .iter()
                    .cloned()
                    .zip(r.iter().map(|v| sqlite_text(v.into())))
                    .collect()
            })
            .collect()
    }

    fn select(&mut self, sql: &str) -> Vec<Row> {
        let sql = sql.replace("{}", "");
        let mut stmt = self.conn.prepare(&sql).unwrap();
        let names: Vec<String> = stmt.column_names().iter().map(|c| c.to_string()).collect();
        let rows = stmt
            .query_map([], |r| {
                Ok(names
                    .iter()
                    .enumerate()
                    .map(|(i, n)| (n.clone(), sqlite_text(r.get_ref(i).unwrap())))
                    .collect::<Row>())
            })
            .unwrap();
        rows.collect::<Result<_, _>>().unwrap()
    }
}

// ── BigQuery emulator ───────────────────────────────────────────────────────────────────────

pub struct BigQuery {
    base: String,
    project: String,
    pub dataset: String,
    http: reqwest::blocking::Client,
}

/// The emulator's address from `OIE_BQ_EMULATOR`; without it the test is skipped, except in CI
/// (`CI=true`), where it fails.
pub fn emulator() -> Option<String> {
    match std::env::var("OIE_BQ_EMULATOR") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("OIE_BQ_EMULATOR is not set: CI must run the BigQuery emulator (scripts/test starts it)")
        }
        _ => {
            eprintln!("skipped: set OIE_BQ_EMULATOR (scripts/test starts the emulator)");
            None
        }
    }
}

fn sql_file(relative: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("sql/bigquery")
            .join(relative),
    )
    .unwrap()
}

pub fn rfc3339(ms: i64) -> String {
    humantime::format_rfc3339_millis(
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms as u64),
    )
    .to_string()
}

impl BigQuery {
    pub fn new(base: &str, dataset: &str) -> BigQuery {
        let bq = BigQuery {
            base: base.trim_end_matches('/').to_string(),
            project: "test-proj".to_string(),
            dataset: dataset.to_string(),
            http: reqwest::blocking::Client::new(),
        };
        bq.call(
            "DELETE",
            &format!("/datasets/{dataset}?deleteContents=true"),
            None,
        );
        bq.call(
            "POST",
            "/datasets",
            Some(json!({"datasetReference": {"projectId": bq.project, "datasetId": dataset}})),
        );
        for statement in sql_file("schema.sql").split(";\n").filter(|s| {
            s.lines()
                .any(|l| !l.trim().is_empty() && !l.trim().starts_with("--"))
        }) {
            bq.query(statement, None);
        }
        bq.query(&sql_file("page_classes.sql"), None);
        bq.query(&sql_file("free_mail_domains.sql"), None);
        bq
    }

    /// A dataset made by someone else (`oie bigquery apply`), used as it is.
    pub fn existing(base: &str, dataset: &str) -> BigQuery {
        BigQuery {
            base: base.trim_end_matches('/').to_string(),
            project: "test-proj".to_string(),
            dataset: dataset.to_string(),
            http: reqwest::blocking::Client::new(),
        }
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/bigquery/v2/projects/{}{path}", self.base, self.project);
        let mut req = self
            .http
            .request(method.parse().unwrap(), url)
            .bearer_auth("test");
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().unwrap();
        let status = resp.status();
        let text = resp.text().unwrap();
        if method != "DELETE" {
            assert!(status.is_success(), "{method} {path}: {status} {text}");
        }
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// Runs `sql` (with `${dataset}` filled in) and returns its rows as text.
    pub fn query(&self, sql: &str, now_ms: Option<i64>) -> Vec<Row> {
        let sql = sql.replace("${dataset}", &self.dataset);
        let mut body = json!({"query": sql, "useLegacySql": false, "formatOptions": {"useInt64Timestamp": true}});
        if let Some(now) = now_ms {
            body["parameterMode"] = json!("NAMED");
            body["queryParameters"] = json!([{"name": "now", "parameterType": {"type": "TIMESTAMP"}, "parameterValue": {"value": rfc3339(now)}}]);
        }
        let r = self.call("POST", "/queries", Some(body));
        assert_eq!(r["jobComplete"], json!(true), "{r}");
        assert!(
            r["errors"].as_array().is_none_or(|e| e.is_empty()),
            "query failed: {}\n{sql}",
            r["errors"]
        );
        let Some(fields) = r["schema"]["fields"].as_array() else {
            return Vec::new();
        };
        r["rows"]
            .as_array()
            .map(|rows| {
                rows.iter()
                    .map(|row| {
                        fields
                            .iter()
                            .zip(row["f"].as_array().unwrap())
                            .map(|(f, c)| {
                                let v = c["v"].as_str().map(|s| match (f["type"].as_str(), s) {
                                    (Some("BOOLEAN" | "BOOL"), "true") => "1".to_string(),
                                    (Some("BOOLEAN" | "BOOL"), "false") => "0".to_string(),
                                    _ => s.to_string(),
                                });
                                (f["name"].as_str().unwrap().to_string(), v)
                            })
                            .collect()
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn insert_all(&self, table: &str, rows: Vec<Value>) {
        for chunk in rows.chunks(500) {
            let rows: Vec<Value> = chunk
                .iter()
                .map(|r| json!({"insertId": r.get("eventId").or(r.get("deliveryId")), "json": r}))
                .collect();
            let r = self.call(
                "POST",
                &format!("/datasets/{}/tables/{table}/insertAll", self.dataset),
                Some(json!({"rows": rows})),
            );
            assert!(
                r["insertErrors"].as_array().is_none_or(|e| e.is_empty()),
                "{r}"
            );
        }
    }
}

const QUERIES: [&str; 7] = [
    "queries/1_sessions.sql",
    "queries/2_lead_profiles.sql",
    "queries/3_hot_lead_alerts.sql",
    "queries/4_personalization_export.sql",
    "queries/5_crm_sync_state.sql",
    "queries/6_account_profiles.sql",
    "queries/7_level_changes.sql",
];

impl Warehouse for BigQuery {
    fn insert_events(&mut self, events: &[Event]) {
        let rows = events
            .iter()
            .map(|e| {
                json!({"eventId": e.event_id, "visitorId": e.visitor_id, "sessionId": e.session_id, "eventType": e.event_type,
                       "timestamp": e.timestamp, "url": format!("https://example.com{}", e.path), "path": e.path,
                       "data": e.data.as_ref().map(|d| d.to_string()), "serverTimestamp": e.received_at,
                       "receivedAt": rfc3339(e.received_at)})
            })
            .collect();
        self.insert_all("events", rows);
    }

    fn insert_identity(&mut self, i: &Value) {
        let mut row = i.clone();
        row["createdAt"] = json!(rfc3339(i["createdAt"].as_i64().unwrap_or(0)));
        self.insert_all("identity_map", vec![row]);
    }

    fn insert_sync_log(&mut self, rows: &[Value]) {
        let rows = rows
            .iter()
            .map(|r| {
                let mut r = r.clone();
                r["syncTime"] = json!(rfc3339(r["syncedAt"].as_i64().unwrap()));
                r
            })
            .collect();
        self.insert_all("crm_sync_log", rows);
    }

    fn run(&mut self, n: usize, now_ms: i64) -> Vec<Row> {
        self.query(&sql_file(QUERIES[n - 1]), Some(now_ms))
    }

    fn select(&mut self, sql: &str) -> Vec<Row> {
        self.query(&sql.replace("{}", &format!("{}.", self.dataset)), None)
    }
}
