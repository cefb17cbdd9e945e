//! Prometheus metrics, labelled by route and connector.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::outbox::Depth;

pub struct Metrics {
    registry: Registry,
    /// Attempt results after the retry policy: delivered, retry, dead.
    pub deliveries: IntCounterVec,
    pub attempt_seconds: HistogramVec,
    pub enqueued: IntCounterVec,
    pub suppressed: IntCounterVec,
    pub triggers: IntCounterVec,
    pub outbox_depth: IntGaugeVec,
    pub dead_letters: IntGaugeVec,
    pub circuit: IntGaugeVec,
    pub disabled: IntGaugeVec,
    /// Vendor limits as connectors last saw them (`daily_used`, `window_remaining`, `parked`…).
    pub vendor: IntGaugeVec,
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let m = Metrics {
            deliveries: counter(
                "oie_deliveries_total",
                "Delivery attempts by route, connector and result (delivered, retry, dead)",
                &["route", "connector", "outcome"],
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
            disabled: gauge(
                "oie_connector_disabled",
                "1 when a connector was disabled (HTTP 410)",
                &["connector"],
            ),
            vendor: gauge(
                "oie_connector_vendor_limit",
                "Vendor API limits as last reported (daily_used, daily_limit, daily_remaining, window_limit, window_remaining) and parked (1 while a used-up daily allocation holds the connector)",
                &["connector", "name"],
            ),
            registry,
        };
        for c in [&m.deliveries, &m.enqueued, &m.suppressed, &m.triggers] {
            m.registry
                .register(Box::new(c.clone()))
                .expect("unique metric");
        }
        for g in [
            &m.outbox_depth,
            &m.dead_letters,
            &m.circuit,
            &m.disabled,
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

    /// Counts what a source committed to the outbox: deliveries by route and connector, and
    /// route matches `repeat_after` held back.
    pub fn handed_over(&self, deliveries: &[crate::outbox::NewDelivery], suppressed: &[String]) {
        for d in deliveries {
            self.enqueued
                .with_label_values(&[&d.route, &d.connector])
                .inc();
        }
        for route in suppressed {
            self.suppressed.with_label_values(&[route]).inc();
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
