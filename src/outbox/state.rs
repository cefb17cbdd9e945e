//! Connectors' per-visitor memory ([`oie_connectors::VisitorState`]) in `outbox.db`'s
//! `visitor_state`, on a connection of its own opened at first use (`oie check` builds
//! connectors and never opens it). [`Outbox::erase`](super::Outbox::erase) deletes a visitor's
//! rows with the rest of them.

use std::path::PathBuf;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension};

pub struct OutboxState {
    path: PathBuf,
    conn: Mutex<Option<Connection>>,
}

impl OutboxState {
    /// The state kept in the outbox at `path` (`<data_dir>/outbox.db`).
    pub fn new(path: PathBuf) -> OutboxState {
        OutboxState {
            path,
            conn: Mutex::new(None),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> anyhow::Result<T> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        if conn.is_none() {
            *conn = Some(crate::sqlite::open(&self.path, super::SCHEMA)?);
        }
        Ok(f(conn.as_ref().expect("opened above"))?)
    }
}

impl oie_connectors::VisitorState for OutboxState {
    fn get(&self, scope: &str, visitor: &str) -> Option<String> {
        let found = self.with(|c| {
            c.query_row(
                "SELECT value FROM visitor_state WHERE scope = ?1 AND visitor_id = ?2",
                [scope, visitor],
                |r| r.get(0),
            )
            .optional()
        });
        found.unwrap_or_else(|e| {
            tracing::warn!(scope, error = %e, "reading a connector's visitor state");
            None
        })
    }

    fn put(&self, scope: &str, visitor: &str, value: &str) {
        let now = crate::clock::now_ms();
        let kept = self.with(|c| {
            c.execute(
                "INSERT INTO visitor_state (scope, visitor_id, value, updated_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (scope, visitor_id) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                rusqlite::params![scope, visitor, value, now],
            )
        });
        if let Err(e) = kept {
            tracing::warn!(scope, error = %e, "keeping a connector's visitor state");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oie_connectors::VisitorState;

    #[test]
    fn kept_across_connections_and_erased_with_the_visitor() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outbox.db");
        let outbox = super::super::Outbox::open(&path).unwrap();
        let state = OutboxState::new(path.clone());
        assert_eq!(state.get("slack:C1", "v1"), None);
        state.put("slack:C1", "v1", "1795700000.000100");
        state.put("slack:C1", "v2", "1795700000.000200");
        let again = OutboxState::new(path);
        assert_eq!(
            again.get("slack:C1", "v1").as_deref(),
            Some("1795700000.000100")
        );
        assert_eq!(again.get("slack:C2", "v1"), None);
        outbox.erase("v1").unwrap();
        assert_eq!(again.get("slack:C1", "v1"), None);
        assert!(again.get("slack:C1", "v2").is_some());
    }
}
