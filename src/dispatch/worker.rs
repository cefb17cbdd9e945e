use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use oie_connectors::{Connector, Delivery, Outcome};
use tokio::sync::{mpsc, Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{Breaker, Permit, Record, RetryPolicy};
use crate::clock::now_ms;
use crate::config::{ConnectorDelivery, DeliveryConfig};
use crate::metrics::Metrics;
use crate::outbox::{Applied, Claimed, Outbox, Report};
use crate::redact;
use crate::store::SyncRecord;

/// The longest a loop sleeps before looking at the queue again (replays from the CLI and
/// retries that came due are found this way).
const IDLE_POLL: Duration = Duration::from_millis(500);

/// One connector and everything that paces it.
pub struct ConnectorRuntime {
    pub name: String,
    pub connector: Arc<dyn Connector>,
    policy: RetryPolicy,
    batch: usize,
    slots: Arc<Semaphore>,
    limiter: Option<DefaultDirectRateLimiter>,
    breaker: Mutex<Breaker>,
    wake: Notify,
    disabled: AtomicBool,
}

impl ConnectorRuntime {
    pub fn new(
        name: &str,
        connector: Arc<dyn Connector>,
        d: &ConnectorDelivery,
        defaults: &DeliveryConfig,
    ) -> ConnectorRuntime {
        let policy = RetryPolicy {
            max_attempts: d.max_attempts.unwrap_or(defaults.max_attempts),
            max_age: d.max_age.unwrap_or(defaults.max_age),
            base: defaults.backoff_base,
            cap: defaults.backoff_max,
        };
        let batch = d.batch_size.unwrap_or(connector.max_batch()).max(1);
        let concurrency = d
            .concurrency
            .unwrap_or(connector.default_concurrency())
            .max(1);
        let rate = d.rate_limit.or(connector.default_rate_limit());
        ConnectorRuntime {
            name: name.to_string(),
            connector,
            policy,
            batch,
            slots: Arc::new(Semaphore::new(concurrency)),
            limiter: rate.map(limiter),
            breaker: Mutex::new(Breaker::new(d.breaker_threshold, d.breaker_cooldown)),
            wake: Notify::new(),
            disabled: AtomicBool::new(false),
        }
    }

    /// New work may be due.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    fn breaker(&self) -> std::sync::MutexGuard<'_, Breaker> {
        // The breaker holds plain data; a panic elsewhere cannot leave it inconsistent.
        self.breaker.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// `rate` requests per second, evenly spaced (no bursts): vendors such as Slack count per
/// second per channel, so a burst would meet their limit even when the average does not.
fn limiter(rate: f64) -> DefaultDirectRateLimiter {
    let period = Duration::from_secs_f64(1.0 / rate);
    // Config checks make `rate` positive and finite, so the period is non-zero.
    let quota = Quota::with_period(period)
        .expect("positive rate")
        .allow_burst(NonZeroU32::MIN);
    RateLimiter::direct(quota)
}

/// Everything the loops share.
#[derive(Clone)]
pub struct Dispatcher {
    pub outbox: Arc<Outbox>,
    pub metrics: Arc<Metrics>,
    pub records: mpsc::Sender<Record>,
    pub tasks: TaskTracker,
    pub stop: CancellationToken,
}

impl Dispatcher {
    /// Runs one connector's loop until `stop`; sends in flight are tracked by `tasks`.
    pub async fn run(self, rt: Arc<ConnectorRuntime>) {
        let gauge = self.metrics.circuit.with_label_values(&[&rt.name]);
        while !self.stop.is_cancelled() {
            if rt.disabled.load(Ordering::Relaxed) {
                self.stop.cancelled().await;
                break;
            }
            if let Some(until) = rt.connector.parked_until() {
                // A used-up daily allocation: claim nothing until the connector's next probe.
                self.export_vendor(&rt);
                let left = until.saturating_duration_since(Instant::now());
                self.pause(&rt, Some(now_ms() + left.as_millis() as i64))
                    .await;
                continue;
            }
            let permit = rt.breaker().permit(now_ms());
            gauge.set(rt.breaker().gauge());
            let limit = match permit {
                Permit::Go => rt.batch,
                Permit::Probe => 1,
                Permit::Wait(until) => {
                    self.pause(&rt, until).await;
                    continue;
                }
            };
            if !self.step(&rt, limit, permit == Permit::Probe).await {
                if permit == Permit::Probe {
                    rt.breaker().probe_released(now_ms());
                }
                let next = self.next_due(&rt).await;
                self.pause(&rt, next).await;
            }
        }
    }

    /// Copies the vendor limits the connector last saw into the metrics.
    fn export_vendor(&self, rt: &ConnectorRuntime) {
        let parked = rt.connector.parked_until().is_some();
        self.metrics
            .vendor
            .with_label_values(&[&rt.name, "parked"])
            .set(i64::from(parked));
        for (name, value) in rt.connector.gauges() {
            self.metrics
                .vendor
                .with_label_values(&[&rt.name, name])
                .set(value as i64);
        }
    }

    /// Claims and starts sending; false when nothing was due.
    async fn step(&self, rt: &Arc<ConnectorRuntime>, limit: usize, probe: bool) -> bool {
        let Some(first) = self.slot(rt).await else {
            return true;
        };
        let extra = if probe {
            0
        } else {
            rt.slots.available_permits()
        };
        let claimed = self.claim(rt, limit * (1 + extra)).await;
        if claimed.is_empty() {
            return false;
        }
        let units = self.units(rt, claimed).await;
        let mut slot = Some(first);
        for unit in units {
            let permit = match slot.take() {
                Some(p) => p,
                None => match rt.slots.clone().try_acquire_owned() {
                    Ok(p) => p,
                    Err(_) => {
                        self.release(unit.members()).await;
                        continue;
                    }
                },
            };
            // Failures of the units already sent may have opened the circuit meanwhile.
            let closed = probe || rt.breaker().state() == super::BreakerState::Closed;
            if !closed || !self.pace(rt).await {
                self.release(unit.members()).await;
                continue;
            }
            let (this, rt) = (self.clone(), rt.clone());
            self.tasks
                .spawn(async move { this.send(&rt, unit, permit).await });
        }
        true
    }

    /// Splits claimed deliveries into requests: batches of single deliveries, and one digest per
    /// group (completed with the group's members that were not due yet).
    async fn units(&self, rt: &ConnectorRuntime, claimed: Vec<Claimed>) -> Vec<Unit> {
        let digests = rt.connector.supports_digest();
        let (grouped, single): (Vec<Claimed>, Vec<Claimed>) = claimed
            .into_iter()
            .partition(|c| digests && c.group_key.is_some());
        let mut units: Vec<Unit> = single
            .chunks(rt.batch)
            .map(|c| Unit::Batch(c.to_vec()))
            .collect();
        let mut groups: std::collections::BTreeMap<String, Vec<Claimed>> = Default::default();
        for c in grouped {
            // Partitioned on `group_key.is_some()` above.
            let key = c.group_key.clone().expect("grouped deliveries have a key");
            groups.entry(key).or_default().push(c);
        }
        for (key, mut members) in groups {
            let (outbox, name) = (self.outbox.clone(), rt.name.clone());
            let rest =
                tokio::task::spawn_blocking(move || outbox.claim_group(&name, &key, now_ms()))
                    .await;
            match rest {
                Ok(Ok(rest)) => members.extend(rest),
                Ok(Err(e)) => {
                    tracing::error!(connector = %rt.name, error = %e, "cannot claim the rest of a digest")
                }
                Err(e) => {
                    tracing::error!(connector = %rt.name, error = %e, "digest claim task failed")
                }
            }
            members.sort_by_key(|m| m.id);
            units.push(Unit::Digest(members));
        }
        units
    }

    async fn slot(&self, rt: &ConnectorRuntime) -> Option<OwnedSemaphorePermit> {
        tokio::select! {
            permit = rt.slots.clone().acquire_owned() => permit.ok(),
            _ = self.stop.cancelled() => None,
        }
    }

    /// Waits for the rate limiter; false when stopping.
    async fn pace(&self, rt: &ConnectorRuntime) -> bool {
        let Some(limiter) = &rt.limiter else {
            return !self.stop.is_cancelled();
        };
        tokio::select! {
            _ = limiter.until_ready() => true,
            _ = self.stop.cancelled() => false,
        }
    }

    async fn claim(&self, rt: &ConnectorRuntime, limit: usize) -> Vec<Claimed> {
        let (outbox, name) = (self.outbox.clone(), rt.name.clone());
        let claimed =
            tokio::task::spawn_blocking(move || outbox.claim(&name, limit, now_ms())).await;
        match claimed {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                tracing::error!(connector = %rt.name, error = %e, "cannot claim deliveries");
                Vec::new()
            }
            Err(e) => {
                tracing::error!(connector = %rt.name, error = %e, "claim task failed");
                Vec::new()
            }
        }
    }

    async fn next_due(&self, rt: &ConnectorRuntime) -> Option<i64> {
        let (outbox, name) = (self.outbox.clone(), rt.name.clone());
        tokio::task::spawn_blocking(move || outbox.next_due(&name))
            .await
            .ok()
            .and_then(Result::ok)
            .flatten()
    }

    /// Sleeps until `until` (ms) at most `IDLE_POLL`, or until woken or stopped.
    async fn pause(&self, rt: &ConnectorRuntime, until: Option<i64>) {
        let wait = until
            .map(|t| Duration::from_millis(t.saturating_sub(now_ms()).max(0) as u64))
            .unwrap_or(IDLE_POLL)
            .min(IDLE_POLL);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = rt.wake.notified() => {}
            _ = self.stop.cancelled() => {}
        }
    }

    async fn release(&self, chunk: Vec<Claimed>) {
        for c in chunk {
            let report = Report {
                id: c.id,
                at_ms: now_ms(),
                millis: 0,
                outcome: "released",
                applied: Applied::Released,
            };
            // The recorder outlives every loop, so the channel is open.
            let _ = self
                .records
                .send(Record {
                    report,
                    writeback: None,
                })
                .await;
        }
    }

    async fn send(&self, rt: &ConnectorRuntime, unit: Unit, _permit: OwnedSemaphorePermit) {
        let started = Instant::now();
        let (members, outcomes) = match unit {
            Unit::Batch(chunk) => {
                let batch: Vec<Delivery> = chunk.iter().map(to_delivery).collect();
                let mut outcomes = rt.connector.send(&batch).await;
                outcomes.resize(
                    chunk.len(),
                    Outcome::retry("connector returned fewer outcomes than deliveries"),
                );
                (chunk, outcomes)
            }
            Unit::Digest(members) => {
                let outcome = self.send_digest(rt, &members).await;
                let outcomes = vec![outcome; members.len()];
                (members, outcomes)
            }
        };
        let elapsed = started.elapsed();
        self.export_vendor(rt);
        self.metrics
            .attempt_seconds
            .with_label_values(&[&rt.name])
            .observe(elapsed.as_secs_f64());
        for (claimed, outcome) in members.iter().zip(outcomes) {
            self.settle(rt, claimed, &outcome, elapsed).await;
        }
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
            Err(e) => return Outcome::permanent(format!("render: {e}")),
        };
        let first = &members[0];
        let digest = Delivery {
            key: format!("digest_{}", first.key),
            visitor_id: first.visitor_id.clone(),
            payload,
            attempt: members.iter().map(|m| m.attempts).max().unwrap_or(0) + 1,
        };
        tracing::debug!(connector = %rt.name, leads = members.len(), "sending a digest");
        let mut outcomes = rt.connector.send(std::slice::from_ref(&digest)).await;
        outcomes
            .pop()
            .unwrap_or_else(|| Outcome::retry("connector returned no outcome"))
    }

    /// Applies the retry policy, updates breaker and metrics, and records the result.
    async fn settle(
        &self,
        rt: &ConnectorRuntime,
        c: &Claimed,
        outcome: &Outcome,
        elapsed: Duration,
    ) {
        let now = now_ms();
        let applied = rt.policy.decide(
            outcome,
            c.attempts + 1,
            c.created_at,
            now,
            rand::random::<f64>(),
        );
        self.observe(rt, c, outcome, &applied, now);
        let writeback = rt
            .connector
            .is_crm()
            .then(|| writeback(rt, c, &applied, now))
            .flatten();
        let report = Report {
            id: c.id,
            at_ms: now,
            millis: elapsed.as_millis() as i64,
            outcome: outcome.label(),
            applied,
        };
        // The recorder outlives every loop, so the channel is open.
        let _ = self.records.send(Record { report, writeback }).await;
    }

    fn observe(
        &self,
        rt: &ConnectorRuntime,
        c: &Claimed,
        outcome: &Outcome,
        applied: &Applied,
        now: i64,
    ) {
        let label = match applied {
            Applied::Delivered { .. } => "delivered",
            Applied::Retry { .. } => "retry",
            Applied::Dead { .. } => "dead",
            Applied::Released => "released",
        };
        self.metrics
            .deliveries
            .with_label_values(&[&c.route, &rt.name, label])
            .inc();
        match outcome {
            // Being told to slow down (429 + Retry-After) says nothing about the endpoint's health.
            Outcome::Retry { after: Some(_), .. } => {}
            Outcome::Retry { reason, .. } => {
                if rt.breaker().failure(now) {
                    let reason = redact::emails(reason);
                    tracing::warn!(connector = %rt.name, %reason, "circuit opened after repeated failures");
                }
            }
            Outcome::Gone { reason } => {
                let reason = redact::emails(reason);
                rt.disabled.store(true, Ordering::Relaxed);
                self.metrics.disabled.with_label_values(&[&rt.name]).set(1);
                tracing::error!(connector = %rt.name, reason = %reason,
                    "destination is gone (HTTP 410): connector disabled, its queued deliveries are kept; fix the url and restart");
            }
            _ => rt.breaker().success(),
        }
        let state = rt.breaker().gauge();
        self.metrics
            .circuit
            .with_label_values(&[&rt.name])
            .set(state);
        if let Applied::Dead { error } = applied {
            let error = redact::emails(error);
            tracing::warn!(connector = %rt.name, route = %c.route, delivery = c.id, %error,
                "delivery dead-lettered; see `oie deadletters show {}`", c.id);
        }
    }
}

/// What one request carries.
enum Unit {
    /// Up to `batch_size` deliveries, each with its own payload and outcome.
    Batch(Vec<Claimed>),
    /// A group's deliveries as one digest message with one outcome.
    Digest(Vec<Claimed>),
}

impl Unit {
    fn members(self) -> Vec<Claimed> {
        match self {
            Unit::Batch(m) | Unit::Digest(m) => m,
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
) -> Option<SyncRecord> {
    let result = match applied {
        Applied::Delivered { record_id } => Ok(record_id.clone()),
        Applied::Dead { error } => Err(error.clone()),
        Applied::Retry { .. } | Applied::Released => return None,
    };
    Some(SyncRecord {
        delivery_id: c.key.clone(),
        visitor_id: c.visitor_id.clone(),
        connector: rt.name.clone(),
        at_ms: now,
        result,
    })
}
