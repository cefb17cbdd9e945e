//! `[sources.leads]`: reads leads changed since the last run (by `changeSeq`), yields
//! `hot_lead` when a level rose to hot or burning and `sync` when the profile changed, and
//! commits the deliveries together with its progress, so a restart never re-triggers what was
//! already handed over.

use std::sync::Arc;

use crate::lead::Lead;
use crate::metrics::Metrics;
use crate::outbox::{Outbox, Seen};
use crate::pipeline::{Pipeline, Work};
use crate::routing::Trigger;
use crate::store::LeadStore;

pub const SOURCE: &str = "leads";

pub struct LeadsSource {
    pub store: Arc<dyn LeadStore>,
    pub outbox: Arc<Outbox>,
    pub pipeline: Arc<Pipeline>,
    pub metrics: Arc<Metrics>,
    pub page: usize,
}

/// What one step did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Step {
    pub leads: usize,
    pub enqueued: usize,
}

impl LeadsSource {
    /// Reads one page of changes and hands it over. Blocking (SQLite).
    pub fn step(&self, now_ms: i64) -> anyhow::Result<Step> {
        let position = self.outbox.position(SOURCE)?;
        let leads = self.store.changed_leads(position, self.page)?;
        let Some(last) = leads.last() else {
            return Ok(Step::default());
        };
        let ids: Vec<&str> = leads.iter().map(Lead::visitor_id).collect();
        let seen = self.outbox.seen(&ids)?;
        let mut crm = self.store.crm_ids(&ids)?;
        let mut work = Vec::with_capacity(leads.len());
        for lead in &leads {
            let previous = seen.get(lead.visitor_id()).copied();
            let fires = self.pipeline.last_fires(&self.outbox, lead.visitor_id())?;
            let triggers = triggers(lead, previous, now_ms);
            for t in &triggers {
                self.metrics
                    .triggers
                    .with_label_values(&[SOURCE, t.kind.as_str()])
                    .inc();
            }
            let crm = crm.remove(lead.visitor_id()).unwrap_or_default();
            work.push(Work {
                lead,
                triggers,
                fires,
                crm,
            });
        }
        let mut out = self.pipeline.route_all(&work, now_ms);
        out.position = Some((SOURCE.to_string(), last.version()));
        out.seen = leads
            .iter()
            .map(|l| {
                (
                    l.visitor_id().to_string(),
                    Seen {
                        level: l.level(),
                        version: l.version(),
                    },
                )
            })
            .collect();
        let enqueued = self.outbox.hand_over(&out, now_ms)?;
        self.metrics.handed_over(&out.deliveries, &out.suppressed);
        Ok(Step {
            leads: leads.len(),
            enqueued,
        })
    }
}

/// The triggers a lead's change yields, given what was seen of it before.
pub fn triggers(lead: &Lead, previous: Option<Seen>, now_ms: i64) -> Vec<Trigger> {
    let (level, version) = (lead.level(), lead.version());
    let mut out = Vec::new();
    let rose = previous.is_none_or(|p| level > p.level);
    if level.is_hot() && rose {
        out.push(Trigger::hot_lead(
            level,
            previous.map(|p| p.level),
            version,
            now_ms,
        ));
    }
    if previous.is_none_or(|p| version > p.version) {
        out.push(Trigger::sync(level, version, now_ms));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lead::Level;
    use crate::routing::TriggerKind;

    fn lead(level: &str, version: i64) -> Lead {
        let v =
            serde_json::json!({"visitorId": "v1", "engagementLevel": level, "changeSeq": version});
        Lead::from_json(v.as_object().unwrap())
    }

    fn kinds(lead: &Lead, previous: Option<(Level, i64)>) -> Vec<TriggerKind> {
        let previous = previous.map(|(level, version)| Seen { level, version });
        triggers(lead, previous, 0).iter().map(|t| t.kind).collect()
    }

    type Case = (
        &'static str,
        i64,
        Option<(Level, i64)>,
        &'static [TriggerKind],
    );

    #[test]
    fn rises_and_changes() {
        use TriggerKind::{HotLead, Sync};
        let cases: &[Case] = &[
            ("hot", 1, None, &[HotLead, Sync]), // first seen hot counts as a rise
            ("warm", 1, None, &[Sync]),
            ("burning", 5, Some((Level::Hot, 4)), &[HotLead, Sync]),
            ("hot", 5, Some((Level::Hot, 4)), &[Sync]), // no rise
            ("hot", 5, Some((Level::Burning, 4)), &[Sync]), // a fall
            ("hot", 4, Some((Level::Warm, 4)), &[HotLead]), // same version, level differs
            ("cold", 4, Some((Level::Cold, 4)), &[]),
        ];
        for (level, version, previous, expected) in cases {
            assert_eq!(
                kinds(&lead(level, *version), *previous),
                *expected,
                "{level} {previous:?}"
            );
        }
    }
}
