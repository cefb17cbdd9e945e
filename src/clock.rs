//! Wall-clock time in milliseconds, the unit of every stored timestamp, and the [`Clock`] the
//! dispatcher reads, which tests can pause.

use std::time::{SystemTime, UNIX_EPOCH};

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A timestamp as people export them, in milliseconds since the epoch: a whole number (epoch
/// milliseconds), or RFC 3339 / ISO 8601 with or without a zone (`2026-11-26T10:00:00Z`,
/// `2026-11-26T11:00:00+01:00`, `2026-11-26 10:00:00`, taken as UTC without one), or a date
/// alone (midnight UTC).
pub fn parse_time(text: &str) -> Option<i64> {
    let text = text.trim();
    if let Ok(ms) = text.parse::<i64>() {
        return Some(ms);
    }
    if let Ok(t) = text.parse::<jiff::Timestamp>() {
        return Some(t.as_millisecond());
    }
    let utc = |dt: jiff::civil::DateTime| {
        dt.to_zoned(jiff::tz::TimeZone::UTC)
            .ok()
            .map(|z| z.timestamp().as_millisecond())
    };
    if let Ok(dt) = text.parse::<jiff::civil::DateTime>() {
        return utc(dt);
    }
    text.parse::<jiff::civil::Date>()
        .ok()
        .and_then(|d| utc(d.to_datetime(jiff::civil::Time::midnight())))
}

/// Waits `interval`, or less if `stop` comes first.
pub async fn pause(interval: std::time::Duration, stop: &tokio_util::sync::CancellationToken) {
    tokio::select! {
        _ = tokio::time::sleep(interval) => {}
        _ = stop.cancelled() => {}
    }
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

#[cfg(test)]
mod parse_tests {
    use super::parse_time;

    #[test]
    fn timestamps_as_people_export_them() {
        let ten = 1_795_687_200_000; // 2026-11-26T10:00:00Z
        for text in [
            "1795687200000",
            "2026-11-26T10:00:00Z",
            "2026-11-26T10:00:00.000Z",
            "2026-11-26T11:00:00+01:00",
            "2026-11-26T10:00:00",
            "2026-11-26 10:00:00",
            " 2026-11-26T10:00:00Z ",
        ] {
            assert_eq!(parse_time(text), Some(ten), "{text}");
        }
        assert_eq!(parse_time("2026-11-26"), Some(ten - 10 * 3_600_000));
        for bad in ["yesterday", "2026-13-01", "", "26/11/2026"] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }
}
