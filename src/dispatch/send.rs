//! One request: send it (bounded by the connector's deadline), judge what the answer says about
//! the connector, and settle each delivery by the retry policy.

use std::time::Duration;

use oie_connectors::{Delivery, Outcome, Reason};
use tokio::sync::OwnedSemaphorePermit;

use super::health::{Change, Verdict};
use super::retry::Mode;
use super::worker::ConnectorRuntime;
use super::{Dispatcher, Record};
use crate::outbox::{Applied, Claimed, Report};
use crate::redact;
use crate::routing::TriggerKind;
use crate::store::SyncRecord;

/// What one request carries.
pub enum Unit {
    /// Up to `batch_size` deliveries, each with its own payload and outcome.
    Batch(Vec<Claimed>),
    /// A group's deliveries as one digest message with one outcome.
    Digest(Vec<Claimed>),
}

impl Unit {
    pub fn members(self) -> Vec<Claimed> {
        match self {
            Unit::Batch(m) | Unit::Digest(m) => m,
        }
    }
}

impl Dispatcher {
    pub(super) async fn send(
        &self,
        rt: &ConnectorRuntime,
        unit: Unit,
        mode: Mode,
        _permit: OwnedSemaphorePermit,
    ) {
        let Some(unit) = self.drop_forgotten(rt, unit).await else {
            return;
        };
        let started = tokio::time::Instant::now();
        let (members, outcomes, owners) = match unit {
            Unit::Batch(chunk) => {
                let batch: Vec<Delivery> = chunk.iter().map(to_delivery).collect();
                let outcomes = self
                    .bounded(rt, rt.connector.send(&batch), batch.len())
                    .await;
                let owners = self.owners(rt, &chunk, &batch, &outcomes).await;
                (chunk, outcomes, owners)
            }
            Unit::Digest(members) => {
                let outcome = self.send_digest(rt, &members).await;
                let outcomes = vec![outcome; members.len()];
                let owners = vec![None; members.len()];
                (members, outcomes, owners)
            }
        };
        let elapsed = started.elapsed();
        let now = self.now();
        let changes = rt
            .health()
            .answered(&Verdict::of(&outcomes), mode == Mode::Probe, now);
        self.log(rt, &changes);
        self.export_vendor(rt);
        self.metrics
            .attempt_seconds
            .with_label_values(&[&rt.name])
            .observe(elapsed.as_secs_f64());
        for ((claimed, outcome), owner) in members.iter().zip(outcomes).zip(owners) {
            self.settle(rt, claimed, &outcome, mode, elapsed, owner)
                .await;
        }
        if !changes.is_empty() {
            rt.wake();
        }
    }

    /// Takes out the deliveries of visitors erased after they were created (claimed before the
    /// erasure, not yet sent): they are never sent, and their rows go. `None` when nothing is
    /// left to send.
    async fn drop_forgotten(&self, rt: &ConnectorRuntime, unit: Unit) -> Option<Unit> {
        let forgotten = |c: &Claimed| {
            c.trigger_kind != TriggerKind::Erasure.as_str()
                && self
                    .outbox
                    .forgotten
                    .since(&c.visitor_id)
                    .is_some_and(|at| c.created_at <= at)
        };
        let (digest, members) = match unit {
            Unit::Batch(m) => (false, m),
            Unit::Digest(m) => (true, m),
        };
        let (erased, kept): (Vec<Claimed>, Vec<Claimed>) = members.into_iter().partition(forgotten);
        for c in &erased {
            self.finish(rt, c, Applied::Erased, 0, None).await;
        }
        match (kept.is_empty(), digest) {
            (true, _) => None,
            (false, true) => Some(Unit::Digest(kept)),
            (false, false) => Some(Unit::Batch(kept)),
        }
    }

    /// Runs a connector call within the runtime's deadline: one that never answers must not
    /// hold its deliveries (or a probe) for ever.
    async fn bounded(
        &self,
        rt: &ConnectorRuntime,
        call: impl std::future::Future<Output = Vec<Outcome>>,
        len: usize,
    ) -> Vec<Outcome> {
        match tokio::time::timeout(rt.deadline, call).await {
            Ok(mut outcomes) => {
                outcomes.resize(
                    len,
                    Outcome::failed(
                        Reason::ServerError,
                        "the connector returned fewer outcomes than deliveries",
                    ),
                );
                outcomes
            }
            Err(_) => vec![
                Outcome::failed(
                    Reason::Timeout,
                    format!(
                        "no outcome within {}",
                        humantime::format_duration(rt.deadline)
                    ),
                );
                len
            ],
        }
    }

    /// With `reads_owners`: the owner e-mail of each delivered record, for
    /// `crm_sync_state.ownerEmail` (`Some("")`: the record has none; `None`: not known). An
    /// owner assignment knows its owner; the other records are read in one call, after the
    /// connector's pace. A failed read leaves them unknown: the deliveries are made either way.
    async fn owners(
        &self,
        rt: &ConnectorRuntime,
        members: &[Claimed],
        batch: &[Delivery],
        outcomes: &[Outcome],
    ) -> Vec<Option<String>> {
        let mut owners = vec![None; batch.len()];
        if !rt.reads_owners {
            return owners;
        }
        let mut read: Vec<(usize, &String)> = Vec::new();
        for (i, (delivery, outcome)) in batch.iter().zip(outcomes).enumerate() {
            let Outcome::Delivered {
                record_id: Some(id),
            } = outcome
            else {
                continue;
            };
            let kind = TriggerKind::parse(&members[i].trigger_kind);
            if kind == Some(TriggerKind::Erasure) || kind.is_some_and(TriggerKind::is_account) {
                // The record is gone, or it is an account's (a company has no lead owner).
                continue;
            }
            match oie_connectors::owner::assignment(delivery) {
                Some((email, _)) => owners[i] = Some(email.to_lowercase()),
                None => read.push((i, id)),
            }
        }
        if read.is_empty() {
            return owners;
        }
        let mut ids: Vec<String> = read.iter().map(|(_, id)| id.to_string()).collect();
        ids.sort();
        ids.dedup();
        if let Some(pacer) = &rt.pacer {
            pacer.ready().await;
        }
        match tokio::time::timeout(rt.deadline, rt.connector.record_owners(&ids)).await {
            Ok(Ok(found)) => {
                for (i, id) in read {
                    if let Some(owner) = found.get(id) {
                        owners[i] = Some(owner.clone().unwrap_or_default());
                    }
                }
            }
            Ok(Err(f)) => {
                let error = redact::emails(&f.to_string());
                tracing::warn!(connector = %rt.name, %error, "could not read the owners of synced records; the owners known before are kept");
            }
            Err(_) => {
                tracing::warn!(connector = %rt.name, "reading the owners of synced records timed out; the owners known before are kept")
            }
        }
        owners
    }

    /// Renders the members' digest and sends it as one message; its outcome is every member's.
    async fn send_digest(&self, rt: &ConnectorRuntime, members: &[Claimed]) -> Outcome {
        let items: Vec<serde_json::Value> = members
            .iter()
            .filter_map(|m| {
                m.context
                    .as_deref()
                    .and_then(|c| serde_json::from_str(c).ok())
            })
            .collect();
        let payload = match rt.connector.render_digest(&items) {
            Ok(p) => p,
            Err(e) => return Outcome::failed(Reason::Render, e.to_string()),
        };
        let first = &members[0];
        let digest = Delivery {
            key: format!("digest_{}", first.key),
            visitor_id: first.visitor_id.clone(),
            payload,
            attempt: members.iter().map(|m| m.attempts).max().unwrap_or(0) + 1,
        };
        tracing::debug!(connector = %rt.name, leads = members.len(), "sending a digest");
        let call = rt.connector.send(std::slice::from_ref(&digest));
        self.bounded(rt, call, 1).await.remove(0)
    }

    /// Applies the retry policy, counts the result, and hands it to the recorder.
    async fn settle(
        &self,
        rt: &ConnectorRuntime,
        c: &Claimed,
        outcome: &Outcome,
        mode: Mode,
        elapsed: Duration,
        owner: Option<String>,
    ) {
        let now = self.now();
        let applied = rt
            .policy
            .decide(outcome, c, mode, now, rand::random::<f64>());
        self.finish(rt, c, applied, elapsed.as_millis() as i64, owner)
            .await;
    }

    /// Counts a delivery's result and records it (with its CRM writeback, and the record's
    /// owner when it was read).
    pub(super) async fn finish(
        &self,
        rt: &ConnectorRuntime,
        c: &Claimed,
        applied: Applied,
        millis: i64,
        owner: Option<String>,
    ) {
        let now = self.now();
        let reason = applied.reason().map_or("", Reason::as_str);
        self.metrics
            .deliveries
            .with_label_values(&[&c.route, &rt.name, applied.label(), reason])
            .inc();
        if let (Applied::Delivered { .. }, Some(origin)) = (&applied, c.origin_at) {
            self.metrics
                .alert_latency
                .with_label_values(&[&c.route, &rt.name])
                .observe((now - origin).max(0) as f64 / 1000.0);
        }
        if let Applied::Dead { reason, error } = &applied {
            let error = redact::emails(error);
            tracing::warn!(connector = %rt.name, route = %c.route, delivery = c.id, %reason, %error,
                "delivery dead-lettered; see `oie deadletters show {}`", c.id);
        }
        // A CRM erasure deletes the record: nothing to write back.
        let erasure = c.trigger_kind == TriggerKind::Erasure.as_str();
        let writeback = (rt.connector.is_crm() && !erasure)
            .then(|| writeback(rt, c, &applied, now, owner))
            .flatten();
        let requeued = matches!(
            applied,
            Applied::Retry { .. } | Applied::Held { .. } | Applied::Released
        )
        .then(|| rt.wake.clone());
        let report = Report {
            id: c.id,
            at_ms: now,
            millis,
            applied,
            forget: erasure,
        };
        // The recorder outlives every loop, so the channel is open.
        let _ = self
            .records
            .send(Record {
                report,
                writeback,
                requeued,
            })
            .await;
    }

    /// One line per change of the connector's state (not one per delivery).
    fn log(&self, rt: &ConnectorRuntime, changes: &[Change]) {
        let name = &rt.name;
        for change in changes {
            match change {
                Change::Parked(f) => {
                    let detail = redact::emails(&f.detail);
                    tracing::error!(connector = %name, reason = %f.reason, %detail,
                        "connector parked: nothing gets through until this is fixed; its queue is kept and probed on a growing schedule (`oie connectors status`, `oie connectors resume {name}`)");
                }
                Change::Resumed { parked_for_ms } => {
                    let parked_for = humantime::format_duration(Duration::from_millis(
                        (*parked_for_ms).max(0) as u64 / 1000 * 1000,
                    ));
                    tracing::info!(connector = %name, %parked_for, "connector resumed: the probe got through");
                }
                Change::Opened => tracing::warn!(connector = %name,
                    "circuit opened: most recent requests failed; queued deliveries wait, one probe at a time"),
                Change::Closed => {
                    tracing::info!(connector = %name, "circuit closed: the endpoint answers again")
                }
                Change::Throttled { until } => {
                    let wait = Duration::from_millis((until - self.now()).max(0) as u64);
                    tracing::info!(connector = %name, wait = ?wait, "the destination asked to slow down: holding the connector")
                }
            }
        }
    }

    /// Copies the vendor limits the connector last saw into the metrics.
    pub(super) fn export_vendor(&self, rt: &ConnectorRuntime) {
        for (name, value) in rt.connector.gauges() {
            self.metrics
                .vendor
                .with_label_values(&[&rt.name, name])
                .set(value as i64);
        }
    }
}

fn to_delivery(c: &Claimed) -> Delivery {
    Delivery {
        key: c.key.clone(),
        visitor_id: c.visitor_id.clone(),
        payload: c.payload.clone(),
        attempt: c.attempts + 1,
    }
}

/// The `crm_sync_state` update for a CRM connector's final outcome (none while retrying).
fn writeback(
    rt: &ConnectorRuntime,
    c: &Claimed,
    applied: &Applied,
    now: i64,
    owner_email: Option<String>,
) -> Option<SyncRecord> {
    let result = match applied {
        Applied::Delivered { record_id } => Ok(record_id.clone()),
        Applied::Dead { error, .. } => Err(error.clone()),
        Applied::Retry { .. } | Applied::Held { .. } | Applied::Released | Applied::Erased => {
            return None
        }
    };
    Some(SyncRecord {
        delivery_id: c.key.clone(),
        visitor_id: c.visitor_id.clone(),
        connector: rt.name.clone(),
        at_ms: now,
        result,
        owner_email,
    })
}
