//! The retry policy: what an attempt's outcome means for its delivery. Pure, so it is tested
//! without a clock or a network.
//!
//! - Delivered: done. A refused item (`invalid_item`): a dead letter at once.
//! - A failure of the connector as a whole (`auth`, `not_found`, `gone`, `redirect`, `quota`):
//!   the delivery is **held** — back in the queue as it was, nothing spent; the connector parks.
//! - A throttle: tried again after `Retry-After` (or the backoff), without spending an attempt.
//! - `transport`, `timeout`, `server_error`: tried again after the backoff; this spends an
//!   attempt, and `max_attempts` or `max_age` end it as a dead letter. A probe that failed this
//!   way spends nothing: it asked about the endpoint, not the delivery.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use oie_connectors::{Effect, Outcome};

use crate::outbox::{Applied, Claimed};

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

/// How the attempt was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Normal,
    /// While the connector was held, to see whether it still should be.
    Probe,
}

impl RetryPolicy {
    /// The capped exponential delay before try `tries + 1` (no jitter).
    pub fn ceiling(&self, tries: u32) -> Duration {
        ExponentialBuilder::default()
            .with_min_delay(self.base)
            .with_max_delay(self.cap)
            .with_factor(2.0)
            .without_max_times()
            .build()
            .nth(tries.saturating_sub(1) as usize)
            .unwrap_or(self.cap)
    }

    /// Full jitter: a uniform delay in `[0, ceiling]`; `unit` is a random number in `[0, 1)`.
    pub fn backoff(&self, tries: u32, unit: f64) -> Duration {
        self.ceiling(tries).mul_f64(unit.clamp(0.0, 1.0))
    }

    /// What to do with delivery `c` after an attempt ended with `outcome` at `now` (ms).
    pub fn decide(
        &self,
        outcome: &Outcome,
        c: &Claimed,
        mode: Mode,
        now: i64,
        unit: f64,
    ) -> Applied {
        let f = match outcome {
            Outcome::Delivered { record_id } => {
                return Applied::Delivered {
                    record_id: record_id.clone(),
                }
            }
            Outcome::Failed(f) => f,
        };
        let (reason, error) = (f.reason, f.detail.clone());
        let tries = c.tries + 1;
        let later = |delay: Duration| now + delay.as_millis() as i64;
        let (next_at, counted) = match (reason.effect(), mode) {
            (Effect::DeadLetter, _) => return Applied::Dead { reason, error },
            (Effect::Park, _) => return Applied::Held { reason, error },
            // No answer to a probe: the endpoint is still down; this delivery waits at the head.
            (Effect::Retry, Mode::Probe) if !reason.answered() => {
                return Applied::Held { reason, error }
            }
            (Effect::Retry, Mode::Probe) => (later(self.backoff(tries, unit)), false),
            (Effect::Throttle, _) => (later(self.delay(f.after, tries, unit)), false),
            (Effect::Retry, Mode::Normal) => {
                let attempt = c.attempts + 1;
                if attempt >= self.max_attempts {
                    return Applied::Dead {
                        reason,
                        error: format!("gave up after {attempt} attempts: {error}"),
                    };
                }
                (later(self.delay(f.after, tries, unit)), true)
            }
        };
        if next_at - c.created_at > self.max_age.as_millis() as i64 {
            return Applied::Dead {
                reason,
                error: format!(
                    "gave up: max_age {} reached: {error}",
                    humantime::format_duration(self.max_age)
                ),
            };
        }
        Applied::Retry {
            next_at,
            counted,
            reason,
            error,
        }
    }

    /// `Retry-After` first (clamped), else the jittered backoff.
    fn delay(&self, after: Option<Duration>, tries: u32, unit: f64) -> Duration {
        match after {
            Some(after) => after.min(MAX_RETRY_AFTER),
            None => self.backoff(tries, unit),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oie_connectors::{Failure, Reason};

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 5,
            max_age: Duration::from_secs(3600),
            base: Duration::from_secs(1),
            cap: Duration::from_secs(10),
        }
    }

    fn claimed(attempts: u32, tries: u32) -> Claimed {
        Claimed {
            id: 1,
            key: "k".into(),
            route: "r".into(),
            visitor_id: "v".into(),
            payload: "{}".into(),
            attempts,
            tries,
            created_at: 0,
            group_key: None,
            context: None,
            trigger_kind: "hot_lead".into(),
            origin_at: None,
        }
    }

    fn failed(reason: Reason, after: Option<u64>) -> Outcome {
        Outcome::Failed(Failure::new(reason, "said no").after(after.map(Duration::from_secs)))
    }

    fn retry(next_at: i64, counted: bool, reason: Reason) -> Applied {
        Applied::Retry {
            next_at,
            counted,
            reason,
            error: "said no".into(),
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
    fn failures_of_the_endpoint_spend_attempts_and_back_off() {
        let p = policy();
        let normal = |o: &Outcome, c: &Claimed| p.decide(o, c, Mode::Normal, 1_000, 0.5);
        // Jittered backoff from the number of tries so far.
        assert_eq!(
            normal(&failed(Reason::ServerError, None), &claimed(1, 1)),
            retry(2_000, true, Reason::ServerError)
        );
        // Retry-After comes first, clamped to an hour.
        assert_eq!(
            normal(&failed(Reason::Timeout, Some(2)), &claimed(0, 0)),
            retry(3_000, true, Reason::Timeout)
        );
        assert!(matches!(
            p.decide(
                &failed(Reason::Throttled, Some(999_999)),
                &claimed(0, 0),
                Mode::Normal,
                0,
                0.5
            ),
            Applied::Retry {
                next_at: 3_600_000,
                ..
            }
        ));
        // The last attempt gives up, and says so.
        assert_eq!(
            normal(&failed(Reason::Transport, None), &claimed(4, 9)),
            Applied::Dead {
                reason: Reason::Transport,
                error: "gave up after 5 attempts: said no".into()
            }
        );
        // So does a retry that would land past max_age.
        let old = p.decide(
            &failed(Reason::ServerError, Some(120)),
            &claimed(1, 1),
            Mode::Normal,
            3_500_000,
            0.5,
        );
        assert!(
            matches!(&old, Applied::Dead { error, .. } if error.contains("max_age 1h reached")),
            "{old:?}"
        );
    }

    #[test]
    fn throttles_held_connectors_and_probes_spend_nothing() {
        let p = policy();
        // A throttle is retried without spending an attempt, even at the last one.
        assert_eq!(
            p.decide(
                &failed(Reason::Throttled, Some(3)),
                &claimed(4, 4),
                Mode::Normal,
                0,
                0.5
            ),
            retry(3_000, false, Reason::Throttled)
        );
        // A connector-wide failure holds the delivery where it was.
        for reason in [Reason::Auth, Reason::NotFound, Reason::Gone, Reason::Quota] {
            assert_eq!(
                p.decide(&failed(reason, None), &claimed(4, 4), Mode::Normal, 0, 0.5),
                Applied::Held {
                    reason,
                    error: "said no".into()
                }
            );
        }
        // A probe with no answer holds it; one answered with an error backs it off, free.
        assert!(matches!(
            p.decide(
                &failed(Reason::Transport, None),
                &claimed(4, 4),
                Mode::Probe,
                0,
                0.5
            ),
            Applied::Held { .. }
        ));
        assert_eq!(
            p.decide(
                &failed(Reason::ServerError, None),
                &claimed(4, 1),
                Mode::Probe,
                0,
                0.5
            ),
            retry(1_000, false, Reason::ServerError)
        );
    }

    #[test]
    fn refusals_are_dead_at_once_and_deliveries_are_done() {
        let p = policy();
        assert_eq!(
            p.decide(
                &failed(Reason::InvalidItem, None),
                &claimed(0, 0),
                Mode::Normal,
                0,
                0.0
            ),
            Applied::Dead {
                reason: Reason::InvalidItem,
                error: "said no".into()
            }
        );
        assert_eq!(
            p.decide(
                &Outcome::Delivered {
                    record_id: Some("x".into())
                },
                &claimed(0, 0),
                Mode::Probe,
                0,
                0.0
            ),
            Applied::Delivered {
                record_id: Some("x".into())
            }
        );
    }
}
