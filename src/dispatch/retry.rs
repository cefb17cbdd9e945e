//! The retry policy: pure, so it is tested without a clock or a network.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use oie_connectors::Outcome;

use crate::outbox::Applied;

/// `Retry-After` is honoured up to this long; a larger value is clamped.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// When to retry and when to give up.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub max_age: Duration,
    pub base: Duration,
    pub cap: Duration,
}

impl RetryPolicy {
    /// The capped exponential delay before attempt `attempt + 1` (no jitter).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        ExponentialBuilder::default()
            .with_min_delay(self.base)
            .with_max_delay(self.cap)
            .with_factor(2.0)
            .without_max_times()
            .build()
            .nth(attempt.saturating_sub(1) as usize)
            .unwrap_or(self.cap)
    }

    /// Full jitter: a uniform delay in `[0, ceiling]`; `unit` is a random number in `[0, 1)`.
    pub fn backoff(&self, attempt: u32, unit: f64) -> Duration {
        self.ceiling(attempt).mul_f64(unit.clamp(0.0, 1.0))
    }

    /// What to do after attempt number `attempt` (1-based) of a delivery created at
    /// `created_at` ended with `outcome` at `now` (milliseconds).
    pub fn decide(
        &self,
        outcome: &Outcome,
        attempt: u32,
        created_at: i64,
        now: i64,
        unit: f64,
    ) -> Applied {
        match outcome {
            Outcome::Delivered { record_id } => Applied::Delivered {
                record_id: record_id.clone(),
            },
            Outcome::Permanent { reason } | Outcome::Gone { reason } => Applied::Dead {
                error: reason.clone(),
            },
            Outcome::Retry { reason, after } => {
                self.retry(reason, *after, attempt, created_at, now, unit)
            }
        }
    }

    fn retry(
        &self,
        reason: &str,
        after: Option<Duration>,
        attempt: u32,
        created_at: i64,
        now: i64,
        unit: f64,
    ) -> Applied {
        if attempt >= self.max_attempts {
            return Applied::Dead {
                error: format!("gave up after {attempt} attempts: {reason}"),
            };
        }
        let delay = match after {
            Some(after) => after.min(MAX_RETRY_AFTER),
            None => self.backoff(attempt, unit),
        };
        let next_at = now + delay.as_millis() as i64;
        if next_at - created_at > self.max_age.as_millis() as i64 {
            return Applied::Dead {
                error: format!(
                    "gave up after {attempt} attempts: max_age {} reached: {reason}",
                    humantime::format_duration(self.max_age)
                ),
            };
        }
        Applied::Retry {
            next_at,
            error: reason.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 5,
            max_age: Duration::from_secs(3600),
            base: Duration::from_secs(1),
            cap: Duration::from_secs(10),
        }
    }

    #[test]
    fn ceiling_doubles_up_to_the_cap() {
        let p = policy();
        let secs: Vec<u64> = (1..=6).map(|a| p.ceiling(a).as_secs()).collect();
        assert_eq!(secs, vec![1, 2, 4, 8, 10, 10]);
    }

    #[test]
    fn full_jitter_spans_zero_to_the_ceiling() {
        let p = policy();
        assert_eq!(p.backoff(3, 0.0), Duration::ZERO);
        assert_eq!(p.backoff(3, 0.5), Duration::from_secs(2));
        assert!(p.backoff(3, 0.999) < Duration::from_secs(4));
    }

    #[test]
    fn decisions() {
        let p = policy();
        let retry = |after: Option<u64>| Outcome::Retry {
            reason: "http_503: busy".into(),
            after: after.map(Duration::from_secs),
        };
        // Retry-After comes first.
        assert_eq!(
            p.decide(&retry(Some(2)), 1, 0, 1_000, 0.9),
            Applied::Retry {
                next_at: 3_000,
                error: "http_503: busy".into()
            }
        );
        // ...clamped to an hour.
        let Applied::Retry { next_at, .. } = p.decide(&retry(Some(999_999)), 1, 0, 0, 0.0) else {
            panic!()
        };
        assert_eq!(next_at, 3_600_000);
        // Jittered backoff without it.
        assert_eq!(
            p.decide(&retry(None), 2, 0, 1_000, 0.5),
            Applied::Retry {
                next_at: 2_000,
                error: "http_503: busy".into()
            }
        );
        // The last attempt gives up.
        assert_eq!(
            p.decide(&retry(None), 5, 0, 1_000, 0.5),
            Applied::Dead {
                error: "gave up after 5 attempts: http_503: busy".into()
            }
        );
        // So does a retry that would land past max_age.
        let Applied::Dead { error } = p.decide(&retry(Some(120)), 2, 0, 3_500_000, 0.5) else {
            panic!()
        };
        assert!(error.contains("max_age 1h reached"), "{error}");
        // Permanent and gone: dead at once.
        assert!(matches!(
            p.decide(&Outcome::permanent("http_400: bad"), 1, 0, 0, 0.0),
            Applied::Dead { .. }
        ));
        assert!(matches!(
            p.decide(
                &Outcome::Gone {
                    reason: "gone".into()
                },
                1,
                0,
                0,
                0.0
            ),
            Applied::Dead { .. }
        ));
        assert_eq!(
            p.decide(
                &Outcome::Delivered {
                    record_id: Some("x".into())
                },
                1,
                0,
                0,
                0.0
            ),
            Applied::Delivered {
                record_id: Some("x".into())
            }
        );
    }
}
