use std::time::Instant;

use async_trait::async_trait;

use crate::Outcome;

/// One payload on its way to a destination.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The idempotency key: stable across retries and restarts (sent as `webhook-id`).
    pub key: String,
    /// The visitor the payload is about.
    pub visitor_id: String,
    /// The rendered payload (JSON text).
    pub payload: String,
    /// 1 for the first attempt.
    pub attempt: u32,
}

/// A destination. Implementations classify every result; they never retry by themselves,
/// because the outbox owns the schedule.
#[async_trait]
pub trait Connector: Send + Sync {
    /// The `kind` in config, used as a metric label.
    fn kind(&self) -> &'static str;

    /// CRM-kind connectors report record ids that are written back to `crm_sync_state`.
    fn is_crm(&self) -> bool {
        false
    }

    /// How many deliveries one `send` may carry.
    fn max_batch(&self) -> usize {
        1
    }

    /// Requests per second when the config sets no `rate_limit` (the vendor's documented
    /// limit); `None` for no limit.
    fn default_rate_limit(&self) -> Option<f64> {
        None
    }

    /// Requests in flight when the config sets no `concurrency`.
    fn default_concurrency(&self) -> usize {
        8
    }

    /// Whether [`Connector::render_digest`] works: routes with `group_wait` need it.
    fn supports_digest(&self) -> bool {
        false
    }

    /// Renders one message for several deliveries, from their render data (oldest first).
    fn render_digest(&self, items: &[serde_json::Value]) -> Result<String, crate::RenderError> {
        let _ = items;
        Err(crate::RenderError::Render {
            name: self.kind().to_string(),
            message: "this connector does not send digests".to_string(),
        })
    }

    /// While `Some(t)` with `t` in the future, the vendor asked for a pause longer than a retry
    /// (a daily API allocation is used up): the dispatcher claims nothing for this connector.
    fn parked_until(&self) -> Option<Instant> {
        None
    }

    /// Vendor limits the connector last saw, as `(name, value)` pairs exported as metrics
    /// (e.g. `daily_used`, `daily_limit`, `window_remaining`); the dispatcher adds `parked`.
    fn gauges(&self) -> Vec<(&'static str, f64)> {
        Vec::new()
    }

    /// Authenticates and makes one harmless read call; `Ok` says what was checked.
    async fn check(&self) -> Result<String, String> {
        Ok("not checked: this connector has no harmless read call".to_string())
    }

    /// Renders the payload for one delivery from `{lead, trigger, route}`.
    fn render(&self, context: &crate::RenderContext) -> Result<String, crate::RenderError>;

    /// Sends a batch; returns exactly one outcome per delivery, in order.
    async fn send(&self, batch: &[Delivery]) -> Vec<Outcome>;
}
