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
    create_private(path)?;
    let conn = Connection::open(path).with_context(|| format!("opening {}", path.display()))?;
    // Only a database without tables takes it: pruned pages can then go back to the file
    // system a step at a time (`PRAGMA incremental_vacuum`). Older files: `oie store compact`.
    conn.execute_batch("PRAGMA auto_vacuum = INCREMENTAL;")?;
    tune(&conn)?;
    add_missing_columns(&conn, schema)
        .with_context(|| format!("upgrading the tables of {}", path.display()))?;
    conn.execute_batch(schema)
        .with_context(|| format!("creating the tables of {}", path.display()))?;
    Ok(conn)
}

/// A read-only connection to a database [`open`] made: for lookups beside the writer.
pub fn open_reader(path: &Path) -> anyhow::Result<Connection> {
    use rusqlite::OpenFlags;
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("opening {} to read", path.display()))?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    Ok(conn)
}

/// Creates `path` readable by its owner only (0600) if it does not exist: the databases hold
/// personal data, and SQLite gives the WAL and shared-memory files the database's mode.
pub fn create_private(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e).with_context(|| format!("creating {}", path.display())),
    }
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

/// Recreates `table` from `schema` and copies its rows over, for a change `ALTER TABLE` cannot
/// make (a new value in a CHECK constraint). One transaction; the table's indexes are made
/// again by the schema.
pub fn rebuild(conn: &mut Connection, schema: &str, table: &str) -> anyhow::Result<()> {
    let tx = conn.transaction()?;
    let indexes: Vec<String> = tx
        .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?1 AND sql IS NOT NULL")?
        .query_map([table], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for index in indexes {
        tx.execute_batch(&format!("DROP INDEX \"{index}\""))?;
    }
    let old = format!("{table}__before_upgrade");
    tx.execute_batch(&format!("ALTER TABLE \"{table}\" RENAME TO \"{old}\""))?;
    tx.execute_batch(schema)?;
    let columns: Vec<String> = tx
        .prepare(&format!("PRAGMA table_info(\"{table}\")"))?
        .query_map([], |r| r.get::<_, String>(1))?
        .collect::<rusqlite::Result<_>>()?;
    let list = columns
        .iter()
        .map(|c| format!("\"{c}\""))
        .collect::<Vec<_>>()
        .join(", ");
    tx.execute_batch(&format!(
        "INSERT INTO \"{table}\" ({list}) SELECT {list} FROM \"{old}\"; DROP TABLE \"{old}\";"
    ))?;
    tx.commit()?;
    tracing::info!(table, "rebuilt a table an older oie made, keeping its rows");
    Ok(())
}

/// Runs `f` inside one read transaction. In WAL mode every statement outside a transaction
/// takes and drops a shared lock on the WAL index (`fcntl` system calls): a page of leads
/// looked up one by one would do that thousands of times; in one transaction, once, and every
/// lookup sees the same snapshot.
pub fn snapshot<T>(
    conn: &mut Connection,
    f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    let tx = conn.transaction()?;
    let out = f(&tx)?;
    tx.commit()?;
    Ok(out)
}

/// WAL with `synchronous = NORMAL`: a commit survives a process crash (the WAL is written
/// before commit returns) and costs no fsync; wait instead of failing when another process
/// (e.g. `oie deadletters replay`) holds the write lock. A writer checkpoints the WAL itself
/// only past 10,000 pages (40 MB), as a backstop: the daemon's [`Checkpointer`] does it sooner.
fn tune(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA foreign_keys = ON;
         PRAGMA temp_store = MEMORY;
         PRAGMA wal_autocheckpoint = 10000;
         PRAGMA journal_size_limit = 67108864;",
    )
}

/// Copies the WAL back into the database from a connection of its own. SQLite's automatic
/// checkpoint runs inside whichever commit crosses the threshold, so under load a source's
/// hand-over or the recorder would do it while every other writer waits; a passive checkpoint
/// here waits for nobody and runs beside them.
pub struct Checkpointer {
    conn: std::sync::Mutex<Connection>,
}

/// Past this size the WAL is truncated at the next checkpoint; `journal_size_limit` keeps it
/// to this after any restart of the log.
pub const WAL_LIMIT: u64 = 64 * 1024 * 1024;

impl Checkpointer {
    pub fn open(path: &Path) -> anyhow::Result<Checkpointer> {
        let conn = Connection::open(path).with_context(|| format!("opening {}", path.display()))?;
        conn.busy_timeout(std::time::Duration::from_millis(100))?;
        Ok(Checkpointer {
            conn: std::sync::Mutex::new(conn),
        })
    }

    /// One passive checkpoint: copies what no reader still needs, without waiting. Under
    /// constant load a passive checkpoint may never find the WAL idle enough to start it over,
    /// so past [`WAL_LIMIT`] the checkpoint truncates it (waiting at most the busy timeout,
    /// 100 ms; if it cannot, the next one tries again).
    pub fn run(&self) -> rusqlite::Result<()> {
        // A panic mid-checkpoint leaves the connection usable: SQLite rolled it back.
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        // (busy, frames in the log, frames checkpointed)
        let (_, log, done): (i64, i64, i64) =
            conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?;
        let wal = conn.path().map(|p| format!("{p}-wal"));
        let size = wal
            .and_then(|w| std::fs::metadata(w).ok())
            .map_or(0, |m| m.len());
        // Only once every frame is in the database: while a reader holds an old snapshot (a
        // backup), a truncating checkpoint would only block writers, then fail.
        if size > WAL_LIMIT && log == done {
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        }
        Ok(())
    }
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

    #[test]
    fn a_rebuilt_table_keeps_its_rows_and_gets_the_new_constraint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let old = Connection::open(&path).unwrap();
        old.execute_batch(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT CHECK (s IN ('a', 'b')));
             CREATE INDEX t_by_s ON t (s);
             INSERT INTO t (id, s) VALUES (1, 'a'), (2, 'b');",
        )
        .unwrap();
        drop(old);
        let schema = "CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, s TEXT CHECK (s IN ('a', 'b', 'c')), n INTEGER NOT NULL DEFAULT 0);
                      CREATE INDEX IF NOT EXISTS t_by_s ON t (s);";
        let mut conn = open(&path, schema).unwrap();
        assert!(conn
            .execute("INSERT INTO t (id, s) VALUES (3, 'c')", [])
            .is_err());
        rebuild(&mut conn, schema, "t").unwrap();
        conn.execute("INSERT INTO t (id, s) VALUES (3, 'c')", [])
            .unwrap();
        let rows: Vec<(i64, String)> = conn
            .prepare("SELECT id, s FROM t ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            rows,
            vec![(1, "a".into()), (2, "b".into()), (3, "c".into())]
        );
        let plan: String = conn
            .query_row(
                "EXPLAIN QUERY PLAN SELECT id FROM t WHERE s = 'a'",
                [],
                |r| r.get(3),
            )
            .unwrap();
        assert!(plan.contains("t_by_s"), "the index is back: {plan}");
    }
}
