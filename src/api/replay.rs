//! Replaying dead letters: each rendered again from its input with today's config and
//! templates (so a fixed mapping or template is what the replay sends), for `oie deadletters
//! replay` and `POST /api/v1/deadletters/replay`.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::config::ConnectorHandle;
use crate::outbox::Outbox;

/// What a replay would send for one dead letter.
pub struct Plan {
    pub id: i64,
    pub connector: String,
    pub before: Option<String>,
    /// The payload rendered now (`None`: send the stored one, for a letter that has no render
    /// input), or why it cannot be replayed.
    pub now: Result<Option<String>, String>,
}

/// Renders every dead letter again from its input, with today's config and templates, so a
/// fixed mapping or template is what the replay sends.
pub fn render_again(
    connectors: &BTreeMap<String, ConnectorHandle>,
    outbox: &Outbox,
    ids: &[i64],
) -> anyhow::Result<Vec<Plan>> {
    let mut out = Vec::new();
    for input in outbox.render_inputs(ids)? {
        let now = if input.connector == crate::sources::pubsub::DEAD_LETTER_CONNECTOR {
            Err("a Pub/Sub message that names no routable lead; fix the publisher and publish it again".to_string())
        } else if let Some(handle) = connectors.get(&input.connector) {
            match &input.context {
                // What a Slack click handed over (a message update, an owner assignment) has no
                // template: it is sent again as it was.
                Some(context) if sent_as_is(context) => Ok(None),
                Some(context) => {
                    let context =
                        oie_connectors::RenderContext::new(serde_json::from_str(context)?);
                    handle
                        .connector
                        .render(&context)
                        .map(Some)
                        .map_err(|e| format!("still cannot render: {e}"))
                }
                // Queued by an older oie, which kept no render input: sent as it was.
                None if input.payload.is_some() => Ok(None),
                None => Err("it has neither a payload nor its render input".to_string()),
            }
        } else {
            Err(format!(
                "connector `{}` is no longer configured",
                input.connector
            ))
        };
        out.push(Plan {
            id: input.id,
            connector: input.connector,
            before: input.payload,
            now,
        });
    }
    Ok(out)
}

/// Whether a render input marks a delivery made without a template (`"sentAsIs": true`).
fn sent_as_is(context: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(context)
        .is_ok_and(|c| c["sentAsIs"] == serde_json::Value::Bool(true))
}

/// What one replay did (or, dry, would do): each plan, the letters requeued, those not found.
pub struct Replay {
    pub plans: Vec<Plan>,
    pub requeued: Vec<i64>,
    pub not_found: Vec<i64>,
}

/// Renders `ids` again and requeues those that render (all of them when `dry_run` is false;
/// none when true).
pub fn replay(
    connectors: &BTreeMap<String, ConnectorHandle>,
    outbox: &Outbox,
    ids: &[i64],
    dry_run: bool,
    now_ms: i64,
) -> anyhow::Result<Replay> {
    let plans = render_again(connectors, outbox, ids)?;
    let mut replayable = Vec::new();
    let mut rendered = Vec::new();
    for plan in &plans {
        if let Ok(payload) = &plan.now {
            replayable.push(plan.id);
            if let Some(p) = payload {
                rendered.push((plan.id, p.clone()));
            }
        }
    }
    let result = outbox.replay(&replayable, &rendered, dry_run, now_ms)?;
    let not_found = ids
        .iter()
        .filter(|id| !plans.iter().any(|p| p.id == **id))
        .copied()
        .chain(result.not_found)
        .collect();
    Ok(Replay {
        plans,
        requeued: result.requeued,
        not_found,
    })
}

impl Plan {
    /// `{id, connector, before, now, changed}` or `{id, connector, refused}`: the payloads as
    /// JSON where they are JSON.
    pub fn to_json(&self) -> Value {
        let parse = |p: &str| serde_json::from_str::<Value>(p).unwrap_or_else(|_| json!(p));
        let before = self.before.as_deref().map(parse);
        match &self.now {
            Err(why) => json!({"id": self.id, "connector": self.connector, "refused": why}),
            Ok(now) => {
                let now = now.as_deref().map(parse).or_else(|| before.clone());
                json!({"id": self.id, "connector": self.connector, "before": before,
                       "now": now, "changed": before != now})
            }
        }
    }
}
