//! The hot-lead message, version 1: what a Pub/Sub message must carry for `oie` to route it.
//!
//! Body (JSON):
//! ```json
//! {"version": 1, "kind": "hot_lead", "id": "ab3f9:1795700000000",
//!  "at": "2026-11-26T10:00:00.000Z", "level": "burning", "previousLevel": "warm",
//!  "lead": {"visitorId": "ab3f9", "email": "…", "intentScore": 86, …lead_profiles columns}}
//! ```
//! Attributes (optional, for filtering): `version = "1"`, `kind`, `visitorId`.
//!
//! `id` names the moment (the `hot_lead_alerts.alertId`, or any id the publisher keeps stable
//! when it republishes); it becomes the trigger identity, so every replica computes the same
//! idempotency key for the same moment. Without `id`, the Pub/Sub message id is used (stable
//! across redeliveries, not across republishing). `kind` is `hot_lead` (default) or `sync`;
//! `level` defaults to `lead.engagementLevel`; `at` (RFC 3339 or ms) defaults to the publish time.

use serde_json::{Map, Value};

use crate::lead::{is_id, Lead, Level};
use crate::routing::{Trigger, TriggerKind};

/// The only version this `oie` reads.
pub const VERSION: i64 = 1;

/// A message turned into work, or why it never can be.
#[derive(Debug)]
pub struct Parsed {
    pub lead: Lead,
    pub trigger: Trigger,
}

/// Parses one message body; `fallback_id` (the message id) and `published_ms` fill in what the
/// body leaves out.
pub fn parse(data: &[u8], fallback_id: &str, published_ms: i64) -> Result<Parsed, String> {
    let body: Value =
        serde_json::from_slice(data).map_err(|e| format!("the message body is not JSON: {e}"))?;
    let Value::Object(body) = body else {
        return Err("the message body is not a JSON object".into());
    };
    match body.get("version").and_then(Value::as_i64) {
        Some(VERSION) => {}
        Some(other) => {
            return Err(format!(
                "message version {other}; this oie reads version {VERSION}"
            ))
        }
        None => return Err(format!("`version` is missing (expected {VERSION})")),
    }
    let Some(Value::Object(lead)) = body.get("lead") else {
        return Err("`lead` is missing: the message names no lead".into());
    };
    let visitor = lead
        .get("visitorId")
        .and_then(Value::as_str)
        .filter(|v| is_id(v))
        .ok_or("`lead.visitorId` is missing or not an id: the message names no lead")?;
    let kind = match body
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("hot_lead")
    {
        "hot_lead" => TriggerKind::HotLead,
        "sync" => TriggerKind::Sync,
        other => return Err(format!("unknown kind `{other}` (hot_lead or sync)")),
    };
    let level_text = body
        .get("level")
        .or(lead.get("engagementLevel"))
        .and_then(Value::as_str)
        .unwrap_or("cold");
    let level = Level::parse(level_text)
        .ok_or_else(|| format!("unknown level `{level_text}` (cold, warm, hot or burning)"))?;
    let previous_level = match body.get("previousLevel") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_str()
                .and_then(Level::parse)
                .ok_or_else(|| format!("unknown previousLevel {v}"))?,
        ),
    };
    let id = body
        .get("id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or(fallback_id);
    let at_ms = match body.get("at") {
        Some(Value::Number(n)) => n.as_i64().unwrap_or(published_ms),
        Some(Value::String(s)) => humantime::parse_rfc3339_weak(s)
            .map_err(|e| format!("`at` is not an RFC 3339 time: {e}"))?
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(published_ms),
        _ => published_ms,
    };
    let mut fields: Map<String, Value> = lead.clone();
    fields.insert("visitorId".into(), Value::String(visitor.to_string()));
    fields
        .entry("engagementLevel")
        .or_insert_with(|| Value::String(level.as_str().to_string()));
    Ok(Parsed {
        lead: Lead::from_json(&fields),
        trigger: Trigger::moment(kind, level, previous_level, id, at_ms).caused_at(Some(at_ms)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(v: Value) -> Vec<u8> {
        v.to_string().into_bytes()
    }

    #[test]
    fn a_full_message() {
        let p = parse(
            &body(
                json!({"version": 1, "kind": "hot_lead", "id": "ab3f9:1795700000000",
                "at": "2026-11-26T10:00:00.000Z", "level": "burning", "previousLevel": "warm",
                "lead": {"visitorId": "ab3f9", "email": "jane@acme.example", "intentScore": 86}}),
            ),
            "m1",
            5,
        )
        .unwrap();
        assert_eq!(p.lead.visitor_id(), "ab3f9");
        assert_eq!(p.lead.get("intentScore"), &json!(86));
        assert_eq!(p.lead.level(), Level::Burning);
        assert_eq!(p.trigger.kind, TriggerKind::HotLead);
        assert_eq!(p.trigger.previous_level, Some(Level::Warm));
        assert_eq!(p.trigger.identity, "hot_lead:moment:ab3f9:1795700000000");
        assert_eq!(p.trigger.at_ms, 1_795_687_200_000);
    }

    #[test]
    fn defaults_come_from_the_lead_and_the_message() {
        let p = parse(
            &body(json!({"version": 1, "lead": {"visitorId": "v1", "engagementLevel": "hot"}})),
            "m42",
            1234,
        )
        .unwrap();
        assert_eq!(p.trigger.level, Level::Hot);
        assert_eq!(p.trigger.identity, "hot_lead:moment:m42");
        assert_eq!(p.trigger.at_ms, 1234);
    }

    #[test]
    fn what_can_never_succeed_says_why() {
        let cases = [
            (b"not json".to_vec(), "not JSON"),
            (body(json!([1])), "not a JSON object"),
            (
                body(json!({"lead": {"visitorId": "v"}})),
                "`version` is missing",
            ),
            (
                body(json!({"version": 2, "lead": {"visitorId": "v"}})),
                "version 2",
            ),
            (body(json!({"version": 1})), "names no lead"),
            (
                body(json!({"version": 1, "lead": {"email": "x@y"}})),
                "names no lead",
            ),
            (
                body(json!({"version": 1, "lead": {"visitorId": "../x"}})),
                "names no lead",
            ),
            (
                body(json!({"version": 1, "kind": "purchase", "lead": {"visitorId": "v"}})),
                "unknown kind",
            ),
            (
                body(json!({"version": 1, "level": "lukewarm", "lead": {"visitorId": "v"}})),
                "unknown level",
            ),
        ];
        for (data, expected) in cases {
            let err = parse(&data, "m", 0).unwrap_err();
            assert!(err.contains(expected), "{err} (expected {expected})");
        }
    }
}
