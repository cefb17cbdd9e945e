//! Settings shared by every SQLite database `oie` opens.

use rusqlite::Connection;

/// WAL with `synchronous = NORMAL`: a commit survives a process crash (the WAL is written
/// before commit returns) and costs no fsync; wait instead of failing when another process
/// (e.g. `oie deadletters replay`) holds the write lock.
pub fn tune(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA foreign_keys = ON;
         PRAGMA temp_store = MEMORY;",
    )
}
