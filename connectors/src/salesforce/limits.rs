//! The org's daily API allocation as `Sforce-Limit-Info` reports it on every answer: exported,
//! used to space calls when little is left, and to park the connector when nothing is.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;

/// After `REQUEST_LIMIT_EXCEEDED` for the daily allocation, probe again after this long (the
/// allocation is a rolling 24 hours, so room comes back gradually).
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
    parked_until: Option<Instant>,
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
            let mut s = self.lock();
            s.usage = Some(usage);
            if usage.0 < usage.1 && s.parked_until.is_some() {
                tracing::info!(
                    used = usage.0,
                    limit = usage.1,
                    "Salesforce reports API room again; the connector resumes"
                );
                s.parked_until = None;
            }
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

    /// The daily allocation is gone: park until the next probe. Returns the wait.
    pub fn park(&self) -> Duration {
        self.lock().parked_until = Some(Instant::now() + DAILY_PROBE);
        DAILY_PROBE
    }

    pub fn parked_until(&self) -> Option<Instant> {
        let mut s = self.lock();
        if s.parked_until.is_some_and(|t| t <= Instant::now()) {
            s.parked_until = None;
        }
        s.parked_until
    }

    pub fn usage(&self) -> Option<(u64, u64)> {
        self.lock().usage
    }
}
