//! The org's daily API allocation as `Sforce-Limit-Info` reports it on every answer: exported,
//! used to space calls when little is left, and to tell a used-up allocation from too many
//! concurrent requests. Time is tokio's, so tests can pause it.

use std::sync::Mutex;
use std::time::Duration;

use reqwest::header::HeaderMap;
use tokio::time::Instant;

/// After `REQUEST_LIMIT_EXCEEDED` for the daily allocation, the connector is parked and probes
/// again after this long (the allocation is a rolling 24 hours, so room comes back gradually).
pub const DAILY_PROBE: Duration = Duration::from_secs(15 * 60);

/// The longest gap the headroom pacing puts between two calls.
const MAX_SPACING: Duration = Duration::from_secs(15 * 60);

/// `api-usage=10018/100000` → (10018, 100000).
pub fn parse_limit_info(value: &str) -> Option<(u64, u64)> {
    let usage = value
        .split(',')
        .map(str::trim)
        .find_map(|part| part.strip_prefix("api-usage="))?;
    let (used, limit) = usage.split_once('/')?;
    Some((used.trim().parse().ok()?, limit.trim().parse().ok()?))
}

/// The gap between calls that makes what is left above zero last a day, once less than
/// `headroom` of the allocation is left; `None` while there is room.
pub fn spacing(used: u64, limit: u64, headroom: f64) -> Option<Duration> {
    let left = limit.saturating_sub(used);
    if limit == 0 || left as f64 > headroom * limit as f64 {
        return None;
    }
    let gap = Duration::from_secs(86_400) / (left.max(1) as u32);
    Some(gap.min(MAX_SPACING))
}

#[derive(Default)]
struct State {
    usage: Option<(u64, u64)>,
    next_call: Option<Instant>,
}

pub struct Limits {
    headroom: f64,
    state: Mutex<State>,
}

impl Limits {
    pub fn new(headroom: f64) -> Limits {
        Limits {
            headroom,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Plain data; a panic elsewhere cannot leave it half-written.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn observe(&self, headers: &HeaderMap) {
        let usage = headers
            .get("sforce-limit-info")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_limit_info);
        if let Some(usage) = usage {
            self.lock().usage = Some(usage);
        }
    }

    /// Waits for this call's turn when the headroom is used up.
    pub async fn pace(&self) {
        let wait = {
            let mut s = self.lock();
            let Some(gap) = s.usage.and_then(|(u, l)| spacing(u, l, self.headroom)) else {
                return;
            };
            let now = Instant::now();
            let at = s.next_call.filter(|t| *t > now).unwrap_or(now);
            s.next_call = Some(at + gap);
            at - now
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// Whether the last `Sforce-Limit-Info` showed the allocation used up.
    pub fn exhausted(&self) -> bool {
        self.lock().usage.is_some_and(|(u, l)| u >= l)
    }

    pub fn usage(&self) -> Option<(u64, u64)> {
        self.lock().usage
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[tokio::test(start_paused = true)]
    async fn below_the_headroom_calls_are_spaced_so_the_rest_lasts_a_day() {
        let limits = Limits::new(0.10);
        let start = Instant::now();
        limits.pace().await;
        assert_eq!(start.elapsed(), Duration::ZERO, "no usage known: no pacing");
        let mut h = HeaderMap::new();
        // 86,400 calls left would be one a second; 100 left of 100,000 is one per 864 s,
        // capped at 15 minutes.
        h.insert(
            "sforce-limit-info",
            HeaderValue::from_static("api-usage=99000/100000"),
        );
        limits.observe(&h);
        let mut times = Vec::new();
        for _ in 0..3 {
            limits.pace().await;
            times.push(start.elapsed().as_millis());
        }
        assert_eq!(
            times,
            vec![0, 86_400, 172_800],
            "86,400 s / 1,000 calls left"
        );
        h.insert(
            "sforce-limit-info",
            HeaderValue::from_static("api-usage=100000/100000"),
        );
        limits.observe(&h);
        assert!(limits.exhausted());
    }
}
