//! `hubspot`: contacts upserted by e-mail with the batch upsert API (100 per call), optional
//! Notes for hot-lead moments, paced by a rolling 10-second window that follows HubSpot's
//! rate-limit headers, and parked when the daily allocation runs out.
//!
//! Every answer is classified as VENDORS.md describes: 207 results are handled input by input,
//! 429 `TEN_SECONDLY_ROLLING` waits for the window (`throttled`), 429 `DAILY` parks the
//! connector until the daily reset (`quota`), 401/403 park it with what to fix (`auth`),
//! 5xx retry, per-input validation errors dead-letter that input.

mod auth;
mod classify;
mod config;
mod kind;
mod sink;
#[cfg(test)]
mod tests;
mod window;

pub use config::HubSpotConfig;
pub use sink::HubSpot;

/// How long HubSpot deliveries wait for others by default (`batch_wait`).
pub const DEFAULT_BATCH_WAIT: std::time::Duration = std::time::Duration::from_secs(10);
