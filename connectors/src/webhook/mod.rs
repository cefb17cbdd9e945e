//! `webhook`: POSTs JSON to any endpoint, signed as the Standard Webhooks specification says.
//!
//! `webhook-id` is the delivery's idempotency key, so a receiver can drop repeats; redirects
//! are never followed. Answers go through the shared status table: 401/403, 404, 410 and
//! redirects park the connector, 429/502/503/504 throttle, other 4xx dead-letter the delivery.

mod config;
mod kind;
mod signature;
mod sink;
#[cfg(test)]
mod tests;

pub use config::WebhookConfig;
pub use signature::{sign, SigningKey};
pub use sink::Webhook;
