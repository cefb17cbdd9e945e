//! Opening the SQLite databases `oie` owns, all with the same settings.

use std::path::Path;

use anyhow::Context as _;
use rusqlite::Connection;

/// Opens (creating the folder and file if needed) the database at `path`, tunes it and applies
/// `schema` (idempotent `CREATE … IF NOT EXISTS` statements).
pub fn open(path: &Path, schema: &str) -> anyhow::Result<Connection> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let conn = Connection::open(path).with_context(|| format!("opening {}", path.display()))?;
    tune(&conn)?;
    conn.execute_batch(schema)
        .with_context(|| format!("creating the tables of {}", path.display()))?;
    Ok(conn)
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
