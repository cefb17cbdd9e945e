//! `[sources.leads]`: reads leads changed since the last run (by `changeSeq`), yields
//! `hot_lead` when a level rose to hot or burning and `sync` when the profile changed, and
//! commits the deliveries together with its progress, so a restart never re-triggers what was
//! already handed over.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::clock::now_ms;
use crate::lead::Lead;
use crate::outbox::Seen;
use crate::routing::Trigger;
use crate::sources::stage::{Arrival, Progress, Stage, Staged};
use crate::sources::Source;
use crate::store::SqliteStore;

pub const SOURCE: &str = "leads";

pub struct LeadsSource {
    pub store: Arc<SqliteStore>,
    pub stage: Stage,
    /// The accounts' stage: after the leads, their accounts' changes are handed over.
    pub accounts: Stage,
    pub page: usize,
}

/// What one page did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Step {
    pub leads: usize,
    pub enqueued: usize,
}

/// One page read and routed, not yet handed over.
struct Page {
    staged: Staged,
    leads: usize,
    now_ms: i64,
}

impl LeadsSource {
    /// Hands over every page of changes (blocking: SQLite), calling `handed` after each
    /// commit. While one page is written, the next is read and routed beside it; what the
    /// written page saw and fired is laid over the outbox's record, so the next page routes
    /// as if the write had finished. Stops after the page in hand when `go_on` says so.
    pub fn drain(
        &self,
        now_ms: impl Fn() -> i64 + Sync,
        go_on: impl Fn() -> bool + Sync,
        mut handed: impl FnMut(&Step),
    ) -> anyhow::Result<()> {
        let position = self.stage.outbox.position(SOURCE)?;
        let mut next = self.read(position, None, now_ms())?;
        while let Some(page) = next.take() {
            let more = page.leads == self.page && go_on();
            let (written, following) = std::thread::scope(|s| {
                let writer = s.spawn(|| self.write(&page));
                let following = match page.staged.position() {
                    Some(last) if more => self.read(last, Some(&page.staged), now_ms()),
                    _ => Ok(None),
                };
                // Writing does not panic; if it did, so should the caller.
                (writer.join().expect("hand-over thread panicked"), following)
            });
            handed(&written?);
            next = following?;
        }
        Ok(())
    }

    /// Reads and routes the page of changes after `position`. `pending` is the page being
    /// written: its leads' levels and fires are newer than the outbox's.
    fn read(
        &self,
        position: i64,
        pending: Option<&Staged>,
        now_ms: i64,
    ) -> anyhow::Result<Option<Page>> {
        let leads = self.store.changed_leads(position, self.page)?;
        let Some(last) = leads.last().map(Lead::version) else {
            return Ok(None);
        };
        let count = leads.len();
        let ids: Vec<&str> = leads.iter().map(Lead::visitor_id).collect();
        let mut seen = self.stage.outbox.seen(&ids)?;
        let mut crm = self.store.crm_ids(&ids)?;
        let mut accounts = self.store.accounts_of(&ids, now_ms)?;
        // Each account's own records (its company in a CRM), for the people to join it.
        let keys: Vec<String> = accounts
            .values()
            .map(|a| crate::account::key(a.domain()))
            .collect();
        let key_ids: Vec<&str> = keys.iter().map(String::as_str).collect();
        let account_records = self.store.crm_ids(&key_ids)?;
        for a in accounts.values_mut() {
            let records = account_records
                .get(&crate::account::key(a.domain()))
                .map(|r| crate::sources::accounts::records_json(r))
                .unwrap_or_else(|| serde_json::json!([]));
            a.set("records", records);
        }
        if let Some(pending) = pending {
            // Only this page's leads are looked up; the others' entries are never read.
            seen.extend(pending.seen().iter().map(|(v, s)| (v.clone(), *s)));
        }
        let progress = Progress {
            position: Some((SOURCE.to_string(), last)),
            seen: leads
                .iter()
                .map(|l| {
                    let seen = Seen {
                        level: l.level(),
                        version: l.version(),
                    };
                    (l.visitor_id().to_string(), seen)
                })
                .collect(),
            ..Progress::default()
        };
        let arrivals: Vec<Arrival> = leads
            .into_iter()
            .map(|lead| Arrival {
                triggers: triggers(&lead, seen.get(lead.visitor_id()).copied(), now_ms),
                crm: crm.remove(lead.visitor_id()).unwrap_or_default(),
                account: accounts.remove(lead.visitor_id()),
                lead,
            })
            .collect();
        let staged = self.stage.stage(arrivals, progress, pending, now_ms)?;
        Ok(Some(Page {
            staged,
            leads: count,
            now_ms,
        }))
    }

    /// Commits a page's deliveries with the source's progress.
    fn write(&self, page: &Page) -> anyhow::Result<Step> {
        let handed = self.stage.commit(&page.staged, page.now_ms)?;
        Ok(Step {
            leads: page.leads,
            enqueued: handed.added,
        })
    }
}

#[async_trait::async_trait]
impl Source for LeadsSource {
    async fn poll(
        self: Arc<Self>,
        stop: CancellationToken,
        handed: Arc<dyn Fn(usize) + Send + Sync>,
    ) -> anyhow::Result<()> {
        tokio::task::spawn_blocking(move || {
            // Leads change outside scoring too (an import, Not a fit): their accounts are
            // rolled up first, so a lead's triggers see its account as it is now.
            self.store.score_accounts(now_ms())?;
            self.drain(
                now_ms,
                || !stop.is_cancelled(),
                |step| {
                    if step.enqueued > 0 {
                        tracing::debug!(
                            leads = step.leads,
                            enqueued = step.enqueued,
                            "leads handed over"
                        );
                    }
                    handed(step.enqueued);
                },
            )?;
            crate::sources::accounts::drain(
                &self.store,
                &self.accounts,
                self.page,
                now_ms,
                || !stop.is_cancelled(),
                |added| handed(added),
            )
        })
        .await?
    }
}

/// The triggers a lead's change yields, given what was seen of it before.
pub fn triggers(lead: &Lead, previous: Option<Seen>, now_ms: i64) -> Vec<Trigger> {
    let (level, version) = (lead.level(), lead.version());
    let mut out = Vec::new();
    let (rose, changed) = crate::sources::rise_and_change(level, version, previous);
    if rose {
        out.push(
            Trigger::hot_lead(level, previous.map(|p| p.level), version, now_ms)
                .caused_at(lead.get("lastVisitAt").as_i64()),
        );
    }
    if changed {
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
