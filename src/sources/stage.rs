//! The one hand-over every source goes through: count each trigger, look up when each route
//! last fired for the leads (with what a page still being committed fired laid over), route,
//! and commit the deliveries together with the source's progress in one outbox transaction.
//! What differs between sources is data: their triggers, and the [`Progress`] they commit.

use std::sync::Arc;

use crate::lead::Lead;
use crate::metrics::Metrics;
use crate::outbox::{HandOver, NewDelivery, Outbox, Seen};
use crate::pipeline::{Pipeline, Work};
use crate::routing::{LastFire, Trigger};

/// Routes and hands over for one source (`triggers_total{source}` is its label).
pub struct Stage {
    pub source: &'static str,
    pub outbox: Arc<Outbox>,
    pub pipeline: Arc<Pipeline>,
    pub metrics: Arc<Metrics>,
}

/// A lead and what its source saw happen to it.
pub struct Arrival {
    pub lead: Lead,
    pub triggers: Vec<Trigger>,
    /// Known CRM records of the lead, newest first.
    pub crm: Vec<crate::store::CrmRecord>,
    /// The lead's account (on account triggers, the account itself).
    pub account: Option<crate::account::Account>,
}

/// What a source commits beside its deliveries, so a restart resumes where it stopped.
#[derive(Default)]
pub struct Progress {
    /// (source name, position) of a source that pages by one number.
    pub position: Option<(String, i64)>,
    /// The level and version each lead was last seen at.
    pub seen: Vec<(String, Seen)>,
    /// (cursor name, cursor) of a source that pages by a compound key.
    pub cursors: Vec<(String, String)>,
    /// Input that can never be routed, kept as dead letters.
    pub dead: Vec<NewDelivery>,
}

/// Routed, not yet committed.
pub struct Staged {
    out: HandOver,
    /// How many of `out.deliveries` were routed (the rest are dead letters).
    routed: usize,
}

impl Staged {
    /// What the leads of this page were seen at.
    pub fn seen(&self) -> &[(String, Seen)] {
        &self.out.seen
    }

    /// The position this page commits, if it has one.
    pub fn position(&self) -> Option<i64> {
        self.out.position.as_ref().map(|(_, p)| *p)
    }
}

/// What one commit did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Handed {
    /// Rows new to the outbox, dead letters included (a repeated idempotency key adds nothing).
    pub added: usize,
    /// Deliveries routed.
    pub routed: usize,
    /// Dead letters handed over.
    pub dead: usize,
}

impl Stage {
    /// Counts the triggers and routes the arrivals (blocking: reads the outbox). `pending` is a
    /// page routed but not yet committed: its fires are newer than the outbox's.
    pub fn stage(
        &self,
        arrivals: Vec<Arrival>,
        progress: Progress,
        pending: Option<&Staged>,
        now_ms: i64,
    ) -> anyhow::Result<Staged> {
        let (mut leads, saw): (Vec<Lead>, Vec<_>) = arrivals
            .into_iter()
            .map(|a| (a.lead, (a.triggers, a.crm, a.account)))
            .unzip();
        let owned: Vec<String> = leads.iter().map(|l| l.visitor_id().to_string()).collect();
        let ids: Vec<&str> = owned.iter().map(String::as_str).collect();
        let mut fires = self.pipeline.last_fires(&self.outbox, &ids)?;
        // What sales said from Slack: claims and Not a fit on the lead, snoozes by route.
        let mut marks = self.outbox.marks(&ids, now_ms)?;
        for lead in &mut leads {
            if let Some(m) = marks.get(lead.visitor_id()) {
                m.apply(lead);
            }
        }
        if let Some(pending) = pending {
            for f in &pending.out.fires {
                fires.entry(f.visitor_id.clone()).or_default().insert(
                    f.route.clone(),
                    LastFire {
                        at_ms: f.at_ms,
                        level: f.level,
                    },
                );
            }
        }
        let (saw, accounts): (Vec<_>, Vec<_>) = saw
            .into_iter()
            .map(|(triggers, crm, account)| ((triggers, crm), account))
            .unzip();
        let mut work = Vec::with_capacity(leads.len());
        for ((lead, (triggers, crm)), account) in leads.iter().zip(saw).zip(&accounts) {
            for t in &triggers {
                self.metrics
                    .triggers
                    .with_label_values(&[self.source, t.kind.as_str()])
                    .inc();
            }
            work.push(Work {
                lead,
                triggers,
                fires: fires.remove(lead.visitor_id()).unwrap_or_default(),
                crm,
                snoozed: marks
                    .remove(lead.visitor_id())
                    .map(|m| m.snoozed)
                    .unwrap_or_default(),
                account: account.as_ref(),
            });
        }
        let mut out = self.pipeline.route_all(&work, now_ms);
        let routed = out.deliveries.len();
        out.deliveries.extend(progress.dead);
        out.position = progress.position;
        out.seen = progress.seen;
        out.cursors = progress.cursors;
        Ok(Staged { out, routed })
    }

    /// Commits a staged page with its progress (blocking: SQLite).
    pub fn commit(&self, staged: &Staged, now_ms: i64) -> anyhow::Result<Handed> {
        let committed = self.outbox.hand_over(&staged.out, now_ms)?;
        let (routed, dead) = staged.out.deliveries.split_at(staged.routed);
        self.metrics
            .handed_over(routed, &staged.out.suppressed, &committed.superseded);
        Ok(Handed {
            added: committed.added,
            routed: routed.len(),
            dead: dead.len(),
        })
    }

    /// [`Stage::stage`] and [`Stage::commit`] together (blocking).
    pub fn hand_over(
        &self,
        arrivals: Vec<Arrival>,
        progress: Progress,
        now_ms: i64,
    ) -> anyhow::Result<Handed> {
        let staged = self.stage(arrivals, progress, None, now_ms)?;
        self.commit(&staged, now_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lead::Level;

    /// A stage for source `pubsub` with one route that holds back a repeat for a day.
    fn stage(dir: &std::path::Path) -> Stage {
        let text = "[[routes]]\nname = \"hot\"\nwhen = 'trigger.kind == \"hot_lead\"'\nto = [\"hook\"]\nrepeat_after = \"24h\"\n\n[connectors.hook]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:9/h\"\n";
        let loaded = crate::config::load_str(&dir.join("config.toml"), text)
            .unwrap_or_else(|p| panic!("{p:?}"));
        Stage {
            source: "pubsub",
            outbox: Arc::new(Outbox::open(&dir.join("outbox.db")).unwrap()),
            pipeline: Arc::new(Pipeline {
                router: loaded.router,
                connectors: loaded.connectors,
            }),
            metrics: Arc::new(Metrics::new()),
        }
    }

    fn hot(visitor: &str, at_ms: i64) -> Arrival {
        let lead =
            serde_json::json!({"visitorId": visitor, "engagementLevel": "hot", "changeSeq": 1});
        Arrival {
            lead: Lead::from_json(lead.as_object().unwrap()),
            triggers: vec![Trigger::hot_lead(Level::Hot, None, 1, at_ms)],
            crm: Vec::new(),
            account: None,
        }
    }

    fn dead_letter(key: &str) -> NewDelivery {
        NewDelivery {
            key: key.into(),
            route: "(pubsub source)".into(),
            connector: "sources.pubsub".into(),
            visitor_id: String::new(),
            trigger_kind: "hot_lead".into(),
            payload: Err("not JSON".into()),
            context: "{}".into(),
            delay_ms: 0,
            group_key: None,
            supersedes: false,
            origin_ms: None,
        }
    }

    /// A page routed while the one before it is still uncommitted sees that page's fires: the
    /// repeat is held back although the outbox has no record of the first yet.
    #[test]
    fn a_pending_page_s_fires_hold_back_a_repeat() {
        let dir = tempfile::tempdir().unwrap();
        let stage = stage(dir.path());
        let first = stage
            .stage(vec![hot("v1", 1_000)], Progress::default(), None, 1_000)
            .unwrap();
        let second = stage
            .stage(
                vec![hot("v1", 2_000)],
                Progress::default(),
                Some(&first),
                2_000,
            )
            .unwrap();
        assert_eq!(second.out.deliveries.len(), 0);
        assert_eq!(second.out.suppressed, vec!["hot".to_string()]);
        // Without the overlay the outbox knows nothing yet, so the repeat would go out.
        let blind = stage
            .stage(vec![hot("v1", 2_000)], Progress::default(), None, 2_000)
            .unwrap();
        assert_eq!(blind.out.deliveries.len(), 1);
    }

    /// Dead letters are committed with the routed deliveries and the source's cursor, counted
    /// apart from them, and a repeated commit adds nothing.
    #[test]
    fn dead_letters_and_progress_commit_with_the_deliveries() {
        let dir = tempfile::tempdir().unwrap();
        let stage = stage(dir.path());
        let progress = || Progress {
            cursors: vec![("pubsub.test".into(), "42:m9".into())],
            dead: vec![dead_letter("pubsub_dead1")],
            ..Progress::default()
        };
        let handed = stage
            .hand_over(vec![hot("v1", 1_000), hot("v2", 1_000)], progress(), 1_000)
            .unwrap();
        assert_eq!(
            handed,
            Handed {
                added: 3,
                routed: 2,
                dead: 1
            }
        );
        assert_eq!(
            stage.outbox.cursor("pubsub.test").unwrap().as_deref(),
            Some("42:m9")
        );
        let m = &stage.metrics;
        assert_eq!(
            m.triggers.with_label_values(&["pubsub", "hot_lead"]).get(),
            2
        );
        assert_eq!(m.enqueued.with_label_values(&["hot", "hook"]).get(), 2);
        assert_eq!(
            m.enqueued
                .with_label_values(&["(pubsub source)", "sources.pubsub"])
                .get(),
            0
        );
        let again = stage
            .hand_over(vec![hot("v1", 1_000), hot("v2", 1_000)], progress(), 1_000)
            .unwrap();
        assert_eq!(again.added, 0);
    }

    /// Snooze holds a lead's alerts on its route until it ends (time is the caller's `now`,
    /// so this is paused time); Not a fit stops them for good and is a lead field routes see.
    #[test]
    fn snoozes_end_and_not_a_fit_stays() {
        use crate::outbox::{Action, ActionKind};
        let dir = tempfile::tempdir().unwrap();
        let stage = stage(dir.path());
        let act = |id: &str, visitor: &str, kind| Action {
            id: id.into(),
            visitor_id: visitor.into(),
            route: "hot".into(),
            kind,
            user_id: "U1".into(),
            user_name: None,
            channel: None,
            message_ts: None,
            at_ms: 1_000,
        };
        let week = 7 * 86_400_000;
        stage
            .outbox
            .apply_action(&act(
                "a1",
                "v1",
                ActionKind::Snooze {
                    until_ms: 1_000 + week,
                },
            ))
            .unwrap();
        stage
            .outbox
            .apply_action(&act("a2", "v2", ActionKind::NotAFit))
            .unwrap();
        let routed = |visitor: &str, now: i64| {
            stage
                .stage(vec![hot(visitor, now)], Progress::default(), None, now)
                .unwrap()
                .out
                .deliveries
                .len()
        };
        assert_eq!(routed("v1", 2_000), 0, "snoozed");
        assert_eq!(routed("v1", 1_000 + week - 1), 0, "still snoozed");
        assert_eq!(routed("v1", 1_000 + week), 1, "the snooze has ended");
        assert_eq!(routed("v2", 2_000), 0, "not a fit");
        assert_eq!(routed("v2", 1_000 + 10 * week), 0, "not a fit stays");
        assert_eq!(routed("v3", 2_000), 1, "others are alerted");
        // Routes see the mark.
        let text = "[[routes]]\nname = \"fit\"\nwhen = 'trigger.kind == \"sync\" && !lead.disqualified'\nto = [\"hook\"]\n\n[[routes]]\nname = \"ruled-out\"\nwhen = 'lead.disqualified && lead.disqualifiedBy == \"U1\"'\nto = [\"hook\"]\n\n[connectors.hook]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:9/h\"\n";
        let loaded = crate::config::load_str(&dir.path().join("config.toml"), text)
            .unwrap_or_else(|p| panic!("{p:?}"));
        let sync_stage = Stage {
            pipeline: Arc::new(Pipeline {
                router: loaded.router,
                connectors: loaded.connectors,
            }),
            ..stage
        };
        let sync = |visitor: &str| {
            let lead = serde_json::json!({"visitorId": visitor, "engagementLevel": "warm", "changeSeq": 2});
            let arrival = Arrival {
                lead: Lead::from_json(lead.as_object().unwrap()),
                triggers: vec![Trigger::sync(Level::Warm, 2, 3_000)],
                crm: Vec::new(),
                account: None,
            };
            let staged = sync_stage
                .stage(vec![arrival], Progress::default(), None, 3_000)
                .unwrap();
            staged
                .out
                .deliveries
                .iter()
                .map(|d| d.route.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(sync("v2"), vec!["ruled-out".to_string()]);
        assert_eq!(sync("v3"), vec!["fit".to_string()]);
    }
}
