//! `salesforce`: Leads (or Contacts) upserted by an external-id field holding the visitor id,
//! 200 per sObject Collections call with `allOrNone = false`, each record's result mapped back
//! to its delivery.
//!
//! Auth is the JWT bearer flow or the client-credentials flow of an External Client App; the
//! token is cached until Salesforce rejects it (401 `INVALID_SESSION_ID`), then minted again
//! once. `Sforce-Limit-Info` is read on every answer: below the headroom the connector spaces
//! its calls so the org's daily allocation lasts; a daily `REQUEST_LIMIT_EXCEEDED` is `quota`
//! (the connector is parked), too many concurrent requests is `throttled`. A token refused twice
//! is `auth` (parked), a refused record is `invalid_item` (its dead letter).

mod auth;
mod classify;
mod config;
mod kind;
mod limits;
mod sink;
#[cfg(test)]
mod tests;

pub use config::SalesforceConfig;
pub use limits::parse_limit_info;
pub use sink::Salesforce;

/// How long Salesforce deliveries wait for others by default (`batch_wait`).
pub const DEFAULT_BATCH_WAIT: std::time::Duration = std::time::Duration::from_secs(10);
