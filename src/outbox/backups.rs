//! Finished `oie backup` runs, for the `oie_backup_*` metrics.

use rusqlite::{params, OptionalExtension};

use super::Outbox;

impl Outbox {
    /// Notes a finished `oie backup`.
    pub fn record_backup(
        &self,
        at_ms: i64,
        seconds: f64,
        bytes: u64,
        dir: &str,
    ) -> anyhow::Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO backups (taken_at, seconds, bytes, dir) VALUES (?1, ?2, ?3, ?4)",
                params![at_ms, seconds, bytes as i64, dir],
            )
        })?;
        Ok(())
    }

    /// (when, seconds) of the last `oie backup`.
    pub fn last_backup(&self) -> anyhow::Result<Option<(i64, f64)>> {
        self.with(|c| {
            c.query_row(
                "SELECT taken_at, seconds FROM backups ORDER BY taken_at DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
        })
    }
}
