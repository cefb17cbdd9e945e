use std::time::Duration;

use serde::Deserialize;

use crate::duration;

/// `[connectors.NAME] kind = "pubsub"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PubSubConfig {
    /// `projects/PROJECT/topics/TOPIC`.
    pub topic: String,
    /// The Pub/Sub endpoint, e.g. an emulator's `http://127.0.0.1:8085` (no credentials are sent
    /// then, unless `credentials_file` is set).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// A service-account key file with Pub/Sub Publisher on the topic (default: Application
    /// Default Credentials).
    #[serde(default)]
    pub credentials_file: Option<String>,
    /// Use the visitor id as ordering key (the topic's subscriptions need message ordering).
    #[serde(default)]
    pub ordering: bool,
    /// How long one publish may take before it is retried (default 30s).
    #[serde(
        default = "default_timeout",
        deserialize_with = "duration::deserialize"
    )]
    pub timeout: Duration,
}

fn default_timeout() -> Duration {
    Duration::from_secs(30)
}
