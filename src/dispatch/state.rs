//! A connector's loop chores: publishing its state (metrics, and the outbox table
//! `oie connectors status` reads), taking `oie connectors resume` requests, and giving up
//! deliveries past `max_age` — which runs even while the connector is held.

use oie_connectors::Reason;

use super::health::Label;
use super::worker::ConnectorRuntime;
use super::Dispatcher;
use crate::outbox::{Applied, ConnectorState};

/// How often a loop looks for a resume request...
const RESUME_EVERY_MS: i64 = 500;
/// ...and for deliveries past `max_age`.
const EXPIRE_EVERY_MS: i64 = 60_000;
/// Expired deliveries given up per transaction.
const EXPIRE_BATCH: usize = 500;

/// What was last published of a connector's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    label: Label,
    reason: Option<Reason>,
    next_try: Option<i64>,
    since: i64,
}

/// When a loop last did its chores.
#[derive(Debug, Default)]
pub struct Chores {
    resume_at: Option<i64>,
    expire_at: Option<i64>,
}

fn due(last: &mut Option<i64>, every: i64, now: i64) -> bool {
    let is_due = last.is_none_or(|t| now - t >= every);
    if is_due {
        *last = Some(now);
    }
    is_due
}

impl Dispatcher {
    pub(super) async fn chores(&self, rt: &ConnectorRuntime, chores: &mut Chores) {
        let now = self.now();
        if due(&mut chores.resume_at, RESUME_EVERY_MS, now) && self.resume_requested(rt).await {
            tracing::info!(connector = %rt.name, "probing now, as `oie connectors resume` asked");
            rt.health().resume_now(now);
        }
        if due(&mut chores.expire_at, EXPIRE_EVERY_MS, now) {
            self.expire(rt).await;
        }
    }

    async fn resume_requested(&self, rt: &ConnectorRuntime) -> bool {
        let name = rt.name.clone();
        match self.on_outbox(move |o| o.take_resume(&name)).await {
            Ok(asked) => asked,
            Err(e) => {
                tracing::warn!(connector = %rt.name, error = %e, "cannot read resume requests");
                false
            }
        }
    }

    /// Gives up queued deliveries older than `max_age`, with what last went wrong (or why the
    /// connector was held).
    async fn expire(&self, rt: &ConnectorRuntime) {
        let max_age = rt.policy.max_age;
        loop {
            let now = self.now();
            let cutoff = now - max_age.as_millis() as i64;
            let name = rt.name.clone();
            let claimed = self
                .on_outbox(move |o| o.claim_expired(&name, cutoff, EXPIRE_BATCH, now))
                .await;
            let expired = match claimed {
                Ok(e) => e,
                Err(e) => {
                    tracing::error!(connector = %rt.name, error = %e, "cannot look for expired deliveries");
                    return;
                }
            };
            let held = rt.health().park().map(|p| p.failure.clone());
            for e in &expired {
                let reason = e
                    .reason
                    .or(held.as_ref().map(|f| f.reason))
                    .unwrap_or(Reason::Timeout);
                let last = e
                    .error
                    .clone()
                    .or(held.as_ref().map(|f| f.detail.clone()))
                    .unwrap_or_else(|| "never attempted".into());
                let error = format!(
                    "gave up: max_age {} reached before it could be delivered: {last}",
                    humantime::format_duration(max_age)
                );
                self.finish(rt, &e.delivery, Applied::Dead { reason, error }, 0, None)
                    .await;
            }
            if expired.len() < EXPIRE_BATCH {
                return;
            }
        }
    }

    /// Exports the connector's state when it changed: `oie_connector_state`,
    /// `oie_circuit_state`, and the row `oie connectors status` reads.
    pub(super) async fn publish(&self, rt: &ConnectorRuntime) {
        let now = self.now();
        let (label, failure, next_try, breaker) = {
            let h = rt.health();
            let failure = h.park().map(|p| p.failure.clone());
            (h.label(now), failure, h.next_try(now), h.breaker_gauge())
        };
        let reason = failure.as_ref().map(|f| f.reason);
        let state = {
            let mut last = rt.published.lock().unwrap_or_else(|p| p.into_inner());
            let since = match last.as_ref() {
                Some(p) if p.label == label && p.reason == reason => p.since,
                _ => now,
            };
            let state = Published {
                label,
                reason,
                next_try,
                since,
            };
            if last.as_ref() == Some(&state) {
                return;
            }
            *last = Some(state.clone());
            state
        };
        for l in Label::ALL {
            self.metrics
                .connector_state
                .with_label_values(&[&rt.name, l.as_str()])
                .set(i64::from(l == label));
        }
        self.metrics
            .circuit
            .with_label_values(&[&rt.name])
            .set(breaker);
        let row = ConnectorState {
            connector: rt.name.clone(),
            state: label.as_str().to_string(),
            reason: reason.map(|r| r.as_str().to_string()),
            detail: failure.map(|f| crate::redact::emails(&f.detail)),
            since: state.since,
            next_try,
            updated_at: now,
        };
        if let Err(e) = self.on_outbox(move |o| o.set_connector_state(&row)).await {
            tracing::warn!(connector = %rt.name, error = %e, "cannot record the connector's state")
        }
    }
}
