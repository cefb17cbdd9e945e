//! Each configured connector as an operator sees it: its state (ok, breaker open, throttled,
//! parked, with the reason), its queue, its dead letters and the vendor limits it last saw —
//! for `oie connectors status --json` and `GET /api/v1/connectors`.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::config::ConnectorHandle;
use crate::outbox::Outbox;

/// One JSON object per connector, in name order; `running` says whether an `oie run` holds
/// the data dir (else the states are those it left).
pub fn report(
    connectors: &BTreeMap<String, ConnectorHandle>,
    outbox: &Outbox,
    running: bool,
) -> anyhow::Result<Vec<Value>> {
    let (states, queues) = (outbox.connector_states()?, outbox.queues()?);
    let successes = outbox.last_successes()?;
    Ok(connectors
        .values()
        .map(|handle| {
            let name = &handle.name;
            let state = states.get(name);
            let queue = queues.get(name).cloned().unwrap_or_default();
            let vendor: serde_json::Map<String, Value> = handle
                .connector
                .gauges()
                .into_iter()
                .map(|(k, v)| (k.to_string(), json!(v)))
                .collect();
            json!({
                "connector": name,
                "kind": handle.connector.kind(),
                "state": state.map_or("unknown", |s| s.state.as_str()),
                "reason": state.and_then(|s| s.reason.clone()),
                "detail": state.and_then(|s| s.detail.clone()),
                "since": state.map(|s| s.since),
                "nextTry": state.and_then(|s| s.next_try),
                "queued": queue.queued,
                "inflight": queue.inflight,
                "dead": queue.dead,
                "oldestQueued": queue.oldest_queued,
                "lastSuccess": successes.get(name),
                "vendor": vendor,
                "running": running,
            })
        })
        .collect())
}
