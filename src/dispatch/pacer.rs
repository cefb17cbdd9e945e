//! A connector's `rate_limit`: governor's GCRA limiter read through tokio's clock, so paused
//! time in tests drives it like everything else in the dispatcher.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

/// Time since the pacer was made, on tokio's clock.
#[derive(Debug, Clone)]
struct TokioClock {
    start: tokio::time::Instant,
}

impl Clock for TokioClock {
    type Instant = Duration;

    fn now(&self) -> Duration {
        self.start.elapsed()
    }
}

pub struct Pacer {
    limiter: RateLimiter<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<Duration>>,
    clock: TokioClock,
}

impl Pacer {
    /// `rate` requests per second, evenly spaced (no bursts): vendors such as Slack count per
    /// second per channel, so a burst would meet their limit even when the average does not.
    pub fn new(rate: f64) -> Pacer {
        let period = Duration::from_secs_f64(1.0 / rate);
        // Config checks make `rate` positive and finite, so the period is non-zero.
        let quota = Quota::with_period(period)
            .expect("positive rate")
            .allow_burst(NonZeroU32::MIN);
        let clock = TokioClock {
            start: tokio::time::Instant::now(),
        };
        Pacer {
            limiter: RateLimiter::direct_with_clock(quota, clock.clone()),
            clock,
        }
    }

    /// Waits until one more request may go.
    pub async fn ready(&self) {
        while let Err(not_yet) = self.limiter.check() {
            tokio::time::sleep(not_yet.wait_time_from(self.clock.now())).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn requests_are_evenly_spaced() {
        let pacer = Pacer::new(10.0);
        let start = tokio::time::Instant::now();
        let mut at = Vec::new();
        for _ in 0..5 {
            pacer.ready().await;
            at.push(start.elapsed().as_millis());
        }
        assert_eq!(at, vec![0, 100, 200, 300, 400]);
    }
}
