//! Recent rises, as the operator's "Now" shows them: the `hot_lead` and `account_hot`
//! deliveries of a window, one rise per lead and moment, with each connector's delivery state.

use rusqlite::params;
use serde::Serialize;
use serde_json::Value;

use super::Outbox;

/// One connector's delivery of a rise.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RiseDelivery {
    pub id: i64,
    pub route: String,
    pub connector: String,
    pub state: String,
    pub attempts: u32,
    pub reason: Option<String>,
    pub updated_at: i64,
}

/// One rise of a lead (or an account, `account:<domain>`): when it was handed over, to which
/// level, and what became of each delivery.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rise {
    pub visitor_id: String,
    pub kind: String,
    pub at: i64,
    pub level: Option<String>,
    pub previous_level: Option<String>,
    pub deliveries: Vec<RiseDelivery>,
}

impl Outbox {
    /// The rises handed over since `since_ms`, newest first (then by lead), at most `limit`,
    /// after `after` — the `(at, visitor)` of the last rise of the previous page.
    pub fn recent_rises(
        &self,
        since_ms: i64,
        after: Option<(i64, &str)>,
        limit: usize,
    ) -> anyhow::Result<Vec<Rise>> {
        let (at, visitor) = after.unwrap_or((i64::MAX, ""));
        self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT d.id, d.visitor_id, d.trigger_kind, d.route, d.connector, d.state, d.attempts,
                        d.reason, d.created_at, d.updated_at, b.context
                 FROM deliveries d LEFT JOIN delivery_bodies b ON b.delivery_id = d.id
                 WHERE d.trigger_kind IN ('hot_lead', 'account_hot')
                   AND d.created_at >= ?1
                   AND (d.created_at < ?2 OR (d.created_at = ?2 AND d.visitor_id > ?3))
                 ORDER BY d.created_at DESC, d.visitor_id, d.id",
            )?;
            let mut rows = stmt.query(params![since_ms, at, visitor])?;
            let mut rises: Vec<Rise> = Vec::new();
            while let Some(r) = rows.next()? {
                let visitor: String = r.get(1)?;
                let at: i64 = r.get(8)?;
                let delivery = RiseDelivery {
                    id: r.get(0)?,
                    route: r.get(3)?,
                    connector: r.get(4)?,
                    state: r.get(5)?,
                    attempts: r.get(6)?,
                    reason: r.get(7)?,
                    updated_at: r.get(9)?,
                };
                // The deliveries of one rise are handed over together: same lead, same moment.
                if let Some(rise) = rises
                    .last_mut()
                    .filter(|x| x.visitor_id == visitor && x.at == at)
                {
                    rise.deliveries.push(delivery);
                    continue;
                }
                if rises.len() == limit {
                    break;
                }
                let trigger = r
                    .get::<_, Option<String>>(10)?
                    .and_then(|c| serde_json::from_str::<Value>(&c).ok())
                    .map(|c| c["trigger"].clone())
                    .unwrap_or(Value::Null);
                let text = |k: &str| trigger[k].as_str().map(str::to_string);
                rises.push(Rise {
                    visitor_id: visitor,
                    kind: r.get(2)?,
                    at,
                    level: text("level"),
                    previous_level: text("previousLevel"),
                    deliveries: vec![delivery],
                });
            }
            Ok(rises)
        })
    }
}

/// One delivery of a lead (or account), with its failed attempts.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VisitorDelivery {
    pub id: i64,
    pub route: String,
    pub connector: String,
    pub trigger_kind: String,
    pub state: String,
    pub attempts: u32,
    pub reason: Option<String>,
    pub error: Option<String>,
    pub record_id: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub attempt_log: Vec<super::deadletters::AttemptRow>,
}

impl Outbox {
    /// The deliveries of `visitor` (a lead, or `account:<domain>`), newest first, at most
    /// `limit`, each with its attempts.
    pub fn deliveries_of(
        &self,
        visitor: &str,
        limit: usize,
    ) -> anyhow::Result<Vec<VisitorDelivery>> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, route, connector, trigger_kind, state, attempts, reason, last_error,
                        record_id, created_at, updated_at
                 FROM deliveries WHERE visitor_id = ?1 ORDER BY id DESC LIMIT ?2",
            )?;
            let mut out = stmt
                .query_map(params![visitor, limit as i64], |r| {
                    Ok(VisitorDelivery {
                        id: r.get(0)?,
                        route: r.get(1)?,
                        connector: r.get(2)?,
                        trigger_kind: r.get(3)?,
                        state: r.get(4)?,
                        attempts: r.get(5)?,
                        reason: r.get(6)?,
                        error: r.get(7)?,
                        record_id: r.get(8)?,
                        created_at: r.get(9)?,
                        updated_at: r.get(10)?,
                        attempt_log: Vec::new(),
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            for d in &mut out {
                d.attempt_log = super::deadletters::attempt_log(c, d.id)?;
            }
            Ok(out)
        })
    }
}
