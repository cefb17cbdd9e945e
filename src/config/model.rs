//! The structs of `config.toml`. Each field's comment is its user documentation.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use oie_connectors::duration;

pub use super::kinds::ConnectorSettings;
use serde::Deserialize;
use toml::Spanned;

pub use super::server::ServerConfig;

/// The whole config file.
#[derive(Debug, Default)]
pub struct Config {
    pub engine: EngineConfig,
    pub server: ServerConfig,
    pub store: StoreConfig,
    pub scoring: ScoringConfig,
    pub sources: SourcesConfig,
    pub delivery: DeliveryConfig,
    pub routes: Vec<RouteConfig>,
    /// The connectors that were read without problems, by name.
    pub connectors: BTreeMap<String, ConnectorEntry>,
    /// Every `[connectors.NAME]` in the file, including those with problems.
    pub connector_names: BTreeSet<String>,
}

/// `[engine]`: where data lives and how `oie` logs.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineConfig {
    /// Folder for the SQLite databases (`oie.db` lead store, `outbox.db`), relative to the
    /// config file. Default `data`.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Folder of handlebars templates overriding and extending the built-in ones, relative to
    /// the config file. Default `templates`.
    #[serde(default = "default_templates_dir")]
    pub templates_dir: PathBuf,
    /// `pretty` (default) or `json`.
    #[serde(default)]
    pub log_format: LogFormat,
    /// A `tracing` filter such as `info` or `oie=debug`; `RUST_LOG` overrides it.
    #[serde(default = "default_log_level")]
    pub log_level: String,
    /// On SIGTERM/SIGINT, how long in-flight deliveries may take to finish (default 10s).
    #[serde(
        default = "default_shutdown",
        deserialize_with = "duration::deserialize"
    )]
    pub shutdown_timeout: Duration,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Pretty,
    Json,
}

/// `[store]`: where lead profiles live.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `sqlite`: the embedded store at `<data_dir>/oie.db`; `bigquery`: the warehouse of cloud
    /// mode (`oie bigquery apply` creates it).
    #[serde(default)]
    pub kind: StoreKind,
    /// BigQuery: the Google Cloud project.
    #[serde(default)]
    pub project: Option<String>,
    /// BigQuery: the dataset (default `oie`).
    #[serde(default = "default_dataset")]
    pub dataset: String,
    /// BigQuery: where a new dataset is created (default `US`).
    #[serde(default = "default_location")]
    pub location: String,
    /// BigQuery: a service-account key file (default: Application Default Credentials).
    #[serde(default)]
    pub credentials_file: Option<String>,
    /// BigQuery: the API root, e.g. an emulator's `http://127.0.0.1:9050` (no credentials are
    /// sent then).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// BigQuery: whether `oie run` folds `crm_sync_log` into `crm_sync_state`
    /// (queries/5_crm_sync_state.sql) itself (default true; set false when a scheduled query
    /// does it, or on all replicas but one).
    #[serde(default = "yes")]
    pub fold: bool,
    /// BigQuery: how often to fold (default 15m).
    #[serde(default = "default_fold", deserialize_with = "duration::deserialize")]
    pub fold_interval: Duration,
    /// BigQuery: each query's `maximumBytesBilled`; a query that would bill more fails rather
    /// than cost more (default: no cap).
    #[serde(default)]
    pub max_bytes_billed: Option<u64>,
    /// SQLite: how long events are kept, by arrival (default 730d); sessions and hot-lead
    /// alerts go with them. Scores look back 90 days: shorter than that changes scores.
    #[serde(
        default = "default_events_retention",
        deserialize_with = "duration::deserialize"
    )]
    pub events_retention: Duration,
    /// SQLite: how long an identity is kept after it was imported (default 90d).
    #[serde(
        default = "default_identity_retention",
        deserialize_with = "duration::deserialize"
    )]
    pub identity_retention: Duration,
    /// SQLite: how long e-mail link clicks are kept (default 730d).
    #[serde(
        default = "default_events_retention",
        deserialize_with = "duration::deserialize"
    )]
    pub clicks_retention: Duration,
    /// SQLite: how often old rows are pruned, a few thousand at a time (default 1h).
    #[serde(
        default = "default_prune_interval",
        deserialize_with = "duration::deserialize"
    )]
    pub prune_interval: Duration,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    #[default]
    Sqlite,
    Bigquery,
}

/// `[scoring]`: embedded-mode scoring of incoming events (sql/sqlite).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoringConfig {
    /// Scoring runs as soon as events arrive, then at most once per this interval, so a burst
    /// is scored in a few runs rather than hundreds (default 1s).
    #[serde(
        default = "default_debounce",
        deserialize_with = "duration::deserialize"
    )]
    pub debounce: Duration,
    /// URL-path patterns (SQL LIKE, e.g. "/pricing%") per page class. When set, they replace the
    /// `page_classes` table at start; when absent, the table is left as it is.
    #[serde(default)]
    pub page_classes: Option<PageClasses>,
}

/// `[scoring.page_classes]`: which pageviews count as pricing, case-study or product views.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageClasses {
    #[serde(default)]
    pub pricing: Vec<String>,
    #[serde(default)]
    pub case_study: Vec<String>,
    #[serde(default)]
    pub product: Vec<String>,
}

impl PageClasses {
    /// (class, pattern) rows for the `page_classes` table.
    pub fn rows(&self) -> Vec<(&'static str, &str)> {
        let mut rows = Vec::new();
        for (class, patterns) in [
            ("pricing", &self.pricing),
            ("case_study", &self.case_study),
            ("product", &self.product),
        ] {
            rows.extend(patterns.iter().map(|p| (class, p.as_str())));
        }
        rows
    }
}

/// `[sources]`: where triggers come from.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourcesConfig {
    /// `[sources.leads]`: polls the lead store for level rises and profile changes.
    #[serde(default)]
    pub leads: LeadsSourceConfig,
    /// `[sources.pubsub]`: hot-lead messages from a Pub/Sub subscription (cloud mode).
    #[serde(default)]
    pub pubsub: Option<PubSubSourceConfig>,
}

/// `[sources.pubsub]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PubSubSourceConfig {
    /// `projects/PROJECT/subscriptions/SUBSCRIPTION`.
    pub subscription: String,
    /// The Pub/Sub endpoint, e.g. an emulator's `http://127.0.0.1:8085`; credentials are then
    /// anonymous unless `credentials_file` is set (default: Google's).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// A service-account key file (default: Application Default Credentials).
    #[serde(default)]
    pub credentials_file: Option<String>,
    /// Flow control: messages held un-acked at most (default 1000).
    #[serde(default = "default_outstanding")]
    pub max_outstanding_messages: i64,
    /// Flow control: bytes held un-acked at most (default 104857600, 100 MiB).
    #[serde(default = "default_outstanding_bytes")]
    pub max_outstanding_bytes: i64,
    /// Longest a message is held (its lease extended meanwhile) before Pub/Sub may give it to
    /// another replica (default 10m).
    #[serde(default = "default_lease", deserialize_with = "duration::deserialize")]
    pub max_lease: Duration,
    /// How far each lease extension reaches (10s–10m, default 60s): after a crash, Pub/Sub
    /// redelivers the messages `oie` held once this runs out.
    #[serde(
        default = "default_lease_extension",
        deserialize_with = "duration::deserialize"
    )]
    pub lease_extension: Duration,
    /// Messages routed and committed per outbox transaction (default 500).
    #[serde(default = "default_page")]
    pub batch_size: usize,
    /// Longest a message waits for its batch to fill (default 20ms).
    #[serde(
        default = "default_batch_wait",
        deserialize_with = "duration::deserialize"
    )]
    pub batch_wait: Duration,
}

/// `[sources.leads]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeadsSourceConfig {
    /// Set to false to stop polling (default true).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// How often to look for changed leads (default 5s on SQLite, 1m on BigQuery, where every
    /// poll is a billed query).
    #[serde(default, deserialize_with = "duration::deserialize_opt")]
    pub interval: Option<Duration>,
    /// How many changed leads to read and hand over per transaction (default 500).
    #[serde(default = "default_page")]
    pub batch_size: usize,
}

impl LeadsSourceConfig {
    /// The poll interval for `store`.
    pub fn interval(&self, store: StoreKind) -> Duration {
        self.interval.unwrap_or(match store {
            StoreKind::Sqlite => Duration::from_secs(5),
            StoreKind::Bigquery => Duration::from_secs(60),
        })
    }
}

/// `[delivery]`: retry defaults for every connector.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryConfig {
    /// Attempts before a delivery becomes a dead letter (default 10). Only attempts that say
    /// something about the delivery count: not those a throttle answered, not those held back
    /// while the connector was parked or its breaker open, not probes.
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    /// Age after which a delivery is given up, attempted or not (default 24h).
    #[serde(
        default = "default_max_age",
        deserialize_with = "duration::deserialize"
    )]
    pub max_age: Duration,
    /// First retry delay before jitter (default 1s); doubles each attempt.
    #[serde(default = "default_base", deserialize_with = "duration::deserialize")]
    pub backoff_base: Duration,
    /// Largest retry delay (default 10m). `Retry-After` is honoured up to 1h.
    #[serde(
        default = "default_backoff_max",
        deserialize_with = "duration::deserialize"
    )]
    pub backoff_max: Duration,
    /// How long delivered rows (and their idempotency keys) are kept (default 7d).
    #[serde(default = "default_retain", deserialize_with = "duration::deserialize")]
    pub retain_delivered: Duration,
}

/// One `[[routes]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Unique name, used in idempotency keys and metrics.
    pub name: Spanned<String>,
    /// A CEL expression over `lead` and `trigger`; default `true`.
    #[serde(default = "default_when")]
    pub when: Spanned<String>,
    /// Connector names to deliver to.
    pub to: Spanned<Vec<Spanned<String>>>,
    /// Keep evaluating later routes after this one matched (default false).
    #[serde(default, rename = "continue")]
    pub continue_matching: bool,
    /// Suppress a repeat for the same lead on this route inside this window, unless its level
    /// rose (e.g. "24h").
    #[serde(default, deserialize_with = "duration::deserialize_opt")]
    pub repeat_after: Option<Duration>,
    /// Collect this route's deliveries for this long and send one digest per connector
    /// (e.g. "30s"); only for connectors that send digests (Slack).
    #[serde(default, deserialize_with = "duration::deserialize_opt")]
    pub group_wait: Option<Duration>,
}

/// One `[connectors.NAME]` table: the shared delivery settings plus the kind's own.
#[derive(Debug)]
pub struct ConnectorEntry {
    pub delivery: ConnectorDelivery,
    pub settings: ConnectorSettings,
    /// Where the table starts in the file (for messages).
    pub line: usize,
}

/// Delivery settings every connector accepts, next to its own keys.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectorDelivery {
    /// Requests per second at most (default: the vendor's documented limit — Slack 1 per
    /// channel, Cloudflare KV 2; none for webhooks and files).
    #[serde(default)]
    pub rate_limit: Option<f64>,
    /// Requests in flight at once (default: webhooks 32, file and Pub/Sub 8, Slack and
    /// Cloudflare KV 1 to keep messages and writes in order, HubSpot 4, Salesforce 2).
    #[serde(default)]
    pub concurrency: Option<usize>,
    /// Deliveries per request, up to the connector's own maximum (HubSpot 100, Salesforce 200,
    /// file and Pub/Sub 100, Cloudflare KV 10,000, webhooks and Slack 1).
    #[serde(default)]
    pub batch_size: Option<usize>,
    /// How long a new delivery waits for others to share its request (default 0; HubSpot and
    /// Salesforce 10s, Cloudflare KV 1s). A queued CRM sync that a newer sync of the same lead replaces within
    /// this time is dropped as `superseded`: a lead that changes five times costs one write.
    #[serde(default, deserialize_with = "duration::deserialize_opt")]
    pub batch_wait: Option<Duration>,
    /// Overrides `[delivery] max_attempts`.
    #[serde(default)]
    pub max_attempts: Option<u32>,
    /// Overrides `[delivery] max_age`.
    #[serde(default, deserialize_with = "duration::deserialize_opt")]
    pub max_age: Option<Duration>,
    /// The circuit breaker opens when at least this share of the last 20 requests failed
    /// (no connection, no answer, a server error; default 0.8). A failed batch is one request.
    #[serde(default = "default_failure_rate")]
    pub breaker_failure_rate: f64,
    /// ...counted once at least this many requests answered (1–20, default 5).
    #[serde(default = "default_min_requests")]
    pub breaker_min_requests: usize,
    /// The longest the breaker stays open before a probe: the cool-down starts at 1s and
    /// doubles with every failed probe up to this (default 30s).
    #[serde(
        default = "default_cooldown",
        deserialize_with = "duration::deserialize"
    )]
    pub breaker_cooldown: Duration,
}

/// The keys of [`ConnectorDelivery`], split from a connector table before its kind's own keys
/// are read.
pub const DELIVERY_KEYS: &[&str] = &[
    "rate_limit",
    "concurrency",
    "batch_size",
    "batch_wait",
    "max_attempts",
    "max_age",
    "breaker_failure_rate",
    "breaker_min_requests",
    "breaker_cooldown",
];

/// Keys of earlier releases, with what replaced them.
pub const RETIRED_KEYS: &[(&str, &str)] = &[(
    "breaker_threshold",
    "the circuit breaker now judges the share of failed requests, not a streak of failed deliveries: use `breaker_failure_rate` (default 0.8) and `breaker_min_requests` (default 5)",
)];

fn default_data_dir() -> PathBuf {
    PathBuf::from("data")
}
fn default_templates_dir() -> PathBuf {
    PathBuf::from("templates")
}
fn default_log_level() -> String {
    "info".to_string()
}
fn default_shutdown() -> Duration {
    Duration::from_secs(10)
}
fn default_debounce() -> Duration {
    Duration::from_secs(1)
}
fn yes() -> bool {
    true
}
fn default_fold() -> Duration {
    Duration::from_secs(15 * 60)
}
fn default_events_retention() -> Duration {
    Duration::from_secs(730 * 86_400)
}
fn default_identity_retention() -> Duration {
    Duration::from_secs(90 * 86_400)
}
fn default_prune_interval() -> Duration {
    Duration::from_secs(3_600)
}
fn default_dataset() -> String {
    "oie".to_string()
}
fn default_location() -> String {
    "US".to_string()
}
fn default_outstanding() -> i64 {
    1000
}
fn default_outstanding_bytes() -> i64 {
    100 * 1024 * 1024
}
fn default_lease() -> Duration {
    Duration::from_secs(600)
}
fn default_lease_extension() -> Duration {
    Duration::from_secs(60)
}
fn default_batch_wait() -> Duration {
    Duration::from_millis(20)
}
fn default_page() -> usize {
    500
}
fn default_attempts() -> u32 {
    10
}
fn default_max_age() -> Duration {
    Duration::from_secs(24 * 3600)
}
fn default_base() -> Duration {
    Duration::from_secs(1)
}
fn default_backoff_max() -> Duration {
    Duration::from_secs(600)
}
fn default_retain() -> Duration {
    Duration::from_secs(7 * 86_400)
}
fn default_when() -> Spanned<String> {
    Spanned::new(0..0, "true".to_string())
}
fn default_failure_rate() -> f64 {
    0.8
}
fn default_min_requests() -> usize {
    5
}
fn default_cooldown() -> Duration {
    Duration::from_secs(30)
}

macro_rules! defaults_from_empty_table {
    ($($t:ty),*) => {$(
        impl Default for $t {
            fn default() -> Self {
                // Every field has a default, so an empty table always deserializes.
                toml::from_str("").expect("all fields have defaults")
            }
        }
    )*};
}
defaults_from_empty_table!(
    EngineConfig,
    StoreConfig,
    ScoringConfig,
    SourcesConfig,
    LeadsSourceConfig,
    DeliveryConfig,
    ConnectorDelivery
);
