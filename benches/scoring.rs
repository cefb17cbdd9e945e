//! Prints the SQLite scoring figures (no assertions):
//! full rescoring of 1,000,000 events / 50,000 visitors (and their ~5,000 accounts), and
//! incremental rescoring after one visitor's new event, step by step. `cargo bench --bench scoring` (add `-- quick` for a tenth of the data).

use std::time::{Duration, Instant};

use rusqlite::params;

const NOW: i64 = 1_793_534_400_000;
const MINUTE: i64 = 60_000;
const DAY: i64 = 86_400_000;

fn main() {
    let quick = std::env::args().any(|a| a == "quick");
    let visitors: usize = if quick { 5_000 } else { 50_000 };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("oie.db");
    drop(oie::store::SqliteStore::open(&path).unwrap());
    let mut conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
        .unwrap();

    let start = Instant::now();
    let events = load(&mut conn, visitors);
    println!(
        "loaded {events} events for {visitors} visitors in {:.1} s",
        start.elapsed().as_secs_f64()
    );

    let start = Instant::now();
    if std::env::var("OIE_BENCH_STATEMENTS").is_ok() {
        for step in oie::scoring::RESCORE.map(|i| oie::scoring::STEPS[i]) {
            statements(&conn, step.sql, NOW);
        }
    } else {
        oie::scoring::rescore(&mut conn, NOW).unwrap();
    }
    let full = start.elapsed();
    let hot: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM lead_profiles WHERE engagementLevel IN ('hot', 'burning')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let accounts: i64 = conn
        .query_row("SELECT COUNT(*) FROM account_profiles", [], |r| r.get(0))
        .unwrap();
    println!(
        "full rescoring: {events} events / {visitors} visitors in {:.2} s (target < 10 s); {hot} hot or burning leads; {accounts} accounts",
        full.as_secs_f64()
    );

    let mut times = Vec::new();
    for i in 0..50 {
        let visitor = format!("v{:05}", (i * 997) % visitors);
        conn.execute(
            "INSERT INTO events (eventId, visitorId, sessionId, eventType, timestamp, path, receivedAt)
             VALUES (?1, ?2, ?3, 'pageview', ?4, '/pricing', ?4)",
            params![format!("inc-{i}"), visitor, format!("{visitor}-s0"), NOW + i as i64],
        )
        .unwrap();
        let start = Instant::now();
        oie::scoring::rescore(&mut conn, NOW + i as i64 + 1).unwrap();
        times.push(start.elapsed());
    }
    times.sort();
    // Where an incremental run spends its time, step by step.
    conn.execute("INSERT INTO events (eventId, visitorId, sessionId, eventType, timestamp, path, receivedAt) VALUES ('probe', 'v00001', 'v00001-s0', 'pageview', ?1, '/', ?1)", params![NOW + 100]).unwrap();
    for step in oie::scoring::RESCORE.map(|i| oie::scoring::STEPS[i]) {
        let start = Instant::now();
        if std::env::var("OIE_BENCH_STATEMENTS").is_ok() {
            statements(&conn, step.sql, NOW + 101);
        } else {
            oie::scoring::run_step(&mut conn, step.sql, NOW + 101).unwrap();
        }
        println!(
            "  {}: {:.2} ms",
            step.name,
            start.elapsed().as_secs_f64() * 1000.0
        );
    }
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "incremental rescoring after one visitor's event: median {:.2} ms, p90 {:.2} ms, max {:.2} ms over {} runs (target < 5 ms)",
        ms(times[times.len() / 2]),
        ms(times[times.len() * 9 / 10]),
        ms(times[times.len() - 1]),
        times.len()
    );
}

/// 20 events per visitor on average: 1–4 sessions over the last 60 days with pageviews
/// (some pricing, case-study and product pages), scrolls, page exits, forms and videos.
fn load(conn: &mut rusqlite::Connection, visitors: usize) -> usize {
    let tx = conn.transaction().unwrap();
    let mut n = 0;
    {
        let mut stmt = tx
            .prepare(
                "INSERT INTO events (eventId, visitorId, sessionId, eventType, timestamp, url, path, data, receivedAt)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )
            .unwrap();
        let paths = [
            "/",
            "/pricing",
            "/blog/intent",
            "/case-studies/acme",
            "/product/tour",
            "/about",
            "/features",
        ];
        for v in 0..visitors {
            let visitor = format!("v{v:05}");
            let sessions = 1 + v % 4;
            for s in 0..sessions {
                // 20 events per visitor, the remainder in the first session.
                let per_session = 20 / sessions + if s == 0 { 20 % sessions } else { 0 };
                let session = format!("{visitor}-s{s}");
                let base = NOW - ((v * 7 + s * 13) % 60) as i64 * DAY - (v % 1000) as i64 * MINUTE;
                for e in 0..per_session {
                    let (kind, data) = match e % 10 {
                        3 => (
                            "scroll_depth",
                            Some(format!("{{\"depth\": {}}}", 25 * (1 + (v + e) % 4))),
                        ),
                        6 => (
                            "page_exit",
                            Some(format!("{{\"activeMs\": {}}}", 5_000 * ((v + e) % 30))),
                        ),
                        8 if v % 9 == 0 => {
                            ("form_submit", Some("{\"formId\": \"demo\"}".to_string()))
                        }
                        9 if v % 5 == 0 => (
                            "video_play",
                            Some(format!(
                                "{{\"src\": \"demo.mp4\", \"percent\": {}}}",
                                50 + (v % 6) * 10
                            )),
                        ),
                        _ => ("pageview", None),
                    };
                    let path = paths[(v + s + e) % paths.len()];
                    let ts = base + e as i64 * MINUTE;
                    stmt.execute(params![
                        format!("{session}-{e}"),
                        visitor,
                        session,
                        kind,
                        ts,
                        format!("https://example.com{path}"),
                        path,
                        data,
                        ts
                    ])
                    .unwrap();
                    n += 1;
                }
            }
        }
        // Who they are: 9 in 10 at one of `visitors / 10` companies (accounts of ~9 people),
        // the rest at a free-mail domain (no account).
        let mut identity = tx
            .prepare(
                "INSERT INTO identity_map (shortId, email, firstName, company, createdAt)
                 VALUES (?1, ?2, 'Pat', ?3, 0)",
            )
            .unwrap();
        for v in 0..visitors {
            let company = v % (visitors / 10).max(1);
            let email = if v % 10 == 9 {
                format!("p{v}@gmail.com")
            } else {
                format!("p{v}@company{company}.example")
            };
            identity
                .execute(params![
                    format!("v{v:05}"),
                    email,
                    format!("Company {company}")
                ])
                .unwrap();
        }
    }
    tx.commit().unwrap();
    n
}

/// Times each statement of a step (with OIE_BENCH_STATEMENTS set), and shows its plan.
fn statements(conn: &rusqlite::Connection, sql: &str, now: i64) {
    use rusqlite::fallible_iterator::FallibleIterator;
    let mut batch = rusqlite::Batch::new(conn, sql);
    while let Some(mut stmt) = batch.next().unwrap() {
        let text = stmt.expanded_sql().unwrap_or_default();
        if let Some(i) = stmt.parameter_index(":now").unwrap() {
            stmt.raw_bind_parameter(i, now).unwrap();
        }
        let start = Instant::now();
        if stmt.column_count() == 0 {
            stmt.raw_execute().unwrap();
        } else {
            let mut rows = stmt.raw_query();
            while rows.next().unwrap().is_some() {}
        }
        let first = text
            .lines()
            .find(|l| !l.trim().starts_with("--") && !l.trim().is_empty())
            .unwrap_or("");
        println!(
            "    {:>8.2} ms  {}",
            start.elapsed().as_secs_f64() * 1000.0,
            &first[..first.len().min(60)]
        );
    }
}
