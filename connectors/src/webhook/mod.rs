//! `webhook`: POSTs JSON to any endpoint, signed as the Standard Webhooks specification says.
//!
//! `webhook-id` is the delivery's idempotency key, so a receiver can drop repeats; redirects
//! are never followed; HTTP 410 disables the connector.

mod config;
mod signature;
mod sink;
#[cfg(test)]
mod tests;

pub use config::WebhookConfig;
pub use signature::{sign, SigningKey};
pub use sink::Webhook;
