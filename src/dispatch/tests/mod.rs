//! The dispatcher, recorder, outbox and writeback on paused time: a scripted connector answers,
//! virtual time runs hours in milliseconds, and assertions are exact.
//!
//! - `pacing`: writeback, rate limit, concurrency, deadlines.
//! - `breaker`: the failure rate, cool-downs, probes, flaky endpoints.
//! - `held`: parks, throttles, long outages, `max_age`, resume requests, superseded syncs.

mod breaker;
mod held;
mod pacing;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use oie_connectors::{Connector, Delivery, Failure, Outcome, Reason, RenderContext, RenderError};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{run_recorder, ConnectorRuntime, Dispatcher};
use crate::clock::Clock;
use crate::config::{ConnectorDelivery, DeliveryConfig};
use crate::metrics::Metrics;
use crate::outbox::{HandOver, NewDelivery, Outbox};
use crate::store::{LeadStore, SqliteStore};

/// What a scripted connector is told about a request, to decide its answer.
pub struct Ask<'a> {
    pub delivery: &'a Delivery,
    /// How many requests carried this delivery before (0 for the first).
    pub nth: u32,
    /// Virtual milliseconds since the test started.
    pub at: i64,
}

type Script = dyn Fn(Ask) -> Outcome + Send + Sync;

/// One request the connector received.
#[derive(Debug, Clone)]
pub struct Call {
    pub at: i64,
    pub visitors: Vec<String>,
}

/// A connector whose every answer the test writes.
pub struct Scripted {
    script: Box<Script>,
    start: tokio::time::Instant,
    calls: Mutex<Vec<Call>>,
    seen: Mutex<HashMap<String, u32>>,
    in_flight: AtomicUsize,
    pub most_in_flight: AtomicUsize,
    delay: Duration,
    batch: usize,
    crm: bool,
    /// What `record_owners` answers for the ids asked (`None`: it never answers).
    owners: Option<Box<Owners>>,
    owner_reads: Mutex<Vec<Vec<String>>>,
}

type Owners = dyn Fn(&str) -> Option<Option<String>> + Send + Sync;

impl Scripted {
    pub fn new(script: impl Fn(Ask) -> Outcome + Send + Sync + 'static) -> Scripted {
        Scripted {
            script: Box::new(script),
            start: tokio::time::Instant::now(),
            calls: Mutex::default(),
            seen: Mutex::default(),
            in_flight: AtomicUsize::new(0),
            most_in_flight: AtomicUsize::new(0),
            delay: Duration::ZERO,
            batch: 1,
            crm: false,
            owners: None,
            owner_reads: Mutex::default(),
        }
    }

    /// `record_owners` answers each id with `owner(id)` (left out when `None`); an id
    /// containing "hang" makes the read never answer.
    pub fn owners(
        mut self,
        owner: impl Fn(&str) -> Option<Option<String>> + Send + Sync + 'static,
    ) -> Scripted {
        self.owners = Some(Box::new(owner));
        self
    }

    /// The ids of each `record_owners` call.
    pub fn owner_reads(&self) -> Vec<Vec<String>> {
        self.owner_reads.lock().unwrap().clone()
    }

    /// Every request takes this long.
    pub fn taking(mut self, delay: Duration) -> Scripted {
        self.delay = delay;
        self
    }

    /// A CRM taking `batch` records per request.
    pub fn crm(mut self, batch: usize) -> Scripted {
        self.crm = true;
        self.batch = batch;
        self
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    pub fn call_times(&self) -> Vec<i64> {
        self.calls().iter().map(|c| c.at).collect()
    }

    /// Requests that carried `visitor`.
    pub fn requests_for(&self, visitor: &str) -> usize {
        self.seen.lock().unwrap().get(visitor).copied().unwrap_or(0) as usize
    }
}

pub fn delivered() -> Outcome {
    Outcome::Delivered { record_id: None }
}

pub fn failed(reason: Reason) -> Outcome {
    Outcome::failed(reason, format!("scripted {reason}"))
}

pub fn failed_after(reason: Reason, secs: u64) -> Outcome {
    Outcome::Failed(
        Failure::new(reason, format!("scripted {reason}")).after(Some(Duration::from_secs(secs))),
    )
}

#[async_trait]
impl Connector for Scripted {
    fn kind(&self) -> &'static str {
        "scripted"
    }
    fn is_crm(&self) -> bool {
        self.crm
    }
    fn max_batch(&self) -> usize {
        self.batch
    }
    fn timeout(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn render(&self, context: &RenderContext) -> Result<String, RenderError> {
        Ok(context.data().to_string())
    }
    async fn record_owners(
        &self,
        records: &[String],
    ) -> Result<HashMap<String, Option<String>>, Failure> {
        self.owner_reads.lock().unwrap().push(records.to_vec());
        let Some(owner) = &self.owners else {
            return Ok(HashMap::new());
        };
        if records.iter().any(|r| r.contains("hang")) {
            std::future::pending::<()>().await;
        }
        Ok(records
            .iter()
            .filter_map(|r| Some((r.clone(), owner(r)?)))
            .collect())
    }
    async fn send(&self, batch: &[Delivery]) -> Vec<Outcome> {
        let at = self.start.elapsed().as_millis() as i64;
        self.calls.lock().unwrap().push(Call {
            at,
            visitors: batch.iter().map(|d| d.visitor_id.clone()).collect(),
        });
        let now = self.in_flight.fetch_add(1, SeqCst) + 1;
        self.most_in_flight.fetch_max(now, SeqCst);
        tokio::time::sleep(self.delay).await;
        self.in_flight.fetch_sub(1, SeqCst);
        batch
            .iter()
            .map(|d| {
                let nth = {
                    let mut seen = self.seen.lock().unwrap();
                    let n = seen.entry(d.visitor_id.clone()).or_default();
                    *n += 1;
                    *n - 1
                };
                (self.script)(Ask {
                    delivery: d,
                    nth,
                    at,
                })
            })
            .collect()
    }
}

/// A delivery of visitor `v` to the connector "crm".
pub fn delivery(v: &str) -> NewDelivery {
    NewDelivery {
        key: format!("k-{v}"),
        route: "route".into(),
        connector: "crm".into(),
        visitor_id: v.into(),
        trigger_kind: "sync".into(),
        payload: Ok("{}".into()),
        context: "{}".into(),
        delay_ms: 0,
        group_key: None,
        supersedes: false,
        origin_ms: None,
    }
}

pub fn visitors(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("v{i}")).collect()
}

/// The real dispatcher and recorder for one connector named "crm", on the paused clock.
pub struct Harness {
    pub store: Arc<SqliteStore>,
    pub outbox: Arc<Outbox>,
    pub metrics: Arc<Metrics>,
    pub rt: Arc<ConnectorRuntime>,
    pub clock: Clock,
    dispatcher: Dispatcher,
    stop: CancellationToken,
    worker: JoinHandle<()>,
    recorder: JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Harness {
    /// `settings` are the connector's delivery keys; retries back off from 1 s by default
    /// (`[delivery]` keys in `defaults` change that).
    pub async fn start(connector: Arc<dyn Connector>, settings: &str, defaults: &str) -> Harness {
        Self::start_with(connector, settings, defaults, false).await
    }

    /// As [`Harness::start`], reading the owners of delivered records when `reads_owners`.
    pub async fn start_with(
        connector: Arc<dyn Connector>,
        settings: &str,
        defaults: &str,
        reads_owners: bool,
    ) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(&dir.path().join("oie.db")).unwrap());
        let outbox = Arc::new(Outbox::open(&dir.path().join("outbox.db")).unwrap());
        let delivery: ConnectorDelivery = toml::from_str(settings).unwrap();
        let defaults: DeliveryConfig = toml::from_str(defaults).unwrap();
        let mut rt = ConnectorRuntime::new("crm", connector, &delivery, &defaults);
        rt.reads_owners = reads_owners;
        let rt = Arc::new(rt);
        let (tx, rx) = mpsc::channel(64);
        let writeback: Arc<dyn LeadStore> = store.clone();
        let recorder = tokio::spawn(run_recorder(rx, outbox.clone(), writeback));
        let stop = CancellationToken::new();
        let metrics = Arc::new(Metrics::new());
        let clock = Clock::tokio();
        let dispatcher = Dispatcher {
            outbox: outbox.clone(),
            metrics: metrics.clone(),
            records: tx,
            tasks: TaskTracker::new(),
            stop: stop.clone(),
            clock,
        };
        let worker = tokio::spawn(dispatcher.clone().run(rt.clone()));
        Harness {
            store,
            outbox,
            metrics,
            rt,
            clock,
            dispatcher,
            stop,
            worker,
            recorder,
            _dir: dir,
        }
    }

    /// Queues deliveries now and wakes the loop.
    pub fn queue(&self, deliveries: Vec<NewDelivery>) -> usize {
        let handover = HandOver {
            deliveries,
            ..HandOver::default()
        };
        let committed = self
            .outbox
            .hand_over(&handover, self.clock.now_ms())
            .unwrap();
        self.rt.wake();
        committed.added
    }

    pub fn queue_visitors(&self, visitors: &[String]) {
        let n = self.queue(visitors.iter().map(|v| delivery(v)).collect());
        assert_eq!(n, visitors.len());
    }

    /// Lets virtual time run for `d`.
    pub async fn run_for(&self, d: Duration) {
        tokio::time::sleep(d).await;
    }

    /// Lets virtual time run until `done` holds, for at most `limit`; returns the virtual time
    /// it took, to a ten-thousandth of `limit` (at least 10 ms).
    pub async fn until(&self, limit: Duration, done: impl Fn(&Harness) -> bool) -> Duration {
        let start = tokio::time::Instant::now();
        let step = (limit / 10_000).max(Duration::from_millis(10));
        while !done(self) {
            assert!(start.elapsed() < limit, "not done within {limit:?}");
            tokio::time::sleep(step).await;
        }
        start.elapsed()
    }

    pub fn count(&self, state: &str) -> i64 {
        self.outbox
            .depth()
            .unwrap()
            .iter()
            .filter(|d| d.state == state)
            .map(|d| d.count)
            .sum()
    }

    pub fn state(&self) -> String {
        self.outbox
            .connector_states()
            .unwrap()
            .get("crm")
            .map(|s| s.state.clone())
            .unwrap_or_default()
    }

    /// `oie_deliveries_total{outcome, reason}` for the connector.
    pub fn counted(&self, outcome: &str, reason: &str) -> u64 {
        self.metrics
            .deliveries
            .with_label_values(&["route", "crm", outcome, reason])
            .get()
    }

    /// (attempts, tries) of visitor `v`'s delivery.
    pub fn spent(&self, v: &str) -> (u32, u32) {
        self.outbox.attempts_of(&format!("k-{v}")).unwrap()
    }

    /// Stops the loop, waits for sends in flight and for the recorder to drain.
    pub async fn stop(self) -> Stopped {
        self.stop.cancel();
        self.worker.await.unwrap();
        self.dispatcher.tasks.close();
        self.dispatcher.tasks.wait().await;
        drop(self.dispatcher);
        self.recorder.await.unwrap();
        Stopped {
            store: self.store,
            outbox: self.outbox,
            _dir: self._dir,
        }
    }
}

/// What a stopped harness leaves to look at.
pub struct Stopped {
    pub store: Arc<SqliteStore>,
    pub outbox: Arc<Outbox>,
    _dir: tempfile::TempDir,
}
