//! `pubsub`: publishes routed leads to a Pub/Sub topic as version-1 hot-lead messages (the
//! format `[sources.pubsub]` reads), so other consumers — or other `oie` deployments — get them.
//! With `ordering = true` the visitor id is the ordering key.

pub mod auth;
mod config;
mod kind;
mod sink;
#[cfg(test)]
mod tests;

pub use config::PubSubConfig;
pub use sink::PubSub;
