//! The circuit breaker of one connector. It judges the endpoint by its recent *requests* (a
//! batch of 100 that failed is one failed request, whatever the backlog behind it): it opens
//! when at least `min_requests` of the last [`WINDOW`] requests have answered and the share
//! that failed reaches `failure_rate`. Open, it waits a cool-down that starts at
//! [`FIRST_COOLDOWN`] and doubles with every failed probe up to `max_cooldown`; then one probe
//! goes through, and any answer showing the endpoint is alive closes it. A probe that has not
//! answered by its deadline counts as failed, so the breaker always lets something through
//! again within `probe_timeout + max_cooldown`. Pure: time (ms) is passed in.

use std::collections::VecDeque;
use std::time::Duration;

/// How many recent requests the failure rate is judged over.
pub const WINDOW: usize = 20;

/// The first cool-down after the breaker opens (shorter if `max_cooldown` is).
pub const FIRST_COOLDOWN: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// Share of failed requests among the recent ones that opens the breaker.
    pub failure_rate: f64,
    /// Requests the share needs before it counts.
    pub min_requests: usize,
    /// The longest cool-down.
    pub max_cooldown: Duration,
    /// How long a probe may take before it counts as failed.
    pub probe_timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Closed,
    /// Nothing goes out until this instant.
    Open {
        until: i64,
    },
    /// One probe is out; it counts as failed at `deadline`.
    HalfOpen {
        deadline: i64,
    },
}

/// What the dispatcher may do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permit {
    /// Send as much as batch size and concurrency allow.
    Go,
    /// Send exactly one request, as the probe.
    Probe,
    /// Ask again at this instant.
    Wait(i64),
}

/// What an answer says about the endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// It answered as a working endpoint does: a delivery, a throttle, a per-item refusal.
    Alive,
    /// No connection, no answer in time, or a server error.
    Failing,
}

/// What a probe's answer did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeResult {
    Closed,
    /// Still failing: open until this instant.
    Reopened {
        until: i64,
    },
    /// The probe had already been given up on.
    Late,
}

#[derive(Debug, Clone)]
pub struct Breaker {
    settings: Settings,
    /// The last answers, `true` for a failure.
    recent: VecDeque<bool>,
    state: State,
    cooldown: Duration,
}

impl Breaker {
    pub fn new(settings: Settings) -> Breaker {
        Breaker {
            settings,
            recent: VecDeque::with_capacity(WINDOW),
            state: State::Closed,
            cooldown: first_cooldown(&settings),
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// A metric value: 0 closed, 1 half-open, 2 open.
    pub fn gauge(&self) -> i64 {
        match self.state {
            State::Closed => 0,
            State::HalfOpen { .. } => 1,
            State::Open { .. } => 2,
        }
    }

    pub fn permit(&mut self, now: i64) -> Permit {
        match self.state {
            State::Closed => Permit::Go,
            State::Open { until } if now >= until => {
                self.state = State::HalfOpen {
                    deadline: now + ms(self.settings.probe_timeout),
                };
                Permit::Probe
            }
            State::Open { until } => Permit::Wait(until),
            State::HalfOpen { deadline } if now >= deadline => Permit::Wait(self.reopen(now)),
            State::HalfOpen { deadline } => Permit::Wait(deadline),
        }
    }

    /// An answer to a request sent while the breaker was closed. Returns `true` when this
    /// opened it. Answers arriving while it is open or half-open (requests already in flight)
    /// change nothing: only the probe decides then.
    pub fn record(&mut self, health: Health, now: i64) -> bool {
        if self.state != State::Closed {
            return false;
        }
        if self.recent.len() == WINDOW {
            self.recent.pop_front();
        }
        self.recent.push_back(health == Health::Failing);
        let failed = self.recent.iter().filter(|f| **f).count();
        let opens = self.recent.len() >= self.settings.min_requests.max(1)
            && failed as f64 >= self.settings.failure_rate * self.recent.len() as f64;
        if opens {
            self.recent.clear();
            self.state = State::Open {
                until: now + ms(self.cooldown),
            };
        }
        opens
    }

    /// The probe answered.
    pub fn probe_answered(&mut self, health: Health, now: i64) -> ProbeResult {
        if !matches!(self.state, State::HalfOpen { .. }) {
            return ProbeResult::Late;
        }
        match health {
            Health::Alive => {
                self.state = State::Closed;
                self.recent.clear();
                self.cooldown = first_cooldown(&self.settings);
                ProbeResult::Closed
            }
            Health::Failing => ProbeResult::Reopened {
                until: self.reopen(now),
            },
        }
    }

    /// The probe was not sent (nothing was due, or shutdown): the next permit gives another.
    pub fn probe_unsent(&mut self, now: i64) {
        if matches!(self.state, State::HalfOpen { .. }) {
            self.state = State::Open { until: now };
        }
    }

    /// An operator asked for a probe now (`oie connectors resume`).
    pub fn probe_now(&mut self, now: i64) {
        if let State::Open { until } = self.state {
            self.state = State::Open {
                until: until.min(now),
            };
        }
    }

    /// A failed (or lost) probe: open again, for twice as long as last time.
    fn reopen(&mut self, now: i64) -> i64 {
        self.cooldown = (self.cooldown * 2).min(self.settings.max_cooldown);
        let until = now + ms(self.cooldown);
        self.state = State::Open { until };
        until
    }
}

fn first_cooldown(settings: &Settings) -> Duration {
    FIRST_COOLDOWN.min(settings.max_cooldown)
}

/// A duration in the milliseconds the dispatcher's times are kept in.
pub(super) fn ms(d: Duration) -> i64 {
    d.as_millis() as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn settings() -> Settings {
        Settings {
            failure_rate: 0.8,
            min_requests: 5,
            max_cooldown: Duration::from_secs(30),
            probe_timeout: Duration::from_secs(10),
        }
    }

    fn failing(b: &mut Breaker, n: usize, now: i64) -> bool {
        (0..n).any(|_| b.record(Health::Failing, now))
    }

    #[test]
    fn opens_on_the_failure_rate_of_requests_not_on_a_streak() {
        let mut b = Breaker::new(settings());
        assert!(!failing(&mut b, 4, 0), "four requests are too few to judge");
        assert!(b.record(Health::Failing, 0), "five of five failed");

        // 3 of 4 failing (75 %) never opens at 80 %, however long it lasts.
        let mut b = Breaker::new(settings());
        for i in 0..100 {
            let health = if i % 4 == 0 {
                Health::Alive
            } else {
                Health::Failing
            };
            assert!(!b.record(health, i), "request {i}");
        }
        // ...but one more failure makes it 16 of the last 20 (80 %).
        assert!(b.record(Health::Failing, 200));
        assert_eq!(b.state(), State::Open { until: 1_200 });
    }

    #[test]
    fn the_cool_down_starts_short_grows_with_each_failed_probe_and_resets_on_close() {
        let mut b = Breaker::new(settings());
        failing(&mut b, 5, 0);
        let mut now = 0;
        for expected in [1, 2, 4, 8, 16, 30, 30] {
            let Permit::Wait(until) = b.permit(now) else {
                panic!("open")
            };
            assert_eq!(until - now, expected * 1000, "{b:?}");
            now = until;
            assert_eq!(b.permit(now), Permit::Probe);
            assert_eq!(b.permit(now + 1), Permit::Wait(now + 10_000), "one probe");
            b.probe_answered(Health::Failing, now);
        }
        let Permit::Wait(until) = b.permit(now) else {
            panic!("open")
        };
        assert_eq!(b.permit(until), Permit::Probe);
        assert_eq!(b.probe_answered(Health::Alive, until), ProbeResult::Closed);
        assert_eq!(b.permit(until), Permit::Go);
        failing(&mut b, 5, until);
        assert_eq!(
            b.permit(until),
            Permit::Wait(until + 1_000),
            "a fresh opening starts short again"
        );
    }

    #[test]
    fn a_probe_that_never_answers_counts_as_failed() {
        let mut b = Breaker::new(settings());
        failing(&mut b, 5, 0);
        assert_eq!(b.permit(1_000), Permit::Probe);
        assert_eq!(b.permit(5_000), Permit::Wait(11_000));
        // The deadline passed: open again, for the doubled cool-down.
        assert_eq!(b.permit(11_000), Permit::Wait(13_000));
        assert_eq!(b.permit(13_000), Permit::Probe);
        assert_eq!(b.probe_answered(Health::Alive, 13_500), ProbeResult::Closed);
    }

    #[test]
    fn answers_in_flight_while_open_change_nothing() {
        let mut b = Breaker::new(settings());
        failing(&mut b, 5, 0);
        assert!(!b.record(Health::Alive, 10));
        assert_eq!(b.state(), State::Open { until: 1_000 });
        assert_eq!(b.probe_answered(Health::Alive, 10), ProbeResult::Late);
    }

    #[test]
    fn an_unsent_probe_and_an_operator_let_the_next_one_go() {
        let mut b = Breaker::new(settings());
        failing(&mut b, 5, 0);
        assert_eq!(b.permit(1_000), Permit::Probe);
        b.probe_unsent(1_200);
        assert_eq!(b.permit(1_200), Permit::Probe);
        b.probe_answered(Health::Failing, 1_300);
        b.probe_now(1_400);
        assert_eq!(b.permit(1_400), Permit::Probe);
    }

    #[derive(Debug, Clone)]
    enum Event {
        Ask,
        Answer(bool),
        ProbeAnswer(bool),
        ProbeUnsent,
        Resume,
    }

    fn event() -> impl Strategy<Value = (Event, u32)> {
        let kind = prop_oneof![
            Just(Event::Ask),
            any::<bool>().prop_map(Event::Answer),
            any::<bool>().prop_map(Event::ProbeAnswer),
            Just(Event::ProbeUnsent),
            Just(Event::Resume),
        ];
        (kind, 0u32..120_000)
    }

    proptest! {
        /// Whatever happened, a dispatcher that only waits as told is let through again within
        /// `probe_timeout + max_cooldown`, after at most two waits, and never told to wait for
        /// longer than the longer of the two or for a time in the past.
        #[test]
        fn it_never_gets_stuck(
            rate in 0.05f64..=1.0,
            min in 1usize..=WINDOW,
            max_s in 1u64..=600,
            probe_s in 1u64..=120,
            events in proptest::collection::vec(event(), 0..300),
        ) {
            let settings = Settings {
                failure_rate: rate,
                min_requests: min,
                max_cooldown: Duration::from_secs(max_s),
                probe_timeout: Duration::from_secs(probe_s),
            };
            let bound = (max_s.max(probe_s) * 1000) as i64;
            let mut b = Breaker::new(settings);
            let mut now = 0i64;
            for (e, dt) in events {
                now += i64::from(dt);
                let health = |ok: bool| if ok { Health::Alive } else { Health::Failing };
                match e {
                    Event::Ask => { b.permit(now); }
                    Event::Answer(ok) => { b.record(health(ok), now); }
                    Event::ProbeAnswer(ok) => { b.probe_answered(health(ok), now); }
                    Event::ProbeUnsent => b.probe_unsent(now),
                    Event::Resume => b.probe_now(now),
                }
                let mut probe = b.clone();
                let mut t = now;
                let mut waits = 0;
                loop {
                    match probe.permit(t) {
                        Permit::Go | Permit::Probe => break,
                        Permit::Wait(until) => {
                            prop_assert!(until > t, "told to wait for the past: {until} <= {t}");
                            prop_assert!(until - t <= bound, "waits {} ms > {bound}", until - t);
                            waits += 1;
                            prop_assert!(waits <= 2, "{probe:?}");
                            t = until;
                        }
                    }
                }
                let most = (probe_s * 1000 + max_s * 1000) as i64;
                prop_assert!(t - now <= most, "let through after {} ms", t - now);
            }
        }
    }
}
