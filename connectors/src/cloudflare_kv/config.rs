use std::time::Duration;

use serde::Deserialize;

use crate::{duration, secret, Secret};

/// What a namespace holds.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Holds {
    #[default]
    Personalization,
    Identities,
}

/// `[connectors.NAME] kind = "cloudflare_kv"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloudflareKvConfig {
    /// The Cloudflare account id.
    pub account_id: String,
    /// The KV namespace id (not its title), e.g. the `id` of `PERSONALIZATION` in wrangler's
    /// config.
    pub namespace_id: String,
    /// An API token with "Workers KV Storage: Edit", as `${VAR}`.
    #[serde(deserialize_with = "secret::env_only")]
    pub api_token: Secret,
    /// The API's base address (default `https://api.cloudflare.com/client/v4`).
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// What the namespace holds: `"personalization"` (a value per lead from its `sync`
    /// triggers, what the Worker's `/personalize` reads) or `"identities"` (a value per short id
    /// from `identity` triggers, what `/identify` and `/go` read; only connectors holding
    /// identities receive them, since they carry the e-mail).
    #[serde(default)]
    pub holds: Holds,
    /// The template of each value (default `kv/personalization`: first name, company, campaign
    /// and level; `kv/identity` when it holds identities: e-mail, names, company, campaign).
    #[serde(default)]
    pub template: Option<String>,
    /// How long KV keeps a value, at least 60s (default: for ever).
    #[serde(default, deserialize_with = "duration::deserialize_opt")]
    pub expiration_ttl: Option<Duration>,
    /// How long one API request may take (default 30s).
    #[serde(
        default = "default_timeout",
        deserialize_with = "duration::deserialize"
    )]
    pub timeout: Duration,
}

fn default_base_url() -> String {
    "https://api.cloudflare.com/client/v4".into()
}

fn default_timeout() -> Duration {
    Duration::from_secs(30)
}
