use std::time::Duration;

use serde::Deserialize;

use crate::{duration, secret, Secret};

/// `[connectors.NAME] kind = "slack"`: set `webhook_url`, or `token` and `channel`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    /// Incoming webhook URL, as `"${SLACK_WEBHOOK_URL}"` (it is a secret).
    #[serde(default, deserialize_with = "secret::env_only_opt")]
    pub webhook_url: Option<Secret>,
    /// Bot token (`xoxb-…`) for `chat.postMessage`, as `"${SLACK_BOT_TOKEN}"`.
    #[serde(default, deserialize_with = "secret::env_only_opt")]
    pub token: Option<Secret>,
    /// Channel id (`C…`) to post to with `token`.
    #[serde(default)]
    pub channel: Option<String>,
    /// Post as replies in this thread (with `token`).
    #[serde(default)]
    pub thread_ts: Option<String>,
    /// `"per_lead"`: a lead's first alert starts a thread, its later alerts reply in it (a rise
    /// to burning is also shown in the channel). Needs `token` and `channel`.
    #[serde(default)]
    pub thread: Option<String>,
    /// `"owner"`: each alert goes as a direct message to the lead's CRM owner (their e-mail,
    /// kept in `crm_sync_state`, looked up with `users.lookupByEmail`), or to
    /// `fallback_channel` when the lead has no owner or the owner has no Slack account. Needs
    /// `token`; the default (`"channel"`) posts to `channel`.
    #[serde(default = "default_recipient")]
    pub recipient: String,
    /// With `recipient = "owner"`: the channel id for alerts no owner can take, and digests.
    #[serde(default)]
    pub fallback_channel: Option<String>,
    /// With `recipient = "owner"`: how long who has an e-mail in Slack is remembered
    /// (default 1h).
    #[serde(
        default = "default_owner_cache",
        deserialize_with = "duration::deserialize"
    )]
    pub owner_cache: Duration,
    /// The Web API's base URL (default `https://slack.com/api`); change it only for tests.
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// Template of one alert (default `slack/hot_lead`).
    #[serde(default = "default_template")]
    pub template: String,
    /// Template of an account alert (`account_hot`, `account_sync`; default `slack/hot_account`).
    #[serde(default = "default_account_template")]
    pub account_template: String,
    /// Template of a digest, for routes with `group_wait` (default `slack/digest`).
    #[serde(default = "default_digest")]
    pub digest_template: String,
    /// Link to the lead's CRM record when one is known; `{id}` is replaced by the record id,
    /// e.g. `"https://app.hubspot.com/contacts/12345/record/0-1/{id}"`.
    #[serde(default)]
    pub crm_record_url: Option<String>,
    /// How long to wait for Slack's answer (default 15s).
    #[serde(
        default = "default_timeout",
        deserialize_with = "duration::deserialize"
    )]
    pub timeout: Duration,
}

fn default_base_url() -> String {
    "https://slack.com/api".to_string()
}

fn default_template() -> String {
    "slack/hot_lead".to_string()
}

fn default_account_template() -> String {
    "slack/hot_account".to_string()
}

fn default_digest() -> String {
    "slack/digest".to_string()
}

fn default_recipient() -> String {
    "channel".to_string()
}

fn default_owner_cache() -> Duration {
    Duration::from_secs(3600)
}

fn default_timeout() -> Duration {
    Duration::from_secs(15)
}
