//! A circuit breaker per connector: opens after repeated failures, lets one probe through after
//! a cool-down, and closes when the probe succeeds. Pure: time is passed in.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Closed,
    /// No attempts until this instant (ms).
    Open {
        until: i64,
    },
    /// One probe is out; nothing else until it answers.
    HalfOpen,
}

/// What the dispatcher may do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permit {
    /// Claim as much as batch size and concurrency allow.
    Go,
    /// Claim exactly one delivery, as a probe.
    Probe,
    /// Wait until this instant (ms), or for the probe's answer when `None`.
    Wait(Option<i64>),
}

#[derive(Debug, Clone)]
pub struct Breaker {
    threshold: u32,
    cooldown: Duration,
    failures: u32,
    state: State,
}

impl Breaker {
    pub fn new(threshold: u32, cooldown: Duration) -> Breaker {
        Breaker {
            threshold: threshold.max(1),
            cooldown,
            failures: 0,
            state: State::Closed,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// A metric value: 0 closed, 1 half-open, 2 open.
    pub fn gauge(&self) -> i64 {
        match self.state {
            State::Closed => 0,
            State::HalfOpen => 1,
            State::Open { .. } => 2,
        }
    }

    pub fn permit(&mut self, now: i64) -> Permit {
        match self.state {
            State::Closed => Permit::Go,
            State::Open { until } if now >= until => {
                self.state = State::HalfOpen;
                Permit::Probe
            }
            State::Open { until } => Permit::Wait(Some(until)),
            State::HalfOpen => Permit::Wait(None),
        }
    }

    /// The destination answered (delivered, or refused the payload itself).
    pub fn success(&mut self) {
        self.failures = 0;
        self.state = State::Closed;
    }

    /// An attempt failed in a way that says the destination is unwell. Returns true when this
    /// opened the circuit.
    pub fn failure(&mut self, now: i64) -> bool {
        self.failures += 1;
        let opens = self.state == State::HalfOpen || self.failures >= self.threshold;
        if opens {
            self.state = State::Open {
                until: now + self.cooldown.as_millis() as i64,
            };
            self.failures = 0;
        }
        opens
    }

    /// A probe that was not sent (shutdown): let the next one go.
    pub fn probe_released(&mut self, now: i64) {
        if self.state == State::HalfOpen {
            self.state = State::Open { until: now };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_probes_and_closes() {
        let mut b = Breaker::new(3, Duration::from_secs(30));
        assert_eq!(b.permit(0), Permit::Go);
        assert!(!b.failure(0));
        assert!(!b.failure(0));
        assert!(b.failure(1_000), "third failure opens");
        assert_eq!(b.permit(2_000), Permit::Wait(Some(31_000)));
        assert_eq!(b.permit(31_000), Permit::Probe);
        assert_eq!(b.permit(31_001), Permit::Wait(None), "one probe at a time");
        b.success();
        assert_eq!(b.permit(31_002), Permit::Go);
    }

    #[test]
    fn a_failed_probe_reopens() {
        let mut b = Breaker::new(1, Duration::from_secs(10));
        b.failure(0);
        assert_eq!(b.permit(10_000), Permit::Probe);
        assert!(b.failure(10_500));
        assert_eq!(b.permit(11_000), Permit::Wait(Some(20_500)));
    }

    #[test]
    fn success_resets_the_count() {
        let mut b = Breaker::new(2, Duration::from_secs(10));
        b.failure(0);
        b.success();
        assert!(!b.failure(0));
        assert_eq!(b.state(), State::Closed);
    }
}
