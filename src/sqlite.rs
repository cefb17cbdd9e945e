//! Opening the SQLite databases `oie` owns, all with the same settings.

use std::path::Path;

use anyhow::Context as _;
use rusqlite::Connection;

/// Opens (creating the folder and file if needed) the database at `path`, tunes it, adds the
/// columns an older `oie` did not have, and applies `schema` (idempotent
/// `CREATE … IF NOT EXISTS` statements).
pub fn open(path: &Path, schema: &str) -> anyhow::Result<Connection> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let conn = Connection::open(path).with_context(|| format!("opening {}", path.display()))?;
    tune(&conn)?;
    add_missing_columns(&conn, schema)
        .with_context(|| format!("upgrading the tables of {}", path.display()))?;
    conn.execute_batch(schema)
        .with_context(|| format!("creating the tables of {}", path.display()))?;
    Ok(conn)
}

/// `CREATE TABLE IF NOT EXISTS` leaves a table made by an older `oie` as it was; this adds the
/// columns `schema` declares that such a table lacks (`ALTER TABLE … ADD COLUMN`, with the
/// declared type and default), so indexes and triggers on new columns can be created. The
/// schema is first built in memory and compared column by column.
/// A column as `PRAGMA table_info` describes it: name, type, NOT NULL, default.
type Column = (String, String, bool, Option<String>);

fn add_missing_columns(conn: &Connection, schema: &str) -> anyhow::Result<()> {
    let wanted = Connection::open_in_memory()?;
    wanted.execute_batch(schema)?;
    let columns = |c: &Connection, table: &str| -> rusqlite::Result<Vec<Column>> {
        let mut stmt = c.prepare(&format!("PRAGMA table_info(\"{table}\")"))?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get(1)?, r.get(2)?, r.get::<_, i64>(3)? != 0, r.get(4)?))
        })?;
        rows.collect()
    };
    let mut tables = wanted.prepare("SELECT name FROM sqlite_master WHERE type = 'table'")?;
    let tables: Vec<String> = tables
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for table in tables {
        let have = columns(conn, &table)?;
        if have.is_empty() {
            continue; // a new table: the schema creates it
        }
        for (name, kind, not_null, default) in columns(&wanted, &table)? {
            if have.iter().any(|(n, ..)| n.eq_ignore_ascii_case(&name)) {
                continue;
            }
            let mut column = format!("\"{name}\" {kind}");
            match (not_null, &default) {
                (true, Some(d)) => column.push_str(&format!(" NOT NULL DEFAULT {d}")),
                (true, None) => anyhow::bail!(
                    "{table}.{name} is new and NOT NULL without a default; move the database aside to start afresh"
                ),
                (false, Some(d)) => column.push_str(&format!(" DEFAULT {d}")),
                (false, None) => {}
            }
            conn.execute_batch(&format!("ALTER TABLE \"{table}\" ADD COLUMN {column}"))?;
            tracing::info!(table, column = %name, "added a column an older oie did not have");
        }
    }
    Ok(())
}

/// WAL with `synchronous = NORMAL`: a commit survives a process crash (the WAL is written
/// before commit returns) and costs no fsync; wait instead of failing when another process
/// (e.g. `oie deadletters replay`) holds the write lock.
fn tune(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA foreign_keys = ON;
         PRAGMA temp_store = MEMORY;",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_from_an_older_oie_gets_the_new_columns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let old = Connection::open(&path).unwrap();
        old.execute_batch(
            "CREATE TABLE t (id TEXT PRIMARY KEY, a INTEGER NOT NULL DEFAULT 0);
             INSERT INTO t (id, a) VALUES ('x', 5);",
        )
        .unwrap();
        drop(old);
        let schema =
            "CREATE TABLE IF NOT EXISTS t (id TEXT PRIMARY KEY, a INTEGER NOT NULL DEFAULT 0,
                        b TEXT, c INTEGER NOT NULL DEFAULT 7);
                      CREATE INDEX IF NOT EXISTS t_by_c ON t (c);
                      CREATE TABLE IF NOT EXISTS u (v TEXT);";
        let conn = open(&path, schema).unwrap();
        let row: (i64, Option<String>, i64) = conn
            .query_row("SELECT a, b, c FROM t WHERE id = 'x'", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .unwrap();
        assert_eq!(row, (5, None, 7), "kept the data, added b and c");
        drop(conn);
        // A NOT NULL column without a default cannot be added to existing rows: say so.
        let e = open(
            &path,
            "CREATE TABLE IF NOT EXISTS t (id TEXT PRIMARY KEY, d TEXT NOT NULL);",
        )
        .unwrap_err();
        assert!(
            format!("{e:#}").contains("t.d is new and NOT NULL"),
            "{e:#}"
        );
    }
}
