//! Turns (lead, trigger) into deliveries: route, render for each connector, and key each one.
//! Used by sources (to fill the outbox) and by `oie routes test` (to show what would be sent).

use std::collections::{BTreeMap, HashMap};

use oie_connectors::RenderContext;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::account::Account;
use crate::config::ConnectorHandle;
use crate::lead::Lead;
use crate::outbox::{Fire, HandOver, NewDelivery};
use crate::routing::{Evaluator, LastFire, Route, Router, Trigger, TriggerKind};
use crate::store::CrmRecord;

/// Router plus connectors.
pub struct Pipeline {
    pub router: Router,
    pub connectors: BTreeMap<String, ConnectorHandle>,
}

/// One lead's triggers to route, with when each route last fired for it.
pub struct Work<'a> {
    pub lead: &'a Lead,
    pub triggers: Vec<Trigger>,
    pub fires: HashMap<String, LastFire>,
    /// Known CRM records of the lead, newest first.
    pub crm: Vec<CrmRecord>,
    /// Routes whose alerts for this lead are snoozed (from Slack), until when (ms).
    pub snoozed: HashMap<String, i64>,
    /// The lead's account (or, on account triggers, the account itself), if any.
    pub account: Option<&'a Account>,
}

/// Below this many leads a page is routed on the calling thread.
const PARALLEL_FROM: usize = 64;

/// What one route match produced, for `oie routes test`.
#[derive(Debug)]
pub struct Routed {
    pub route: String,
    pub suppressed: bool,
    /// This match's deliveries, as positions in the hand-over's `deliveries`.
    pub deliveries: std::ops::Range<usize>,
}

impl Pipeline {
    /// Whether any route needs its last fires looked up.
    pub fn needs_fires(&self) -> bool {
        self.router
            .routes()
            .iter()
            .any(|r| r.repeat_after.is_some())
    }

    /// When each route last fired for each of `visitors`, read only when some route has
    /// `repeat_after`; leads that never fired are absent.
    pub fn last_fires(
        &self,
        outbox: &crate::outbox::Outbox,
        visitors: &[&str],
    ) -> anyhow::Result<HashMap<String, HashMap<String, LastFire>>> {
        if self.needs_fires() {
            outbox.last_fires(visitors)
        } else {
            Ok(HashMap::new())
        }
    }

    /// Routes a page of work, spread over the machine's cores (each thread with its own CEL
    /// context); the result keeps the page's order.
    pub fn route_all(&self, work: &[Work], now_ms: i64) -> HandOver {
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(4);
        if threads == 1 || work.len() < PARALLEL_FROM {
            return self.route_chunk(work, now_ms);
        }
        let size = work.len().div_ceil(threads);
        std::thread::scope(|s| {
            let parts: Vec<_> = work
                .chunks(size)
                .map(|chunk| s.spawn(move || self.route_chunk(chunk, now_ms)))
                .collect();
            let mut out = HandOver::default();
            for part in parts {
                // Routing and rendering do not panic; if one did, so should the caller.
                let part = part.join().expect("routing thread panicked");
                out.deliveries.extend(part.deliveries);
                out.fires.extend(part.fires);
                out.suppressed.extend(part.suppressed);
            }
            out
        })
    }

    fn route_chunk(&self, work: &[Work], now_ms: i64) -> HandOver {
        let eval = self.router.evaluator();
        let mut out = HandOver::default();
        for w in work {
            let lead = self.router.lead_input(w.lead);
            let account = w
                .account
                .map_or(cel::Value::Null, crate::routing::account_input);
            for trigger in &w.triggers {
                self.route_into(&eval, w, (&lead, &account), trigger, now_ms, &mut out);
            }
        }
        out
    }

    /// Routes one trigger and adds its deliveries and fires to `out`. `inputs` are the lead's
    /// and the account's CEL values ([`Router::lead_input`], [`crate::routing::account_input`]),
    /// made once for all the lead's triggers.
    pub fn route_into(
        &self,
        eval: &Evaluator,
        work: &Work,
        (lead_input, account_input): (&cel::Value, &cel::Value),
        trigger: &Trigger,
        now_ms: i64,
        out: &mut HandOver,
    ) -> Vec<Routed> {
        let Work {
            lead,
            fires,
            crm,
            snoozed,
            ..
        } = work;
        // Not a fit (from Slack): the lead's alerts stop; a snooze holds them on its route.
        let disqualified = trigger.kind == TriggerKind::HotLead
            && lead.get("disqualified") == &serde_json::Value::Bool(true);
        let mut input = self.router.input(lead_input.clone(), trigger, now_ms);
        input.account = account_input.clone();
        let mut routed = Vec::new();
        let takes = |c: &String| self.connectors[c].connector.takes(trigger.kind.as_str());
        // An identity carries the e-mail: only routes to connectors that hold identities see it.
        let eligible = |r: &Route| trigger.kind != TriggerKind::Identity || r.to.iter().any(takes);
        for m in eval.evaluate_among(&input, |r| fires.get(r).copied(), eligible) {
            let route = &m.route.name;
            let first = out.deliveries.len();
            let held = disqualified
                || (trigger.kind != TriggerKind::Erasure
                    && snoozed.get(route).is_some_and(|until| *until > now_ms));
            let m = crate::routing::RouteMatch {
                suppressed: m.suppressed || held,
                ..m
            };
            if !m.suppressed {
                let context =
                    RenderContext::new(render_input(lead, trigger, route, crm, work.account));
                let input = context.data().to_string();
                for connector in m.route.to.iter().filter(|c| takes(c)) {
                    if trigger.kind == TriggerKind::Erasure {
                        out.deliveries.extend(
                            self.erasure(m.route, connector, work, trigger, &context, &input),
                        );
                        continue;
                    }
                    out.deliveries
                        .push(self.delivery(m.route, connector, lead, trigger, &context, &input));
                }
                if m.route.repeat_after.is_some() {
                    out.fires.push(Fire {
                        route: route.clone(),
                        visitor_id: lead.visitor_id().to_string(),
                        at_ms: now_ms,
                        level: trigger.level,
                    });
                }
            }
            if m.suppressed {
                out.suppressed.push(route.clone());
            }
            routed.push(Routed {
                route: route.clone(),
                suppressed: m.suppressed,
                deliveries: first..out.deliveries.len(),
            });
        }
        routed
    }

    /// An erasure: to a connector that erases by visitor (KV) as the route renders it (`input`
    /// is that render input as text); to a CRM connector only when oie synced a record of the
    /// lead there (HubSpot blocklists an e-mail it is asked to delete but does not know), with
    /// that record as `record` in the render input.
    fn erasure(
        &self,
        route: &Route,
        connector: &str,
        work: &Work,
        trigger: &Trigger,
        context: &RenderContext,
        input: &str,
    ) -> Option<NewDelivery> {
        let handle = &self.connectors[connector];
        if handle.connector.erases_by_visitor() {
            return Some(self.delivery(route, connector, work.lead, trigger, context, input));
        }
        let record = work
            .crm
            .iter()
            .find(|r| r.connector == connector)
            .map(|r| &r.id);
        let Some(record) = record.filter(|_| handle.connector.is_crm()) else {
            tracing::info!(route = %route.name, connector, "no record of this lead in the connector: nothing to erase there");
            return None;
        };
        let mut data = context.data().clone();
        data["record"] = Value::String(record.clone());
        let context = RenderContext::new(data);
        let input = context.data().to_string();
        Some(self.delivery(route, connector, work.lead, trigger, &context, &input))
    }

    /// One connector's delivery of a route match: rendered, keyed, and told how long to wait
    /// (the route's `group_wait` for a digest, else the connector's `batch_wait`).
    fn delivery(
        &self,
        route: &Route,
        connector: &str,
        lead: &Lead,
        trigger: &Trigger,
        context: &RenderContext,
        input: &str,
    ) -> NewDelivery {
        // Config validation guarantees every route target exists.
        let handle = &self.connectors[connector];
        let payload = handle.connector.render(context).map_err(|e| e.to_string());
        let wait = route.group_wait.unwrap_or_else(|| {
            handle
                .delivery
                .batch_wait
                .unwrap_or_else(|| handle.connector.default_batch_wait())
        });
        NewDelivery {
            key: idempotency_key(&route.name, connector, lead.visitor_id(), &trigger.identity),
            route: route.name.clone(),
            connector: connector.to_string(),
            visitor_id: lead.visitor_id().to_string(),
            trigger_kind: trigger.kind.as_str().to_string(),
            payload,
            context: input.to_string(),
            delay_ms: wait.as_millis() as i64,
            group_key: route.group_wait.map(|_| route.name.clone()),
            supersedes: trigger.kind == TriggerKind::Sync && handle.connector.is_crm(),
            origin_ms: trigger.origin_ms,
        }
    }
}

/// What templates see: `{lead, trigger, route, crm, account}`. Built field by field: `json!` would copy
/// the lead a second time through its serializer.
fn render_input(
    lead: &Lead,
    trigger: &Trigger,
    route: &str,
    crm: &[CrmRecord],
    account: Option<&Account>,
) -> Value {
    let crm = crm.iter().map(CrmRecord::to_json).collect();
    let mut map = serde_json::Map::with_capacity(5);
    map.insert("lead".into(), Value::Object(lead.as_json().clone()));
    map.insert("trigger".into(), trigger.to_json());
    map.insert("route".into(), Value::String(route.to_string()));
    map.insert("crm".into(), Value::Array(crm));
    map.insert(
        "account".into(),
        account.map_or(Value::Null, |a| Value::Object(a.as_json().clone())),
    );
    Value::Object(map)
}

/// `msg_` + 32 hex digits of SHA-256(route, connector, lead, trigger identity): the same
/// inputs always give the same key, on any replica.
pub fn idempotency_key(route: &str, connector: &str, visitor_id: &str, trigger: &str) -> String {
    let mut h = Sha256::new();
    for part in [route, connector, visitor_id, trigger] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    format!("msg_{}", &hex::encode(h.finalize())[..32])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stable_and_unambiguous() {
        let a = idempotency_key("r", "c", "v1", "hot_lead:hot:3");
        assert_eq!(a, idempotency_key("r", "c", "v1", "hot_lead:hot:3"));
        assert_eq!(a.len(), 36);
        assert_ne!(a, idempotency_key("r", "c", "v1", "hot_lead:hot:4"));
        // Length prefixes keep ("ab","c") and ("a","bc") apart.
        assert_ne!(
            idempotency_key("ab", "c", "v", "t"),
            idempotency_key("a", "bc", "v", "t")
        );
    }
}
