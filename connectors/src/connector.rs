use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;

use crate::{Failure, Outcome};

/// Checks a `record_url` pattern: it names `{id}` and makes a URL.
pub fn check_record_url(pattern: &Option<String>) -> Result<(), String> {
    let Some(p) = pattern else {
        return Ok(());
    };
    if !p.contains("{id}") {
        return Err(format!(
            "record_url `{p}` has no `{{id}}` for the record id"
        ));
    }
    reqwest::Url::parse(&p.replace("{id}", "1"))
        .map(|_| ())
        .map_err(|e| format!("record_url `{p}` is not a URL: {e}"))
}

/// `pattern` with `{id}` replaced by the record id (URL-encoded).
pub fn record_link(pattern: &Option<String>, id: &str) -> Option<String> {
    let id: String = url::form_urlencoded::byte_serialize(id.as_bytes()).collect();
    pattern.as_ref().map(|p| p.replace("{id}", &id))
}

/// Whether a trigger kind is about an account (`account_hot`, `account_sync`).
pub fn is_account_kind(trigger_kind: &str) -> bool {
    trigger_kind.starts_with("account_")
}

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

    /// Readies what `oie run` needs before the first delivery (the file connector opens its
    /// file, so a bad path stops the start); `oie check` never calls it.
    fn prepare(&self) -> Result<(), String> {
        Ok(())
    }

    /// CRM-kind connectors report record ids that are written back to `crm_sync_state`.
    fn is_crm(&self) -> bool {
        false
    }

    /// Whether deliveries of this trigger kind (`hot_lead`, `sync`, `identity`,
    /// `account_hot`, …) may go to it. `identity` carries the e-mail: only connectors made to
    /// hold identities take it. Account triggers go to connectors that can say something about
    /// an account (messages, webhooks, files, CRMs with account records).
    fn takes(&self, trigger_kind: &str) -> bool {
        trigger_kind != "identity"
    }

    /// An `erasure` trigger reaches it even without a record oie synced there: what it holds
    /// is keyed by the visitor (a KV namespace), so it can always be told to forget.
    fn erases_by_visitor(&self) -> bool {
        false
    }

    /// The Slack channel whose messages it can update in place (a Slack connector with a bot
    /// token): a payload `{"_oie_update": {"channel", "ts"}, "text", "blocks"}` sent to it
    /// becomes `chat.update` of that message.
    fn updates_messages_in(&self) -> Option<&str> {
        None
    }

    /// The e-mail address of a user of the chat it posts to (Slack `users.info`), if it can
    /// tell: who clicked Claim, to make them the lead's owner in the CRMs.
    async fn user_email(&self, _user: &str) -> Result<Option<String>, Failure> {
        Ok(None)
    }

    /// The e-mail of the owner of each of `records` (ids of records it synced) in the CRM:
    /// `None` when a record has no owner, or one without an e-mail. Records it could not read
    /// are left out. oie asks after CRM deliveries when a Slack connector writes to owners
    /// (`recipient = "owner"`), and keeps the answer in `crm_sync_state.ownerEmail`.
    async fn record_owners(
        &self,
        _records: &[String],
    ) -> Result<HashMap<String, Option<String>>, Failure> {
        Ok(HashMap::new())
    }

    /// A link to record `id` in the vendor's app (the config's `record_url`), for people
    /// reading oie's console.
    fn record_url(&self, _id: &str) -> Option<String> {
        None
    }

    /// Whether it sends to the CRM owners of leads (Slack with `recipient = "owner"`): then CRM
    /// connectors read the owners of the records they sync ([`Connector::record_owners`]).
    fn sends_to_owners(&self) -> bool {
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

    /// Renders one message for several deliveries, from their render data (oldest first). Only
    /// kinds whose [`crate::Kind::DIGESTS`] says so implement it.
    fn render_digest(&self, items: &[serde_json::Value]) -> Result<String, crate::RenderError> {
        let _ = items;
        Err(crate::RenderError::Render {
            name: self.kind().to_string(),
            message: "this connector does not send digests".to_string(),
        })
    }

    /// How long deliveries wait for others to share their request when the config sets no
    /// `batch_wait` (CRMs: long enough that a lead's changes in quick succession cost one write).
    fn default_batch_wait(&self) -> Duration {
        Duration::ZERO
    }

    /// The longest one vendor request may take (the connector's `timeout`). The dispatcher
    /// gives a whole `send` a few of these, then counts it as timed out.
    fn timeout(&self) -> Duration {
        Duration::from_secs(30)
    }

    /// Vendor limits the connector last saw, as `(name, value)` pairs exported as metrics
    /// (e.g. `daily_used`, `daily_limit`, `window_remaining`).
    fn gauges(&self) -> Vec<(&'static str, f64)> {
        Vec::new()
    }

    /// Authenticates and makes one harmless read call; `Ok` says what was checked.
    async fn check(&self) -> Result<String, Failure> {
        Ok("not checked: this connector has no harmless read call".to_string())
    }

    /// Renders the payload for one delivery from `{lead, trigger, route}`.
    fn render(&self, context: &crate::RenderContext) -> Result<String, crate::RenderError>;

    /// Sends a batch; returns exactly one outcome per delivery, in order. A failure of the
    /// request as a whole (no connection, a refused token) is every delivery's outcome.
    async fn send(&self, batch: &[Delivery]) -> Vec<Outcome>;
}
