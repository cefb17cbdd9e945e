use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::{duration, secret, Secret};

/// `[connectors.NAME] kind = "webhook"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Where to POST. `${VAR}` references are expanded; the URL is never logged.
    pub url: Secret,
    /// Standard Webhooks signing secret (`whsec_…`), as `"${VAR}"`. Without it, requests are
    /// sent unsigned.
    #[serde(default, deserialize_with = "secret::env_only_opt")]
    pub secret: Option<Secret>,
    /// Template name under `templates/` (e.g. `webhook/my-crm`); default `webhook/default`,
    /// which sends `{type, timestamp, data: {route, trigger, lead}}`.
    #[serde(default = "default_template")]
    pub template: String,
    /// Extra request headers; values may use `${VAR}`.
    #[serde(default)]
    pub headers: BTreeMap<String, Secret>,
    /// How long to wait for an answer before retrying (default 15s).
    #[serde(
        default = "default_timeout",
        deserialize_with = "duration::deserialize"
    )]
    pub timeout: Duration,
}

fn default_template() -> String {
    "webhook/default".to_string()
}

fn default_timeout() -> Duration {
    Duration::from_secs(15)
}
