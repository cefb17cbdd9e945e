//! `slack`: hot-lead alerts and digests as Block Kit messages, through an incoming webhook or
//! the Web API's `chat.postMessage`.
//!
//! Every answer Slack can give is classified as VENDORS.md describes: rate limits wait for
//! `Retry-After`, configuration problems dead-letter with what to fix, `invalid_blocks` falls back
//! once to plain text. Messages are kept inside Block Kit's limits and lead-supplied text is
//! escaped, so no lead can ping `@channel` or plant a link.

mod blocks;
mod classify;
mod config;
mod kind;
mod sink;
#[cfg(test)]
mod tests;

pub use blocks::{enforce_limits, DIGEST_SHOWN};
pub use config::SlackConfig;
pub use sink::{Slack, UPDATE};
