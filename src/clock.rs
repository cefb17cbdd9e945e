//! Wall-clock time in milliseconds, the unit of every stored timestamp, and the [`Clock`] the
//! dispatcher reads, which tests can pause.

use std::time::{SystemTime, UNIX_EPOCH};

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Where the dispatcher, breaker and retry schedule get "now" from.
#[derive(Debug, Clone, Copy)]
pub enum Clock {
    /// The system clock: what every other process (the CLI's replays, a second replica) sees.
    System,
    /// Tokio's clock, anchored at a wall-clock instant: under `tokio::time::pause()` it stands
    /// still until the runtime has nothing to do, then jumps to the next timer, so tests can
    /// run hours of retries and probes in milliseconds and assert exact times.
    Tokio {
        wall_ms: i64,
        start: tokio::time::Instant,
    },
}

impl Clock {
    /// A clock that follows tokio's time from now on.
    pub fn tokio() -> Clock {
        Clock::Tokio {
            wall_ms: now_ms(),
            start: tokio::time::Instant::now(),
        }
    }

    pub fn now_ms(&self) -> i64 {
        match self {
            Clock::System => now_ms(),
            Clock::Tokio { wall_ms, start } => wall_ms + start.elapsed().as_millis() as i64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_tokio_clock_follows_paused_time() {
        let clock = Clock::tokio();
        let t0 = clock.now_ms();
        tokio::time::sleep(std::time::Duration::from_secs(7200)).await;
        assert_eq!(clock.now_ms() - t0, 7_200_000);
    }
}
