use std::sync::{Arc, Mutex};
use std::time::Duration;

use oie_connectors::Connector;
use tokio::sync::{mpsc, Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::breaker;
use super::health::{Gate, Health, Pick};
use super::pacer::Pacer;
use super::retry::Mode;
use super::send::Unit;
use super::state::Published;
use super::{Record, RetryPolicy};
use crate::clock::Clock;
use crate::config::{ConnectorDelivery, DeliveryConfig};
use crate::metrics::Metrics;
use crate::outbox::{Applied, Claimed, Outbox, ProbeFrom, Report};

/// The longest a loop sleeps before looking at the queue again (replays and resume requests
/// from the CLI, and retries that came due, are found this way).
const IDLE_POLL: Duration = Duration::from_millis(500);

/// A step claims this many rounds of requests (every slot busy once) at a time, up to
/// [`CLAIM_AHEAD_MAX`] deliveries beyond one round: one claim per delivery would make the
/// outbox, not the destination, the bottleneck, and work in hand keeps the slots busy while a
/// source's hand-over holds the outbox.
const CLAIM_ROUNDS: usize = 16;
const CLAIM_AHEAD_MAX: usize = 512;

/// A claim made while the previous one is still being sent.
type Ahead = tokio::task::JoinHandle<anyhow::Result<Vec<Claimed>>>;

/// One connector and everything that paces and guards it.
pub struct ConnectorRuntime {
    pub name: String,
    pub connector: Arc<dyn Connector>,
    pub(super) policy: RetryPolicy,
    pub(super) batch: usize,
    pub(super) concurrency: usize,
    pub(super) slots: Arc<Semaphore>,
    pub(super) pacer: Option<Pacer>,
    health: Mutex<Health>,
    /// A whole `send` may take this long before its deliveries count as timed out.
    pub(super) deadline: Duration,
    /// Wakes the loop: new work, a state change, or a delivery queued again.
    pub(super) wake: Arc<Notify>,
    pub(super) published: Mutex<Option<Published>>,
    /// Whether its kind sends digests: grouped deliveries go out as one message.
    pub(super) digests: bool,
    /// A CRM whose records' owners are read after each delivery, for Slack connectors that
    /// send to owners.
    pub(super) reads_owners: bool,
}

impl ConnectorRuntime {
    /// The runtime of a configured connector; a CRM reads its records' owners when
    /// `owners_wanted` (some connector sends to owners).
    pub fn of(
        handle: &crate::config::ConnectorHandle,
        defaults: &DeliveryConfig,
        owners_wanted: bool,
    ) -> ConnectorRuntime {
        let mut rt = ConnectorRuntime::new(
            &handle.name,
            handle.connector.clone(),
            &handle.delivery,
            defaults,
        );
        rt.digests = handle.digests;
        rt.reads_owners = owners_wanted && handle.connector.is_crm();
        rt
    }

    /// A runtime for `connector`, which sends no digests.
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
        // Token, call and follow-up call (HubSpot's notes) each within the vendor timeout.
        let deadline = connector.timeout() * 3 + Duration::from_secs(10);
        let settings = breaker::Settings {
            failure_rate: d.breaker_failure_rate,
            min_requests: d.breaker_min_requests,
            max_cooldown: d.breaker_cooldown,
            // The send's own deadline answers first; this only guards against a lost probe.
            probe_timeout: deadline + Duration::from_secs(1),
        };
        ConnectorRuntime {
            name: name.to_string(),
            connector,
            policy,
            batch,
            concurrency,
            slots: Arc::new(Semaphore::new(concurrency)),
            pacer: rate.map(Pacer::new),
            health: Mutex::new(Health::new(settings)),
            deadline,
            wake: Arc::new(Notify::new()),
            published: Mutex::new(None),
            digests: false,
            reads_owners: false,
        }
    }

    /// New work may be due.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    pub(super) fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        // Plain data; a panic elsewhere cannot leave it inconsistent.
        self.health.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Everything the loops share.
#[derive(Clone)]
pub struct Dispatcher {
    pub outbox: Arc<Outbox>,
    pub metrics: Arc<Metrics>,
    pub records: mpsc::Sender<Record>,
    pub tasks: TaskTracker,
    pub stop: CancellationToken,
    pub clock: Clock,
}

impl Dispatcher {
    pub(super) fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Runs one connector's loop until `stop`; sends in flight are tracked by `tasks`.
    pub async fn run(self, rt: Arc<ConnectorRuntime>) {
        let mut chores = super::state::Chores::default();
        let mut ahead: Option<Ahead> = None;
        while !self.stop.is_cancelled() {
            self.chores(&rt, &mut chores).await;
            let gate = rt.health().gate(self.now());
            self.publish(&rt).await;
            if !matches!(gate, Gate::Go) {
                if let Some(a) = ahead.take() {
                    self.give_back(&rt, a).await;
                }
            }
            let busy = match gate {
                Gate::Go => {
                    let (busy, next) = self.step(&rt, ahead.take()).await;
                    ahead = next;
                    busy
                }
                Gate::Probe(pick) => {
                    let sent = self.probe(&rt, pick).await;
                    if !sent {
                        rt.health().probe_unsent(self.now());
                    }
                    sent
                }
                Gate::Wait(until) => {
                    self.pause(&rt, Some(until)).await;
                    continue;
                }
            };
            if !busy {
                let next = self.next_due(&rt).await;
                self.pause(&rt, next).await;
            }
        }
        if let Some(a) = ahead {
            self.give_back(&rt, a).await;
        }
    }

    /// Claims a few rounds of work and sends it as slots free up; false when nothing was due.
    /// Once half of it is sent, the next claim is made beside the sending (and returned), so
    /// the slots stay busy while a source's hand-over holds the outbox. `ahead` is the claim
    /// the previous step made. What a hold (a failure of what was already sent) or shutdown
    /// stops is released, unspent.
    async fn step(
        &self,
        rt: &Arc<ConnectorRuntime>,
        ahead: Option<Ahead>,
    ) -> (bool, Option<Ahead>) {
        let round = rt.batch * rt.concurrency;
        let limit = round.max((round * CLAIM_ROUNDS).min(CLAIM_AHEAD_MAX));
        // Whole batches only: a claim that ends in a part-batch would cost an extra request.
        let limit = limit - limit % rt.batch;
        let claimed = match ahead {
            Some(a) => self.claimed(rt, a).await,
            None => self.claimed(rt, self.claim_task(rt, limit)).await,
        };
        if claimed.is_empty() {
            return (false, None);
        }
        let units = self.units(rt, claimed).await;
        let total = units.len();
        let mut next = None;
        let mut units = units.into_iter().enumerate();
        while let Some((sent, unit)) = units.next() {
            if next.is_none() && total >= 2 && total - sent <= total / 2 {
                next = Some(self.claim_task(rt, limit));
            }
            let permit = self.slot(rt).await;
            let open = rt.health().open(self.now());
            let paced = permit.is_some() && open && self.pace(rt).await;
            let Some(permit) = permit.filter(|_| paced) else {
                self.release(rt, unit.members()).await;
                for (_, rest) in units.by_ref() {
                    self.release(rt, rest.members()).await;
                }
                if let Some(a) = next.take() {
                    self.give_back(rt, a).await;
                }
                break;
            };
            let (this, rt) = (self.clone(), rt.clone());
            self.tasks
                .spawn(async move { this.send(&rt, unit, Mode::Normal, permit).await });
        }
        (true, next)
    }

    /// Sends the one request a held connector is allowed; false when nothing was due.
    async fn probe(&self, rt: &Arc<ConnectorRuntime>, pick: Pick) -> bool {
        let Some(permit) = self.slot(rt).await else {
            return true;
        };
        let from = match pick {
            Pick::Oldest => ProbeFrom::Oldest,
            Pick::After(id) => ProbeFrom::After(id),
        };
        let (name, now) = (rt.name.clone(), self.now());
        let claimed = self
            .on_outbox(move |o| o.claim_probe(&name, from, now))
            .await;
        let c = match claimed {
            Ok(Some(c)) => c,
            Ok(None) => return false,
            Err(e) => {
                tracing::error!(connector = %rt.name, error = %e, "cannot claim a probe");
                return false;
            }
        };
        rt.health().probed(pick, c.id);
        tracing::debug!(connector = %rt.name, delivery = c.id, "probing");
        // A digest member goes with its group: still one request.
        let unit = self.units(rt, vec![c]).await.remove(0);
        if !self.pace(rt).await {
            self.release(rt, unit.members()).await;
            return true;
        }
        let (this, rt) = (self.clone(), rt.clone());
        self.tasks
            .spawn(async move { this.send(&rt, unit, Mode::Probe, permit).await });
        true
    }

    /// Splits claimed deliveries into requests: batches of single deliveries, and one digest per
    /// group (completed with the group's members that were not due yet).
    async fn units(&self, rt: &ConnectorRuntime, claimed: Vec<Claimed>) -> Vec<Unit> {
        let digests = rt.digests;
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
            let (name, now) = (rt.name.clone(), self.now());
            match self
                .on_outbox(move |o| o.claim_group(&name, &key, now))
                .await
            {
                Ok(rest) => members.extend(rest),
                Err(e) => {
                    tracing::error!(connector = %rt.name, error = %e, "cannot claim the rest of a digest")
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

    /// Waits for the rate limit; false when stopping.
    async fn pace(&self, rt: &ConnectorRuntime) -> bool {
        let Some(pacer) = &rt.pacer else {
            return !self.stop.is_cancelled();
        };
        tokio::select! {
            _ = pacer.ready() => true,
            _ = self.stop.cancelled() => false,
        }
    }

    fn claim_task(&self, rt: &ConnectorRuntime, limit: usize) -> Ahead {
        let (outbox, name, now) = (self.outbox.clone(), rt.name.clone(), self.now());
        tokio::task::spawn_blocking(move || outbox.claim(&name, limit, now))
    }

    async fn claimed(&self, rt: &ConnectorRuntime, claim: Ahead) -> Vec<Claimed> {
        let claimed = claim.await.map_err(anyhow::Error::from).and_then(|r| r);
        claimed.unwrap_or_else(|e| {
            tracing::error!(connector = %rt.name, error = %e, "cannot claim deliveries");
            Vec::new()
        })
    }

    /// Puts a claim made ahead back in the queue, unsent.
    async fn give_back(&self, rt: &ConnectorRuntime, ahead: Ahead) {
        let claimed = self.claimed(rt, ahead).await;
        self.release(rt, claimed).await;
    }

    /// Runs `f` on the outbox on a blocking thread (SQLite blocks); a panic there is an error
    /// like the others.
    pub(super) async fn on_outbox<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Outbox) -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let outbox = self.outbox.clone();
        tokio::task::spawn_blocking(move || f(&outbox)).await?
    }

    async fn next_due(&self, rt: &ConnectorRuntime) -> Option<i64> {
        let name = rt.name.clone();
        self.on_outbox(move |o| o.next_due(&name))
            .await
            .ok()
            .flatten()
    }

    /// Sleeps until `until` (ms) at most `IDLE_POLL`, or until woken or stopped.
    async fn pause(&self, rt: &ConnectorRuntime, until: Option<i64>) {
        let wait = until
            .map(|t| Duration::from_millis(t.saturating_sub(self.now()).max(0) as u64))
            .unwrap_or(IDLE_POLL)
            .min(IDLE_POLL);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = rt.wake.notified() => {}
            _ = self.stop.cancelled() => {}
        }
    }

    /// Puts deliveries that were claimed but not sent back in the queue as they were.
    pub(super) async fn release(&self, rt: &ConnectorRuntime, chunk: Vec<Claimed>) {
        for c in chunk {
            let report = Report {
                id: c.id,
                at_ms: self.now(),
                millis: 0,
                applied: Applied::Released,
                forget: false,
            };
            // The recorder outlives every loop, so the channel is open.
            let _ = self
                .records
                .send(Record {
                    report,
                    writeback: None,
                    requeued: Some(rt.wake.clone()),
                })
                .await;
        }
    }
}
