//! `[server]`: the HTTP listener for the ingest API, health and metrics, and the limits that keep
//! it safe on the open internet.

use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;
use oie_connectors::{duration, Secret};
use serde::Deserialize;

/// `[server]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on (default `127.0.0.1:8787`; port 0 picks a free one and writes the
    /// bound address to `<data_dir>/server.addr`).
    #[serde(default = "default_listen")]
    pub listen: String,
    /// A second address for `/metrics`, `/healthz` and `/readyz` alone (e.g. `127.0.0.1:9464`),
    /// so the ingest API can face the internet while metrics stay private. Unset: they are
    /// served on `listen` too.
    #[serde(default)]
    pub metrics_listen: Option<String>,
    /// Origins (e.g. `https://www.acme.com`) whose pages may post events, besides pages served
    /// by `oie` itself.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// How many `/track` requests may wait to be written before `/track` answers 503 with
    /// Retry-After (default 10000).
    #[serde(default = "default_queue")]
    pub max_queued_requests: usize,
    /// How many bytes of events may wait to be written (default 64 MiB): the other bound of
    /// the same queue, so a flood of large requests cannot exhaust memory.
    #[serde(default = "default_queue_bytes")]
    pub max_queued_bytes: usize,
    /// Hosts (e.g. `www.acme.com`) that `/go` may redirect to besides paths on this server.
    #[serde(default)]
    pub redirect_hosts: Vec<String>,
    /// Token for `DELETE /visitors/{id}` and the operator's API (`/api/v1/`), as
    /// `"${OIE_ADMIN_TOKEN}"`; without it erasure and the API are off.
    #[serde(default, deserialize_with = "oie_connectors::secret::env_only_opt")]
    pub admin_token: Option<Secret>,
    /// HMAC key for server-side senders of `/track`, as `"${OIE_EVENT_SIGNING_SECRET}"`. When
    /// set, a request without an allowed `Origin` must carry `X-OIE-Signature: t=<unix
    /// seconds>,v1=<hex HMAC-SHA256(key, "<t>.<body>")>` within 5 minutes of now; unset, such
    /// requests are taken as they are (fine on localhost, not on the internet).
    #[serde(default, deserialize_with = "oie_connectors::secret::env_only_opt")]
    pub event_signing_secret: Option<Secret>,
    /// Slack's signing secret (the app's *Basic Information* page), as
    /// `"${SLACK_SIGNING_SECRET}"`: with it, `POST /slack/actions` takes the clicks on alert
    /// buttons (Claim, Snooze, Not a fit); without it that endpoint answers 404.
    #[serde(default, deserialize_with = "oie_connectors::secret::env_only_opt")]
    pub slack_signing_secret: Option<Secret>,
    /// How long Snooze holds a lead's alerts on the route of the message. Default 7d.
    #[serde(
        default = "default_slack_snooze",
        deserialize_with = "oie_connectors::duration::deserialize"
    )]
    pub slack_snooze: std::time::Duration,
    /// Proxies (addresses or CIDR ranges, e.g. `"10.0.0.0/8"`) whose `X-Forwarded-For` is
    /// believed; from anyone else the header is ignored and the peer address is the client's.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// Whether `/personalize` tells pages the lead's level (`hot`, `burning`); off by default,
    /// since anyone holding a link could read it.
    #[serde(default)]
    pub personalize_level: bool,
    /// A client must send its request headers within this (default 10s); slow clients are
    /// disconnected.
    #[serde(
        default = "default_header_timeout",
        deserialize_with = "duration::deserialize"
    )]
    pub header_timeout: Duration,
    /// A whole request, body included, must arrive and be answered within this (default 30s).
    #[serde(
        default = "default_request_timeout",
        deserialize_with = "duration::deserialize"
    )]
    pub request_timeout: Duration,
    /// Requests per minute per client address (0 turns a limit off); past it, 429 with
    /// Retry-After.
    #[serde(default)]
    pub rate_limits: RateLimits,
}

/// `[server.rate_limits]`: requests per minute per client address.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimits {
    /// `/identify` and `/personalize` together (default 60): a page asks once or twice, a
    /// script guessing ids asks thousands of times.
    #[serde(default = "default_lookups")]
    pub lookups: u32,
    /// `/go` (default 60).
    #[serde(default = "default_clicks")]
    pub go: u32,
    /// `/track` (default 600: a busy page posts a batch every few seconds, and one office may
    /// share an address).
    #[serde(default = "default_track")]
    pub track: u32,
    /// Addresses or CIDR ranges that are never limited (default loopback: `oie simulate` and
    /// your own tools). Behind a proxy, list the proxy in `trusted_proxies`, or every client
    /// looks like the proxy.
    #[serde(default = "default_exempt")]
    pub exempt: Vec<String>,
}

impl RateLimits {
    /// `exempt` parsed.
    pub fn exempt_ranges(&self) -> Result<Vec<IpNet>, String> {
        parse_ranges("rate_limits.exempt", &self.exempt)
    }
}

impl ServerConfig {
    /// `trusted_proxies` parsed; the error names the first entry that is not an address or a
    /// CIDR range.
    pub fn proxies(&self) -> Result<Vec<IpNet>, String> {
        parse_ranges("trusted_proxies", &self.trusted_proxies)
    }
}

fn parse_ranges(key: &str, entries: &[String]) -> Result<Vec<IpNet>, String> {
    entries
        .iter()
        .map(|p| {
            p.parse::<IpNet>()
                .or_else(|_| p.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    format!(
                        "{key}: \"{p}\" is not an IP address or a CIDR range like \"10.0.0.0/8\""
                    )
                })
        })
        .collect()
}

fn default_listen() -> String {
    "127.0.0.1:8787".to_string()
}
fn default_queue() -> usize {
    10_000
}
fn default_queue_bytes() -> usize {
    64 * 1024 * 1024
}
fn default_header_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_request_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_lookups() -> u32 {
    60
}
fn default_clicks() -> u32 {
    60
}
fn default_track() -> u32 {
    600
}
fn default_exempt() -> Vec<String> {
    vec!["127.0.0.0/8".into(), "::1".into()]
}

impl Default for ServerConfig {
    fn default() -> Self {
        // Every field has a default, so an empty table always deserializes.
        toml::from_str("").expect("all fields have defaults")
    }
}

impl Default for RateLimits {
    fn default() -> Self {
        toml::from_str("").expect("all fields have defaults")
    }
}

fn default_slack_snooze() -> std::time::Duration {
    std::time::Duration::from_secs(7 * 86_400)
}
