//! HubSpot's limits on this side of the wire: a rolling window of requests (100 per 10 s by
//! default) that every call waits for, corrected by the `X-HubSpot-RateLimit-*` headers, and
//! when to look again once the account's daily allocation is gone. Time is tokio's, so tests
//! can pause it.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::HeaderMap;
use tokio::time::Instant;

/// After a `DAILY` 429 the connector is parked and probes again after this long, or at the next
/// UTC midnight if that comes sooner (HubSpot resets at midnight in the account's time zone,
/// which oie does not know): one request an hour is not hammering.
pub const DAILY_PROBE: Duration = Duration::from_secs(3600);

/// What the headers last said, for metrics.
#[derive(Debug, Default, Clone, Copy)]
pub struct Seen {
    pub window_max: Option<f64>,
    pub window_remaining: Option<f64>,
    pub daily: Option<f64>,
    pub daily_remaining: Option<f64>,
}

struct State {
    /// Requests allowed per window: the configured value, lowered by `-Max`.
    max: u32,
    interval: Duration,
    /// When each request of the current window started.
    sent: VecDeque<Instant>,
    /// No request before this (a 429, or `-Remaining: 0`).
    blocked_until: Option<Instant>,
    seen: Seen,
}

pub struct Window {
    configured: u32,
    state: Mutex<State>,
}

impl Window {
    pub fn new(max: u32, interval: Duration) -> Window {
        Window {
            configured: max.max(1),
            state: Mutex::new(State {
                max: max.max(1),
                interval,
                sent: VecDeque::new(),
                blocked_until: None,
                seen: Seen::default(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Plain data; a panic elsewhere cannot leave it half-written.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until one more request fits in the window, and counts it.
    pub async fn acquire(&self) {
        loop {
            let wait = {
                let mut s = self.lock();
                let now = Instant::now();
                let interval = s.interval;
                while s.sent.front().is_some_and(|t| now >= *t + interval) {
                    s.sent.pop_front();
                }
                match s.blocked_until.filter(|t| *t > now) {
                    Some(until) => until - now,
                    None if (s.sent.len() as u32) < s.max => {
                        s.sent.push_back(now);
                        return;
                    }
                    // The window is full: the oldest request leaves it first.
                    None => (s.sent[0] + interval).saturating_duration_since(now),
                }
            };
            tokio::time::sleep(wait.max(Duration::from_millis(1))).await;
        }
    }

    /// Reads the rate-limit headers of any response.
    pub fn observe(&self, headers: &HeaderMap) {
        let number = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<f64>().ok())
        };
        let mut s = self.lock();
        let max = number("x-hubspot-ratelimit-max");
        let remaining = number("x-hubspot-ratelimit-remaining");
        if let Some(ms) = number("x-hubspot-ratelimit-interval-milliseconds").filter(|m| *m > 0.0) {
            s.interval = Duration::from_millis(ms as u64);
        }
        if let Some(max) = max.filter(|m| *m >= 1.0) {
            s.max = self.configured.min(max as u32);
        }
        if remaining.is_some_and(|r| r <= 0.0) {
            // Other apps on the account spent the window: wait it out.
            let until = Instant::now() + s.interval;
            s.blocked_until = Some(s.blocked_until.map_or(until, |b| b.max(until)));
        }
        s.seen.window_max = max.or(s.seen.window_max);
        s.seen.window_remaining = remaining.or(s.seen.window_remaining);
        s.seen.daily = number("x-hubspot-ratelimit-daily").or(s.seen.daily);
        s.seen.daily_remaining =
            number("x-hubspot-ratelimit-daily-remaining").or(s.seen.daily_remaining);
    }

    /// A `TEN_SECONDLY_ROLLING` 429: nothing goes out for one window. Returns the wait.
    pub fn throttled(&self) -> Duration {
        let mut s = self.lock();
        let until = Instant::now() + s.interval;
        s.blocked_until = Some(until);
        s.interval
    }

    /// A `DAILY` 429: how long until the connector should try again.
    pub fn daily_wait(&self) -> Duration {
        until_utc_midnight(SystemTime::now()).min(DAILY_PROBE)
    }

    pub fn seen(&self) -> Seen {
        self.lock().seen
    }

    /// The current limit and window (for tests and `oie connectors check`).
    pub fn limit(&self) -> (u32, Duration) {
        let s = self.lock();
        (s.max, s.interval)
    }
}

/// Time from `now` to the next midnight UTC.
pub fn until_utc_midnight(now: SystemTime) -> Duration {
    let secs = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    Duration::from_secs(86_400 - secs % 86_400)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn at(start: Instant) -> u128 {
        start.elapsed().as_millis()
    }

    #[tokio::test(start_paused = true)]
    async fn the_window_admits_its_limit_then_waits_for_the_oldest_to_leave() {
        let w = Window::new(3, Duration::from_secs(10));
        let start = Instant::now();
        let mut times = Vec::new();
        for _ in 0..7 {
            w.acquire().await;
            times.push(at(start));
        }
        assert_eq!(times, vec![0, 0, 0, 10_000, 10_000, 10_000, 20_000]);
    }

    #[tokio::test(start_paused = true)]
    async fn headers_and_429s_hold_the_next_request() {
        let w = Window::new(100, Duration::from_secs(10));
        let start = Instant::now();
        let mut h = HeaderMap::new();
        h.insert("x-hubspot-ratelimit-max", HeaderValue::from_static("2"));
        h.insert(
            "x-hubspot-ratelimit-remaining",
            HeaderValue::from_static("0"),
        );
        h.insert(
            "x-hubspot-ratelimit-interval-milliseconds",
            HeaderValue::from_static("1000"),
        );
        w.observe(&h);
        assert_eq!(w.limit(), (2, Duration::from_secs(1)));
        w.acquire().await;
        assert_eq!(at(start), 1_000, "remaining 0: the window is spent");
        assert_eq!(w.throttled(), Duration::from_secs(1));
        w.acquire().await;
        assert_eq!(at(start), 2_000, "a 429 blocks for one window");
    }
}
