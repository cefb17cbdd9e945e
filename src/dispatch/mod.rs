//! Per-connector delivery loops: claim due deliveries, respect rate limit, concurrency and the
//! circuit breaker, send, and hand each result to the recorder. One loop per connector, so a
//! failing connector never slows another.

mod breaker;
mod recorder;
mod retry;
#[cfg(test)]
mod tests;
mod worker;

pub use breaker::{Breaker, Permit, State as BreakerState};
pub use recorder::{run as run_recorder, Record};
pub use retry::{RetryPolicy, MAX_RETRY_AFTER};
pub use worker::{ConnectorRuntime, Dispatcher};
