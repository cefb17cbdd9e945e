//! Per-connector delivery loops: claim due deliveries (oldest first), respect rate limit,
//! concurrency and whatever holds the connector (a park, a throttle, the circuit breaker), send,
//! and hand each result to the recorder. One loop per connector, so a failing connector never
//! slows another.
//!
//! - `worker`: the loop — gate, claim, probe, pause.
//! - `send`: one request — bounded by a deadline, judged, each delivery settled.
//! - `health`: parks, throttles and the breaker, judged together into one gate.
//! - `breaker`: the circuit breaker (pure). `retry`: the retry policy (pure).
//! - `pacer`: `rate_limit`. `state`: published state, resume requests, `max_age` expiry.
//! - `recorder`: writes outcomes (and CRM writebacks) in batches.

mod breaker;
mod health;
mod pacer;
mod recorder;
mod retry;
mod send;
mod state;
#[cfg(test)]
mod tests;
mod worker;

pub use breaker::WINDOW as BREAKER_WINDOW;
pub use recorder::{run as run_recorder, Record};
pub use retry::{RetryPolicy, MAX_RETRY_AFTER};
pub use worker::{ConnectorRuntime, Dispatcher};
