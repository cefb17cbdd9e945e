//! Prometheus metrics, labelled by route and connector.

use prometheus::{
    Encoder, Gauge, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use crate::outbox::Depth;

pub struct Metrics {
    registry: Registry,
    /// Attempt results after the retry policy (delivered, retry, held, dead; superseded at
    /// hand-over), with the failure's reason.
    pub deliveries: IntCounterVec,
    pub attempt_seconds: HistogramVec,
    pub enqueued: IntCounterVec,
    pub suppressed: IntCounterVec,
    pub triggers: IntCounterVec,
    pub slack_actions: IntCounterVec,
    pub outbox_depth: IntGaugeVec,
    pub dead_letters: IntGaugeVec,
    pub circuit: IntGaugeVec,
    /// 1 for each connector's current state (ok, throttled, open, half_open, parked), 0 for
    /// the others.
    pub connector_state: IntGaugeVec,
    /// Vendor limits as connectors last saw them (`daily_used`, `window_remaining`, `parked`…).
    pub vendor: IntGaugeVec,
    /// Bytes of each SQLite file (`oie.db`, `outbox.db`; `db` or `wal`).
    pub store_bytes: IntGaugeVec,
    /// Rows retention removed, by table.
    pub pruned: IntCounterVec,
    /// When the last `oie backup` finished (unix seconds; 0: never), and how long it took.
    pub backup_time: IntGauge,
    pub backup_seconds: Gauge,
    /// Ingest API requests by endpoint and status.
    pub ingest_requests: IntCounterVec,
    /// Events posted to `/track`: accepted, busy (refused for load), rejected (refused as
    /// invalid or unauthorized).
    pub ingest_events: IntCounterVec,
    /// What waits to be written: requests and bytes.
    pub ingest_queue_requests: IntGauge,
    pub ingest_queue_bytes: IntGauge,
    pub scoring_runs: IntCounterVec,
    pub scoring_seconds: prometheus::Histogram,
    pub scoring_leads: prometheus::Histogram,
    /// From the prospect's action to the delivery that told someone about it.
    pub alert_latency: HistogramVec,
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let m = Metrics {
            deliveries: counter(
                "oie_deliveries_total",
                "Delivery attempts by route, connector, result (delivered, retry, held, dead, superseded) and failure reason (transport, timeout, throttled, server_error, auth, not_found, gone, redirect, quota, invalid_item, render, superseded; empty when delivered)",
                &["route", "connector", "outcome", "reason"],
            ),
            attempt_seconds: HistogramVec::new(
                HistogramOpts::new(
                    "oie_delivery_attempt_seconds",
                    "Time one connector call took",
                )
                .buckets(vec![
                    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                ]),
                &["connector"],
            )
            .expect("valid histogram"),
            enqueued: counter(
                "oie_enqueued_total",
                "Deliveries added to the outbox",
                &["route", "connector"],
            ),
            suppressed: counter(
                "oie_suppressed_total",
                "Route matches held back by repeat_after",
                &["route"],
            ),
            triggers: counter(
                "oie_triggers_total",
                "Triggers produced by sources",
                &["source", "kind"],
            ),
            slack_actions: counter(
                "oie_slack_actions_total",
                "Clicks on the buttons of Slack alerts (claim, snooze, not_a_fit) by outcome",
                &["action", "outcome"],
            ),
            outbox_depth: gauge(
                "oie_outbox_depth",
                "Deliveries in the outbox by state",
                &["connector", "state"],
            ),
            dead_letters: gauge(
                "oie_dead_letters",
                "Dead letters waiting for an operator",
                &["connector"],
            ),
            circuit: gauge(
                "oie_circuit_state",
                "Circuit breaker: 0 closed, 1 half-open, 2 open",
                &["connector"],
            ),
            connector_state: gauge(
                "oie_connector_state",
                "1 for the state each connector is in (ok, throttled, open, half_open, parked), 0 for the others",
                &["connector", "state"],
            ),
            vendor: gauge(
                "oie_connector_vendor_limit",
                "Vendor API limits as last reported (daily_used, daily_limit, daily_remaining, window_limit, window_remaining)",
                &["connector", "name"],
            ),
            store_bytes: gauge(
                "oie_store_bytes",
                "Size of each SQLite file of the data dir (database oie or outbox; file db or wal)",
                &["database", "file"],
            ),
            pruned: counter(
                "oie_pruned_rows_total",
                "Rows removed by retention ([store] events_retention, identity_retention, clicks_retention)",
                &["table"],
            ),
            backup_time: IntGauge::new(
                "oie_backup_last_success_timestamp_seconds",
                "When the last `oie backup` of this data dir finished (0: never)",
            )
            .expect("valid gauge"),
            backup_seconds: Gauge::new(
                "oie_backup_duration_seconds",
                "How long the last `oie backup` took",
            )
            .expect("valid gauge"),
            ingest_requests: counter(
                "oie_ingest_requests_total",
                "Ingest API requests by endpoint (/track, /identify, /personalize, /go, …) and HTTP status",
                &["endpoint", "status"],
            ),
            ingest_events: counter(
                "oie_ingest_events_total",
                "Events posted to /track: accepted, busy (refused for load, 503), rejected (invalid or unauthorized)",
                &["outcome"],
            ),
            ingest_queue_requests: IntGauge::new(
                "oie_ingest_queue_requests",
                "/track requests and /go clicks waiting to be written",
            )
            .expect("valid gauge"),
            ingest_queue_bytes: IntGauge::new(
                "oie_ingest_queue_bytes",
                "Bytes of events waiting to be written",
            )
            .expect("valid gauge"),
            scoring_runs: counter(
                "oie_scoring_runs_total",
                "Scoring runs of the embedded store by result (ok, error)",
                &["result"],
            ),
            scoring_seconds: prometheus::Histogram::with_opts(
                HistogramOpts::new("oie_scoring_seconds", "How long one scoring run took")
                    .buckets(vec![0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0]),
            )
            .expect("valid histogram"),
            scoring_leads: prometheus::Histogram::with_opts(
                HistogramOpts::new("oie_scoring_leads", "Leads one scoring run rescored")
                    .buckets(vec![0.0, 1.0, 10.0, 100.0, 1_000.0, 10_000.0, 100_000.0]),
            )
            .expect("valid histogram"),
            alert_latency: HistogramVec::new(
                HistogramOpts::new(
                    "oie_alert_latency_seconds",
                    "From the prospect's action (the lead's newest event, or a Pub/Sub moment's at) to the delivery of the hot-lead alert",
                )
                .buckets(vec![0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0]),
                &["route", "connector"],
            )
            .expect("valid histogram"),
            registry,
        };
        for c in [&m.ingest_requests, &m.ingest_events, &m.scoring_runs] {
            m.registry
                .register(Box::new(c.clone()))
                .expect("unique metric");
        }
        for g in [&m.ingest_queue_requests, &m.ingest_queue_bytes] {
            m.registry
                .register(Box::new(g.clone()))
                .expect("unique metric");
        }
        for h in [&m.scoring_seconds, &m.scoring_leads] {
            m.registry
                .register(Box::new(h.clone()))
                .expect("unique metric");
        }
        m.registry
            .register(Box::new(m.alert_latency.clone()))
            .expect("unique metric");
        m.registry
            .register(Box::new(m.backup_time.clone()))
            .expect("unique metric");
        m.registry
            .register(Box::new(m.backup_seconds.clone()))
            .expect("unique metric");
        m.registry
            .register(Box::new(m.store_bytes.clone()))
            .expect("unique metric");
        m.registry
            .register(Box::new(m.pruned.clone()))
            .expect("unique metric");
        for c in [
            &m.deliveries,
            &m.enqueued,
            &m.suppressed,
            &m.triggers,
            &m.slack_actions,
        ] {
            m.registry
                .register(Box::new(c.clone()))
                .expect("unique metric");
        }
        for g in [
            &m.outbox_depth,
            &m.dead_letters,
            &m.circuit,
            &m.connector_state,
            &m.vendor,
        ] {
            m.registry
                .register(Box::new(g.clone()))
                .expect("unique metric");
        }
        m.registry
            .register(Box::new(m.attempt_seconds.clone()))
            .expect("unique metric");
        m
    }

    /// Counts what a source committed to the outbox: deliveries by route and connector, route
    /// matches `repeat_after` held back, and queued syncs a newer one superseded.
    pub fn handed_over(
        &self,
        deliveries: &[crate::outbox::NewDelivery],
        suppressed: &[String],
        superseded: &[(String, String)],
    ) {
        for d in deliveries {
            self.enqueued
                .with_label_values(&[&d.route, &d.connector])
                .inc();
        }
        for route in suppressed {
            self.suppressed.with_label_values(&[route]).inc();
        }
        for (route, connector) in superseded {
            self.deliveries
                .with_label_values(&[route, connector, "superseded", "superseded"])
                .inc();
        }
    }

    /// Sets the outbox gauges from a fresh count.
    pub fn set_depth(&self, depth: &[Depth]) {
        self.outbox_depth.reset();
        self.dead_letters.reset();
        for d in depth {
            self.outbox_depth
                .with_label_values(&[&d.connector, &d.state])
                .set(d.count);
            if d.state == "dead" {
                self.dead_letters
                    .with_label_values(&[&d.connector])
                    .set(d.count);
            }
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        // Encoding into a Vec cannot fail for well-formed metrics.
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("metrics encode");
        String::from_utf8(out).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

fn counter(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help), labels).expect("valid counter")
}

fn gauge(name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    IntGaugeVec::new(Opts::new(name, help), labels).expect("valid gauge")
}
