//! Raw pixel events into the embedded store.

use rusqlite::params;
use serde_json::Value;

use super::SqliteStore;
use crate::outbox::Forgotten;

/// One accepted event, with what the server adds.
#[derive(Debug, Clone)]
pub struct EventRow {
    pub event_id: String,
    pub visitor_id: Option<String>,
    pub session_id: String,
    pub event_type: String,
    pub timestamp: i64,
    pub url: Option<String>,
    pub path: Option<String>,
    pub title: Option<String>,
    pub referrer: Option<String>,
    pub data: Option<String>,
    pub received_at: i64,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl EventRow {
    /// From an event that passed the contract.
    pub fn from_json(
        e: Value,
        received_at: i64,
        ip: Option<String>,
        user_agent: Option<String>,
    ) -> EventRow {
        let text = |k: &str| e.get(k).and_then(Value::as_str).map(str::to_string);
        EventRow {
            event_id: text("eventId").unwrap_or_default(),
            visitor_id: text("visitorId"),
            session_id: text("sessionId").unwrap_or_default(),
            event_type: text("type").unwrap_or_default(),
            timestamp: e
                .get("timestamp")
                .and_then(Value::as_i64)
                .unwrap_or(received_at),
            url: text("url"),
            path: text("path"),
            title: text("title"),
            referrer: text("referrer"),
            data: e.get("data").filter(|d| !d.is_null()).map(Value::to_string),
            received_at,
            ip,
            user_agent,
        }
    }
}

/// One tracked e-mail link click (`/go`).
#[derive(Debug, Clone)]
pub struct ClickRow {
    pub click_id: String,
    pub visitor_id: Option<String>,
    pub target: String,
    pub timestamp: i64,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl EventRow {
    /// About what the row costs in memory while it waits to be written.
    pub fn size(&self) -> usize {
        let text = |s: &Option<String>| s.as_ref().map_or(0, String::len);
        std::mem::size_of::<EventRow>()
            + self.event_id.len()
            + self.session_id.len()
            + self.event_type.len()
            + [&self.visitor_id, &self.url, &self.path, &self.title]
                .into_iter()
                .chain([&self.referrer, &self.data, &self.ip, &self.user_agent])
                .map(text)
                .sum::<usize>()
    }
}

impl SqliteStore {
    /// Inserts events in one transaction; a repeated eventId is ignored. Returns how many were
    /// new.
    pub fn insert_events(&self, rows: &[EventRow]) -> anyhow::Result<usize> {
        self.insert_batch(rows, &[], &Forgotten::default())
    }

    /// Inserts events and clicks in one transaction; a repeated eventId or clickId is ignored.
    /// Those of a visitor erased after they arrived are dropped: they waited in the queue while
    /// the erasure ran. Returns how many events were new.
    pub fn insert_batch(
        &self,
        rows: &[EventRow],
        clicks: &[ClickRow],
        forgotten: &Forgotten,
    ) -> anyhow::Result<usize> {
        self.with_conn(|c| {
            // Held until the commit: an erasure waits, or came first and is seen.
            let erased = forgotten.hold();
            let gone = |visitor: &Option<String>, at: i64| {
                visitor
                    .as_ref()
                    .and_then(|v| erased.get(v))
                    .is_some_and(|erased_at| at <= *erased_at)
            };
            let tx = c.transaction()?;
            let mut added = 0;
            {
                let mut stmt = tx.prepare_cached(
                    "INSERT OR IGNORE INTO email_clicks (clickId, visitorId, target, timestamp, ip, userAgent)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?;
                for k in clicks.iter().filter(|k| !gone(&k.visitor_id, k.timestamp)) {
                    stmt.execute(params![
                        k.click_id, k.visitor_id, k.target, k.timestamp, k.ip, k.user_agent
                    ])?;
                }
            }
            {
                let mut stmt = tx.prepare_cached(
                    "INSERT OR IGNORE INTO events (eventId, visitorId, sessionId, eventType, timestamp, url, path,
                       title, referrer, data, serverTimestamp, ip, userAgent, receivedAt)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?11)",
                )?;
                for r in rows.iter().filter(|r| !gone(&r.visitor_id, r.received_at)) {
                    added += stmt.execute(params![
                        r.event_id, r.visitor_id, r.session_id, r.event_type, r.timestamp, r.url, r.path,
                        r.title, r.referrer, r.data, r.received_at, r.ip, r.user_agent
                    ])?;
                }
            }
            tx.commit()?;
            Ok(added)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::store;

    fn row(id: &str, visitor: &str, received_at: i64) -> EventRow {
        EventRow::from_json(
            serde_json::json!({"eventId": id, "type": "pageview", "sessionId": "s", "visitorId": visitor}),
            received_at,
            None,
            None,
        )
    }

    /// Events that waited in the ingest queue while their visitor was erased are dropped;
    /// newer ones (the visitor came back) and other visitors' are kept.
    #[test]
    fn events_queued_before_an_erasure_are_dropped() {
        let (_dir, store) = store();
        let forgotten = Forgotten::default();
        forgotten.forget("v1", 1_000);
        let rows = [
            row("e1", "v1", 900),
            row("e2", "v1", 1_100),
            row("e3", "v2", 900),
        ];
        let click = |id: &str, at| ClickRow {
            click_id: id.into(),
            visitor_id: Some("v1".into()),
            target: "/".into(),
            timestamp: at,
            ip: None,
            user_agent: None,
        };
        let added = store
            .insert_batch(&rows, &[click("c1", 900), click("c2", 1_100)], &forgotten)
            .unwrap();
        assert_eq!(added, 2);
        let ids: Vec<String> = store
            .with_conn(|c| {
                let mut stmt = c.prepare(
                    "SELECT eventId FROM events UNION ALL SELECT clickId FROM email_clicks ORDER BY 1",
                )?;
                let rows = stmt.query_map([], |r| r.get(0))?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
            .unwrap();
        assert_eq!(ids, ["c2", "e2", "e3"]);
    }
}
