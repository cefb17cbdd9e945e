//! Everything that can hold a connector back, judged in one place, in this order:
//! - a **park**: the connector as a whole failed (credentials refused, a destination that is
//!   not there, HTTP 410, a used-up daily allocation). Its queue is kept; one probe goes out on
//!   a growing schedule (1 s doubling to 10 minutes, or the vendor's reset time) and the first
//!   answer that is not the same failure resumes it;
//! - a **throttle**: the destination asked for a pause (`Retry-After`);
//! - the **circuit breaker**: the endpoint's recent requests mostly failed.
//!
//! While any of them holds, queued deliveries are not attempted and spend nothing. Probes take
//! turns between the oldest due delivery (an endpoint that recovered answers it) and one that
//! walks the queue (so a delivery that fails for its own reasons cannot keep the connector held).
//! Pure: time (ms) is passed in.

use std::time::Duration;

use oie_connectors::{Effect, Failure, Outcome, Reason};

use super::breaker::{self, ms, Breaker, Permit, ProbeResult};
use super::retry::MAX_RETRY_AFTER;

/// The first wait of a park, doubled after every probe that meets the same failure...
pub const FIRST_PARK_PROBE: Duration = Duration::from_secs(1);
/// ...up to this.
pub const MAX_PARK_PROBE: Duration = Duration::from_secs(600);
/// A daily allocation without a reset time: look again after this long.
const QUOTA_PROBE: Duration = Duration::from_secs(900);

/// What one request's answer says about the connector as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// It answered as a working endpoint does: a delivery, or a refusal of an item.
    Alive,
    /// It asked to slow down (for this long, if it said).
    Throttled(Option<Duration>),
    /// No connection, no answer, or a server error, for every item of the request.
    Failing,
    /// Nothing will get through until this is fixed.
    Park(Failure),
}

impl Verdict {
    /// The verdict of a request from its items' outcomes.
    pub fn of(outcomes: &[Outcome]) -> Verdict {
        let failures = || outcomes.iter().filter_map(Outcome::failure);
        if let Some(f) = failures().find(|f| f.reason.effect() == Effect::Park) {
            return Verdict::Park(f.clone());
        }
        let alive = outcomes.iter().any(|o| match o {
            Outcome::Delivered { .. } => true,
            Outcome::Failed(f) => f.reason.effect() == Effect::DeadLetter,
        });
        if alive || outcomes.is_empty() {
            return Verdict::Alive;
        }
        let throttles: Vec<&Failure> = failures()
            .filter(|f| f.reason.effect() == Effect::Throttle)
            .collect();
        if throttles.is_empty() {
            return Verdict::Failing;
        }
        Verdict::Throttled(throttles.iter().filter_map(|f| f.after).max())
    }
}

/// Which delivery a probe takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    /// The oldest due delivery.
    Oldest,
    /// The first due delivery after this id (wrapping to the oldest).
    After(i64),
}

/// What the dispatcher may do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    Go,
    Probe(Pick),
    Wait(i64),
}

/// A connector parked by a connector-wide failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Park {
    pub failure: Failure,
    pub since: i64,
    pub next_probe: i64,
    wait: Duration,
    /// A probe is out; it counts as lost at this instant.
    probe_deadline: Option<i64>,
}

/// A change worth a log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Parked(Failure),
    Resumed { parked_for_ms: i64 },
    Opened,
    Closed,
    Throttled { until: i64 },
}

/// The state shown in `oie_connector_state` and `oie connectors status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Label {
    Ok,
    Throttled,
    Open,
    HalfOpen,
    Parked,
}

impl Label {
    pub const ALL: [Label; 5] = [
        Label::Ok,
        Label::Throttled,
        Label::Open,
        Label::HalfOpen,
        Label::Parked,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Label::Ok => "ok",
            Label::Throttled => "throttled",
            Label::Open => "open",
            Label::HalfOpen => "half_open",
            Label::Parked => "parked",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Health {
    breaker: Breaker,
    probe_timeout: Duration,
    throttle_until: Option<i64>,
    park: Option<Park>,
    /// Probes so far (even: the oldest, odd: the walker), and where the walker is.
    probes: u64,
    cursor: i64,
}

impl Health {
    pub fn new(settings: breaker::Settings) -> Health {
        Health {
            breaker: Breaker::new(settings),
            probe_timeout: settings.probe_timeout,
            throttle_until: None,
            park: None,
            probes: 0,
            cursor: 0,
        }
    }

    pub fn gate(&mut self, now: i64) -> Gate {
        if let Some(park) = &mut self.park {
            return match park.probe_deadline {
                Some(deadline) if now < deadline => Gate::Wait(deadline),
                Some(_) => {
                    // The probe was lost: try again on the schedule.
                    park.probe_deadline = None;
                    park.next_probe = now + park_wait(&park.failure, &mut park.wait);
                    Gate::Wait(park.next_probe)
                }
                None if now >= park.next_probe => {
                    park.probe_deadline = Some(now + ms(self.probe_timeout));
                    Gate::Probe(self.pick())
                }
                None => Gate::Wait(park.next_probe),
            };
        }
        match self.throttle_until {
            Some(until) if now < until => return Gate::Wait(until),
            Some(_) => self.throttle_until = None,
            None => {}
        }
        match self.breaker.permit(now) {
            Permit::Go => Gate::Go,
            Permit::Probe => Gate::Probe(self.pick()),
            Permit::Wait(until) => Gate::Wait(until),
        }
    }

    fn pick(&mut self) -> Pick {
        self.probes += 1;
        if self.probes % 2 == 1 {
            Pick::Oldest
        } else {
            Pick::After(self.cursor)
        }
    }

    /// The probe took delivery `id`.
    pub fn probed(&mut self, pick: Pick, id: i64) {
        if let Pick::After(_) = pick {
            self.cursor = id;
        }
    }

    /// The probe found nothing due to send, or was not sent: the next gate may probe again.
    pub fn probe_unsent(&mut self, now: i64) {
        if let Some(park) = &mut self.park {
            park.probe_deadline = None;
            park.next_probe = park.next_probe.min(now);
        } else {
            self.breaker.probe_unsent(now);
        }
    }

    /// An operator asked to probe now (`oie connectors resume`).
    pub fn resume_now(&mut self, now: i64) {
        if let Some(park) = &mut self.park {
            if park.probe_deadline.is_none() {
                park.next_probe = now;
            }
        }
        self.throttle_until = None;
        self.breaker.probe_now(now);
    }

    /// Takes in what one request's answer says; `probe` when it was the probe.
    pub fn answered(&mut self, verdict: &Verdict, probe: bool, now: i64) -> Vec<Change> {
        let mut changes = Vec::new();
        if let Some(park) = &mut self.park {
            if !probe {
                return changes; // sent before the park; the probe decides
            }
            if let Verdict::Park(failure) = verdict {
                park.probe_deadline = None;
                park.failure = failure.clone();
                park.next_probe = now + park_wait(failure, &mut park.wait);
                return changes;
            }
            changes.push(Change::Resumed {
                parked_for_ms: now - park.since,
            });
            self.park = None;
            // The probe's answer also counts as an ordinary request from here on.
            self.closed_answer(verdict, now, &mut changes);
            return changes;
        }
        if let Verdict::Park(failure) = verdict {
            let mut wait = FIRST_PARK_PROBE;
            let first = park_wait(failure, &mut wait);
            self.park = Some(Park {
                failure: failure.clone(),
                since: now,
                next_probe: now + first,
                wait,
                probe_deadline: None,
            });
            changes.push(Change::Parked(failure.clone()));
            return changes;
        }
        if probe {
            let health = match verdict {
                Verdict::Failing => breaker::Health::Failing,
                _ => breaker::Health::Alive,
            };
            if self.breaker.probe_answered(health, now) == ProbeResult::Closed {
                changes.push(Change::Closed);
            }
            self.throttle(verdict, now, &mut changes);
        } else {
            self.closed_answer(verdict, now, &mut changes);
        }
        changes
    }

    fn closed_answer(&mut self, verdict: &Verdict, now: i64, changes: &mut Vec<Change>) {
        let health = match verdict {
            Verdict::Failing => breaker::Health::Failing,
            _ => breaker::Health::Alive,
        };
        if self.breaker.record(health, now) {
            changes.push(Change::Opened);
        }
        self.throttle(verdict, now, changes);
    }

    /// A `Retry-After` holds the whole connector until then: the destination asked for it.
    fn throttle(&mut self, verdict: &Verdict, now: i64, changes: &mut Vec<Change>) {
        if let Verdict::Throttled(Some(after)) = verdict {
            let until = now + ms((*after).min(MAX_RETRY_AFTER));
            if self.throttle_until.is_none_or(|t| t < until) {
                self.throttle_until = Some(until);
                changes.push(Change::Throttled { until });
            }
        }
    }

    pub fn label(&self, now: i64) -> Label {
        if self.park.is_some() {
            return Label::Parked;
        }
        if self.throttle_until.is_some_and(|t| t > now) {
            return Label::Throttled;
        }
        match self.breaker.state() {
            breaker::State::Closed => Label::Ok,
            breaker::State::Open { .. } => Label::Open,
            breaker::State::HalfOpen { .. } => Label::HalfOpen,
        }
    }

    /// Whether requests may go out now (nothing holds the connector), without changing anything.
    pub fn open(&self, now: i64) -> bool {
        self.label(now) == Label::Ok
    }

    pub fn park(&self) -> Option<&Park> {
        self.park.as_ref()
    }

    /// When the connector will next try something, while it is held.
    pub fn next_try(&self, now: i64) -> Option<i64> {
        if let Some(park) = &self.park {
            return Some(park.probe_deadline.unwrap_or(park.next_probe));
        }
        if let Some(until) = self.throttle_until.filter(|t| *t > now) {
            return Some(until);
        }
        match self.breaker.state() {
            breaker::State::Closed => None,
            breaker::State::Open { until } => Some(until),
            breaker::State::HalfOpen { deadline } => Some(deadline),
        }
    }

    pub fn breaker_gauge(&self) -> i64 {
        self.breaker.gauge()
    }
}

/// The wait before the next park probe: the vendor's reset for a used-up allocation, otherwise
/// the growing schedule.
fn park_wait(failure: &Failure, wait: &mut Duration) -> i64 {
    if failure.reason == Reason::Quota {
        return ms(failure
            .after
            .unwrap_or(QUOTA_PROBE)
            .min(Duration::from_secs(86_400)));
    }
    let this = *wait;
    *wait = (*wait * 2).min(MAX_PARK_PROBE);
    ms(this)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health() -> Health {
        Health::new(breaker::Settings {
            failure_rate: 0.8,
            min_requests: 5,
            max_cooldown: Duration::from_secs(30),
            probe_timeout: Duration::from_secs(10),
        })
    }

    fn fail(reason: Reason) -> Outcome {
        Outcome::failed(reason, "x")
    }

    #[test]
    fn verdicts_of_requests() {
        let delivered = Outcome::Delivered { record_id: None };
        assert_eq!(Verdict::of(&[]), Verdict::Alive);
        assert_eq!(
            Verdict::of(&[fail(Reason::Timeout), delivered]),
            Verdict::Alive
        );
        assert_eq!(
            Verdict::of(&[fail(Reason::InvalidItem), fail(Reason::ServerError)]),
            Verdict::Alive,
            "a per-item refusal is an answer"
        );
        assert_eq!(
            Verdict::of(&[fail(Reason::Transport), fail(Reason::ServerError)]),
            Verdict::Failing
        );
        let later = Outcome::Failed(
            Failure::new(Reason::Throttled, "429").after(Some(Duration::from_secs(3))),
        );
        assert_eq!(
            Verdict::of(&[fail(Reason::Throttled), later]),
            Verdict::Throttled(Some(Duration::from_secs(3)))
        );
        assert!(matches!(
            Verdict::of(&[fail(Reason::InvalidItem), fail(Reason::Auth)]),
            Verdict::Park(f) if f.reason == Reason::Auth
        ));
    }

    #[test]
    fn a_park_probes_on_a_growing_schedule_and_resumes_on_another_answer() {
        let mut h = health();
        let auth = Verdict::Park(Failure::new(Reason::Auth, "401"));
        assert_eq!(
            h.answered(&auth, false, 0),
            vec![Change::Parked(Failure::new(Reason::Auth, "401"))]
        );
        assert_eq!(h.label(0), Label::Parked);
        // Answers of requests sent before the park do not lift it.
        assert!(h.answered(&Verdict::Alive, false, 10).is_empty());
        let mut now = 0;
        for wait in [1, 2, 4, 8, 16] {
            assert_eq!(h.gate(now), Gate::Wait(now + wait * 1000));
            now += wait * 1000;
            assert!(matches!(h.gate(now), Gate::Probe(_)));
            assert_eq!(
                h.gate(now + 5),
                Gate::Wait(now + 10_000),
                "one probe at a time"
            );
            h.answered(&auth, true, now);
        }
        assert_eq!(h.park().unwrap().next_probe, now + 32_000);
        h.resume_now(now + 100);
        assert!(matches!(h.gate(now + 100), Gate::Probe(_)));
        let changes = h.answered(&Verdict::Alive, true, now + 200);
        assert_eq!(
            changes,
            vec![Change::Resumed {
                parked_for_ms: now + 200
            }]
        );
        assert_eq!(h.gate(now + 200), Gate::Go);
    }

    #[test]
    fn the_park_schedule_stops_growing_at_ten_minutes() {
        let mut h = health();
        let gone = Verdict::Park(Failure::new(Reason::Gone, "410"));
        h.answered(&gone, false, 0);
        let mut now = 0;
        let mut last = 0;
        for _ in 0..15 {
            let Gate::Wait(at) = h.gate(now) else {
                panic!("parked")
            };
            last = at - now;
            now = at;
            assert!(matches!(h.gate(now), Gate::Probe(_)));
            h.answered(&gone, true, now);
        }
        assert_eq!(last, 600_000);
    }

    #[test]
    fn a_lost_park_probe_is_rescheduled() {
        let mut h = health();
        h.answered(
            &Verdict::Park(Failure::new(Reason::NotFound, "404")),
            false,
            0,
        );
        assert!(matches!(h.gate(1_000), Gate::Probe(_)));
        assert_eq!(h.gate(11_000), Gate::Wait(13_000));
        assert!(matches!(h.gate(13_000), Gate::Probe(_)));
    }

    #[test]
    fn quota_waits_for_the_vendor_reset() {
        let mut h = health();
        let quota = Failure::new(Reason::Quota, "DAILY").after(Some(Duration::from_secs(3600)));
        h.answered(&Verdict::Park(quota), false, 0);
        assert_eq!(h.gate(0), Gate::Wait(3_600_000));
    }

    #[test]
    fn retry_after_holds_the_connector_and_a_throttled_probe_closes_the_breaker() {
        let mut h = health();
        for _ in 0..5 {
            h.answered(&Verdict::Failing, false, 0);
        }
        assert_eq!(h.label(0), Label::Open);
        assert_eq!(h.gate(1_000), Gate::Probe(Pick::Oldest));
        let changes = h.answered(
            &Verdict::Throttled(Some(Duration::from_secs(1))),
            true,
            1_100,
        );
        assert_eq!(
            changes,
            vec![Change::Closed, Change::Throttled { until: 2_100 }]
        );
        assert_eq!(h.label(1_500), Label::Throttled);
        assert_eq!(h.gate(1_500), Gate::Wait(2_100));
        assert_eq!(h.gate(2_100), Gate::Go);
        assert_eq!(h.label(2_100), Label::Ok);
    }

    #[test]
    fn probes_take_turns_between_the_oldest_and_a_walker() {
        let mut h = health();
        for _ in 0..5 {
            h.answered(&Verdict::Failing, false, 0);
        }
        let mut now = 1_000;
        let mut picks = Vec::new();
        for id in [7, 8, 7, 9, 7] {
            let Gate::Probe(pick) = h.gate(now) else {
                panic!("probe at {now}")
            };
            picks.push(pick);
            h.probed(pick, id);
            h.answered(&Verdict::Failing, true, now);
            let Gate::Wait(at) = h.gate(now) else {
                panic!("open")
            };
            now = at;
        }
        assert_eq!(
            picks,
            vec![
                Pick::Oldest,
                Pick::After(0),
                Pick::Oldest,
                Pick::After(8),
                Pick::Oldest
            ]
        );
    }
}
