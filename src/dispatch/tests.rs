//! The dispatcher, recorder and writeback path with a fake CRM connector.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use oie_connectors::{Connector, Delivery, Outcome, RenderContext, RenderError};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{run_recorder, ConnectorRuntime, Dispatcher};
use crate::config::{ConnectorDelivery, DeliveryConfig};
use crate::metrics::Metrics;
use crate::outbox::{HandOver, NewDelivery, Outbox};
use crate::store::{LeadStore, SqliteStore};

/// A CRM that creates `crm-<visitor>` records in batches of 3, refuses visitors whose id
/// starts with "bad", and is unavailable once for visitors starting with "flaky".
struct FakeCrm {
    calls: std::sync::Mutex<Vec<usize>>,
}

#[async_trait]
impl Connector for FakeCrm {
    fn kind(&self) -> &'static str {
        "fake_crm"
    }
    fn is_crm(&self) -> bool {
        true
    }
    fn max_batch(&self) -> usize {
        3
    }
    fn render(&self, context: &RenderContext) -> Result<String, RenderError> {
        Ok(context.data().to_string())
    }
    async fn send(&self, batch: &[Delivery]) -> Vec<Outcome> {
        self.calls.lock().unwrap().push(batch.len());
        batch
            .iter()
            .map(|d| match d.visitor_id.as_str() {
                v if v.starts_with("bad") => {
                    Outcome::permanent("VALIDATION_ERROR: email is invalid")
                }
                v if v.starts_with("flaky") && d.attempt == 1 => Outcome::retry("http_503: busy"),
                v => Outcome::Delivered {
                    record_id: Some(format!("crm-{v}")),
                },
            })
            .collect()
    }
}

fn delivery(visitor: &str) -> NewDelivery {
    NewDelivery {
        key: format!("k-{visitor}"),
        route: "sync".into(),
        connector: "crm".into(),
        visitor_id: visitor.into(),
        trigger_kind: "sync".into(),
        payload: Ok("{}".into()),
        group: None,
    }
}

#[tokio::test]
async fn crm_outcomes_are_written_back_per_lead() {
    let crm = Arc::new(FakeCrm {
        calls: Default::default(),
    });
    let names = ["good-1", "good-2", "bad-1", "flaky-1", "good-3"].map(String::from);
    let Driven { store, outbox, .. } =
        drive(crm.clone(), "", &names, Duration::from_millis(800)).await;

    for v in ["good-1", "good-2", "good-3", "flaky-1"] {
        let s = store.sync_state(v, "crm").unwrap().unwrap();
        assert!(s.synced, "{v}");
        assert_eq!(
            s.crm_contact_id.as_deref(),
            Some(format!("crm-{v}").as_str())
        );
        assert!(s.last_synced_at.is_some());
        assert_eq!(s.last_error, None);
    }
    let bad = store.sync_state("bad-1", "crm").unwrap().unwrap();
    assert!(!bad.synced, "a failure never marks a lead as synced");
    assert_eq!(bad.crm_contact_id, None);
    assert_eq!(
        bad.last_error.as_deref(),
        Some("VALIDATION_ERROR: email is invalid")
    );
    assert_eq!(outbox.dead_letters().unwrap().len(), 1);
    let calls = crm.calls.lock().unwrap().clone();
    assert_eq!(
        calls.iter().sum::<usize>(),
        6,
        "five deliveries plus one retry: {calls:?}"
    );
    assert!(
        calls.iter().all(|n| *n <= 3),
        "batches respect max_batch: {calls:?}"
    );
}

/// Always answers `outcome` after `delay`, recording when each call started and how many
/// calls were in flight at once.
struct Probe {
    outcome: Outcome,
    delay: Duration,
    started: std::sync::Mutex<Vec<std::time::Instant>>,
    in_flight: std::sync::atomic::AtomicUsize,
    most_in_flight: std::sync::atomic::AtomicUsize,
}

impl Probe {
    fn new(outcome: Outcome, delay: Duration) -> Arc<Probe> {
        Arc::new(Probe {
            outcome,
            delay,
            started: Default::default(),
            in_flight: Default::default(),
            most_in_flight: Default::default(),
        })
    }
    fn calls(&self) -> usize {
        self.started.lock().unwrap().len()
    }
}

#[async_trait]
impl Connector for Probe {
    fn kind(&self) -> &'static str {
        "probe"
    }
    fn render(&self, context: &RenderContext) -> Result<String, RenderError> {
        Ok(context.data().to_string())
    }
    async fn send(&self, batch: &[Delivery]) -> Vec<Outcome> {
        use std::sync::atomic::Ordering::SeqCst;
        self.started.lock().unwrap().push(std::time::Instant::now());
        let now = self.in_flight.fetch_add(1, SeqCst) + 1;
        self.most_in_flight.fetch_max(now, SeqCst);
        tokio::time::sleep(self.delay).await;
        self.in_flight.fetch_sub(1, SeqCst);
        vec![self.outcome.clone(); batch.len()]
    }
}

/// What a dispatcher run leaves to look at.
struct Driven {
    metrics: Arc<Metrics>,
    store: Arc<SqliteStore>,
    outbox: Arc<Outbox>,
    _dir: tempfile::TempDir,
}

/// Queues one delivery per visitor for connector "crm" and runs the real dispatcher and
/// recorder with `connector` for `run_for` (fast retries), then stops them.
async fn drive(
    connector: Arc<dyn Connector>,
    settings: &str,
    visitors: &[String],
    run_for: Duration,
) -> Driven {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("oie.db")).unwrap());
    let outbox = Arc::new(Outbox::open(&dir.path().join("outbox.db")).unwrap());
    let handover = HandOver {
        deliveries: visitors.iter().map(|v| delivery(v)).collect(),
        ..HandOver::default()
    };
    assert_eq!(
        outbox.hand_over(&handover, crate::clock::now_ms()).unwrap(),
        visitors.len()
    );
    assert_eq!(
        outbox.hand_over(&handover, crate::clock::now_ms()).unwrap(),
        0,
        "same keys: no-op"
    );
    let delivery_settings: ConnectorDelivery = toml::from_str(settings).unwrap();
    let mut defaults: DeliveryConfig = toml::from_str("max_attempts = 1000").unwrap();
    defaults.backoff_base = Duration::from_millis(5);
    defaults.backoff_max = Duration::from_millis(10);
    let rt = Arc::new(ConnectorRuntime::new(
        "crm",
        connector,
        &delivery_settings,
        &defaults,
    ));
    let (tx, rx) = mpsc::channel(64);
    let lead_store: Arc<dyn LeadStore> = store.clone();
    let recorder = tokio::spawn(run_recorder(rx, outbox.clone(), lead_store));
    let stop = CancellationToken::new();
    let metrics = Arc::new(Metrics::new());
    let dispatcher = Dispatcher {
        outbox: outbox.clone(),
        metrics: metrics.clone(),
        records: tx,
        tasks: TaskTracker::new(),
        stop: stop.clone(),
    };
    let worker = tokio::spawn(dispatcher.clone().run(rt));
    tokio::time::sleep(run_for).await;
    stop.cancel();
    worker.await.unwrap();
    dispatcher.tasks.close();
    dispatcher.tasks.wait().await;
    drop(dispatcher);
    recorder.await.unwrap();
    Driven {
        metrics,
        store,
        outbox,
        _dir: dir,
    }
}

fn visitors(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("v{i}")).collect()
}

#[tokio::test]
async fn the_circuit_opens_and_probes_one_at_a_time() {
    let probe = Probe::new(Outcome::retry("http_503: down"), Duration::ZERO);
    let metrics = drive(
        probe.clone(),
        "concurrency = 1\nbreaker_threshold = 3\nbreaker_cooldown = \"400ms\"",
        &visitors(20),
        Duration::from_millis(1000),
    )
    .await
    .metrics;
    // Without the breaker, 20 deliveries retried every few ms would make hundreds of calls.
    // With it: 3 failures open the circuit, then one probe per 400 ms cool-down.
    let calls = probe.calls();
    assert!((4..=5).contains(&calls), "{calls} calls");
    let started = probe.started.lock().unwrap().clone();
    assert!(
        started[3] - started[2] >= Duration::from_millis(390),
        "the probe waited for the cool-down"
    );
    assert_eq!(metrics.circuit.with_label_values(&["crm"]).get(), 2, "open");
}

#[tokio::test]
async fn the_rate_limit_spaces_requests() {
    let probe = Probe::new(Outcome::Delivered { record_id: None }, Duration::ZERO);
    drive(
        probe.clone(),
        "rate_limit = 10",
        &visitors(30),
        Duration::from_millis(1000),
    )
    .await;
    // One every 100 ms, evenly spaced: about 10 in the first second, never 30.
    let calls = probe.calls();
    assert!((8..=11).contains(&calls), "{calls} calls in 1 s at 10/s");
    let started = probe.started.lock().unwrap().clone();
    let gaps: Vec<Duration> = started.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        gaps.iter().all(|g| *g >= Duration::from_millis(90)),
        "no bursts: {gaps:?}"
    );
}

#[tokio::test]
async fn concurrency_is_capped() {
    let probe = Probe::new(
        Outcome::Delivered { record_id: None },
        Duration::from_millis(50),
    );
    drive(
        probe.clone(),
        "concurrency = 3",
        &visitors(30),
        Duration::from_millis(800),
    )
    .await;
    assert_eq!(
        probe
            .most_in_flight
            .load(std::sync::atomic::Ordering::SeqCst),
        3
    );
    assert_eq!(probe.calls(), 30);
}

/// A connector whose vendor parked it (a used-up daily allocation) until `until`.
struct Parked {
    until: std::time::Instant,
    sent_at: std::sync::Mutex<Vec<std::time::Instant>>,
}

#[async_trait]
impl Connector for Parked {
    fn kind(&self) -> &'static str {
        "parked"
    }
    fn render(&self, context: &RenderContext) -> Result<String, RenderError> {
        Ok(context.data().to_string())
    }
    fn parked_until(&self) -> Option<std::time::Instant> {
        (std::time::Instant::now() < self.until).then_some(self.until)
    }
    async fn send(&self, batch: &[Delivery]) -> Vec<Outcome> {
        self.sent_at.lock().unwrap().push(std::time::Instant::now());
        vec![Outcome::Delivered { record_id: None }; batch.len()]
    }
}

#[tokio::test]
async fn a_parked_connector_gets_nothing_until_the_park_ends() {
    let until = std::time::Instant::now() + Duration::from_millis(600);
    let parked = Arc::new(Parked {
        until,
        sent_at: Default::default(),
    });
    let driven = drive(
        parked.clone(),
        "",
        &visitors(5),
        Duration::from_millis(1200),
    )
    .await;
    let sent = parked.sent_at.lock().unwrap().clone();
    assert_eq!(sent.len(), 5, "everything goes once the park ends");
    assert!(
        sent.iter().all(|t| *t >= until),
        "nothing went while parked"
    );
    assert_eq!(
        driven
            .metrics
            .vendor
            .with_label_values(&["crm", "parked"])
            .get(),
        0,
        "the gauge followed the connector"
    );
}
