//! What sales did from Slack (`POST /slack/actions`): each click recorded once
//! (`lead_actions`, the audit), snoozes by route and lead, and the marks Claim and Not a fit
//! leave (`lead_marks`), which routing lays over the lead. Erased with the visitor.

use std::collections::HashMap;

use rusqlite::{params, OptionalExtension};
use serde_json::Value;

use super::Outbox;

/// One click, as recorded.
#[derive(Debug, Clone)]
pub struct Action {
    /// Unique per click (Slack's `action_ts` and user).
    pub id: String,
    pub visitor_id: String,
    pub route: String,
    pub kind: ActionKind,
    pub user_id: String,
    pub user_name: Option<String>,
    pub channel: Option<String>,
    pub message_ts: Option<String>,
    pub at_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionKind {
    Claim,
    Snooze { until_ms: i64 },
    NotAFit,
}

impl ActionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Claim => "claim",
            ActionKind::Snooze { .. } => "snooze",
            ActionKind::NotAFit => "not_a_fit",
        }
    }
}

/// What a click came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    Done,
    /// Someone claimed the lead first: (user id, when).
    AlreadyClaimed {
        by: String,
        at_ms: i64,
    },
    /// The same click was recorded before (Slack retried the post).
    Repeated,
}

/// What routing lays over a lead.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Marks {
    pub claimed: Option<(String, i64)>,
    pub disqualified: Option<(String, i64)>,
    /// route → snoozed until (ms).
    pub snoozed: HashMap<String, i64>,
}

impl Marks {
    /// Lays the marks over a lead's fields.
    pub fn apply(&self, lead: &mut crate::lead::Lead) {
        if let Some((by, at)) = &self.claimed {
            lead.set("claimedBy", Value::from(by.clone()));
            lead.set("claimedAt", Value::from(*at));
        }
        if let Some((by, at)) = &self.disqualified {
            lead.set("disqualified", Value::Bool(true));
            lead.set("disqualifiedBy", Value::from(by.clone()));
            lead.set("disqualifiedAt", Value::from(*at));
        }
    }
}

impl Outbox {
    /// Applies and records a click in one transaction.
    pub fn apply_action(&self, a: &Action) -> anyhow::Result<Applied> {
        self.with(|c| {
            let tx = c.transaction()?;
            let seen: bool = tx
                .query_row("SELECT 1 FROM lead_actions WHERE id = ?1", [&a.id], |_| Ok(()))
                .optional()?
                .is_some();
            if seen {
                return Ok(Applied::Repeated);
            }
            let applied = match a.kind {
                ActionKind::Claim => {
                    let claimed: Option<(String, i64)> = tx
                        .query_row(
                            "SELECT claimed_by, claimed_at FROM lead_marks WHERE visitor_id = ?1 AND claimed_by IS NOT NULL",
                            [&a.visitor_id],
                            |r| Ok((r.get(0)?, r.get(1)?)),
                        )
                        .optional()?;
                    match claimed {
                        Some((by, at_ms)) if by != a.user_id => Applied::AlreadyClaimed { by, at_ms },
                        Some(_) => Applied::Done,
                        None => {
                            tx.execute(
                                "INSERT INTO lead_marks (visitor_id, claimed_by, claimed_at) VALUES (?1, ?2, ?3)
                                 ON CONFLICT (visitor_id) DO UPDATE SET claimed_by = excluded.claimed_by, claimed_at = excluded.claimed_at",
                                params![a.visitor_id, a.user_id, a.at_ms],
                            )?;
                            Applied::Done
                        }
                    }
                }
                ActionKind::Snooze { until_ms } => {
                    tx.execute(
                        "INSERT INTO snoozes (route, visitor_id, until, by_user) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (route, visitor_id) DO UPDATE SET until = excluded.until, by_user = excluded.by_user",
                        params![a.route, a.visitor_id, until_ms, a.user_id],
                    )?;
                    Applied::Done
                }
                ActionKind::NotAFit => {
                    tx.execute(
                        "INSERT INTO lead_marks (visitor_id, disqualified_by, disqualified_at) VALUES (?1, ?2, ?3)
                         ON CONFLICT (visitor_id) DO UPDATE SET disqualified_by = excluded.disqualified_by, disqualified_at = excluded.disqualified_at",
                        params![a.visitor_id, a.user_id, a.at_ms],
                    )?;
                    Applied::Done
                }
            };
            let outcome = match applied {
                Applied::AlreadyClaimed { .. } => "already_claimed",
                _ => "done",
            };
            tx.execute(
                "INSERT INTO lead_actions (id, visitor_id, route, action, user_id, user_name, channel, message_ts, outcome, at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![a.id, a.visitor_id, a.route, a.kind.as_str(), a.user_id, a.user_name,
                        a.channel, a.message_ts, outcome, a.at_ms],
            )?;
            tx.commit()?;
            Ok(applied)
        })
    }

    /// The marks and snoozes of these leads (snoozes that ended are left out).
    pub fn marks(
        &self,
        visitor_ids: &[&str],
        now_ms: i64,
    ) -> anyhow::Result<HashMap<String, Marks>> {
        self.with(|c| {
            let mut out: HashMap<String, Marks> = HashMap::new();
            let mut marks = c.prepare_cached(
                "SELECT claimed_by, claimed_at, disqualified_by, disqualified_at FROM lead_marks WHERE visitor_id = ?1",
            )?;
            let mut snoozes =
                c.prepare_cached("SELECT route, until FROM snoozes WHERE visitor_id = ?1 AND until > ?2")?;
            for id in visitor_ids {
                let m = marks
                    .query_row([id], |r| {
                        let claimed = match (r.get::<_, Option<String>>(0)?, r.get::<_, Option<i64>>(1)?) {
                            (Some(by), Some(at)) => Some((by, at)),
                            _ => None,
                        };
                        let disqualified = match (r.get::<_, Option<String>>(2)?, r.get::<_, Option<i64>>(3)?) {
                            (Some(by), Some(at)) => Some((by, at)),
                            _ => None,
                        };
                        Ok(Marks { claimed, disqualified, snoozed: HashMap::new() })
                    })
                    .optional()?;
                let snoozed: HashMap<String, i64> = snoozes
                    .query_map(params![id, now_ms], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<Result<_, _>>()?;
                if m.is_some() || !snoozed.is_empty() {
                    let mut m = m.unwrap_or_default();
                    m.snoozed = snoozed;
                    out.insert(id.to_string(), m);
                }
            }
            Ok(out)
        })
    }

    /// The recorded clicks on a lead, oldest first: (action, user, outcome, at).
    pub fn actions_of(
        &self,
        visitor_id: &str,
    ) -> anyhow::Result<Vec<(String, String, String, i64)>> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT action, user_id, outcome, at FROM lead_actions WHERE visitor_id = ?1 ORDER BY at, id",
            )?;
            let rows = stmt.query_map([visitor_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
            rows.collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(id: &str, kind: ActionKind, user: &str, at: i64) -> Action {
        Action {
            id: id.into(),
            visitor_id: "v1".into(),
            route: "hot".into(),
            kind,
            user_id: user.into(),
            user_name: None,
            channel: Some("C1".into()),
            message_ts: Some("1.1".into()),
            at_ms: at,
        }
    }

    #[test]
    fn claims_snoozes_and_disqualifications_are_kept_recorded_and_erased() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(&dir.path().join("outbox.db")).unwrap();
        assert_eq!(
            outbox
                .apply_action(&action("a1", ActionKind::Claim, "U1", 10))
                .unwrap(),
            Applied::Done
        );
        assert_eq!(
            outbox
                .apply_action(&action("a1", ActionKind::Claim, "U1", 10))
                .unwrap(),
            Applied::Repeated
        );
        assert_eq!(
            outbox
                .apply_action(&action("a2", ActionKind::Claim, "U2", 20))
                .unwrap(),
            Applied::AlreadyClaimed {
                by: "U1".into(),
                at_ms: 10
            }
        );
        outbox
            .apply_action(&action(
                "a3",
                ActionKind::Snooze { until_ms: 1_000 },
                "U2",
                30,
            ))
            .unwrap();
        outbox
            .apply_action(&action("a4", ActionKind::NotAFit, "U3", 40))
            .unwrap();
        let marks = outbox.marks(&["v1", "v2"], 500).unwrap();
        let m = &marks["v1"];
        assert_eq!(m.claimed, Some(("U1".into(), 10)));
        assert_eq!(m.disqualified, Some(("U3".into(), 40)));
        assert_eq!(m.snoozed.get("hot"), Some(&1_000));
        assert!(!marks.contains_key("v2"));
        assert!(
            outbox.marks(&["v1"], 1_000).unwrap()["v1"]
                .snoozed
                .is_empty(),
            "a snooze ends"
        );
        let audit = outbox.actions_of("v1").unwrap();
        assert_eq!(audit.len(), 4);
        assert_eq!(
            audit[1],
            ("claim".into(), "U2".into(), "already_claimed".into(), 20)
        );
        outbox.erase("v1").unwrap();
        assert!(outbox.marks(&["v1"], 0).unwrap().is_empty());
        assert!(outbox.actions_of("v1").unwrap().is_empty());
    }
}
