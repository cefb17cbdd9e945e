//! Synthetic visitor journeys for demos and load: three archetypes whose scores are known, so
//! a run's expected share of hot leads is exact.
//!
//! | archetype (share) | journey | score |
//! |---|---|---|
//! | bouncer (50 %) | lands from the e-mail link, reads 20 s, leaves | 30 + 4 + 1.5 + 0.33 = 35.8 → 36, cold |
//! | researcher (30 %) | home, a case study, the blog, reads 1 min | 30 + 4 + 4.5 + 1 + 5 = 44.5 → 45, warm |
//! | buyer (20 %) | a product tour 3 days ago, then today pricing twice, 3 min, a demo request | 30 + 8 + 6 + 3 + 20 + 15 = 82, burning |

use serde_json::{json, Value};

use crate::clock::now_ms;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Archetype {
    Bouncer,
    Researcher,
    Buyer,
}

impl Archetype {
    /// Visitor `i`'s archetype: 2 buyers, 3 researchers and 5 bouncers in every 10.
    pub fn of(i: usize) -> Archetype {
        match i % 10 {
            0 | 5 => Archetype::Buyer,
            1 | 4 | 7 => Archetype::Researcher,
            _ => Archetype::Bouncer,
        }
    }

    pub fn is_hot(self) -> bool {
        self == Archetype::Buyer
    }
}

/// The `/track` body of visitor `id`'s journey (archetype of `i`), at `now`.
pub fn journey(i: usize, id: &str, now: i64) -> Value {
    const DAY: i64 = 86_400_000;
    let mut events = Vec::new();
    let mut push = |session: &str, ago: i64, kind: &str, path: &str, data: Value| {
        let n = events.len();
        let mut e = json!({"eventId": format!("{id}-{n}"), "type": kind, "timestamp": now - ago,
            "sessionId": format!("{id}-{session}"), "visitorId": id, "url": format!("https://www.acme.example{path}"),
            "path": path, "title": "Acme"});
        if !data.is_null() {
            e["data"] = data;
        }
        events.push(e);
    };
    match Archetype::of(i) {
        Archetype::Bouncer => {
            push("s1", 30_000, "pageview", "/", Value::Null);
            push(
                "s1",
                10_000,
                "page_exit",
                "/",
                json!({"activeMs": 20_000, "maxScrollDepth": 25}),
            );
        }
        Archetype::Researcher => {
            push("s1", 90_000, "pageview", "/", Value::Null);
            push("s1", 80_000, "pageview", "/case-studies/acme", Value::Null);
            push(
                "s1",
                70_000,
                "scroll_depth",
                "/case-studies/acme",
                json!({"depth": 50}),
            );
            push("s1", 40_000, "pageview", "/blog/intent-data", Value::Null);
            push(
                "s1",
                10_000,
                "page_exit",
                "/blog/intent-data",
                json!({"activeMs": 60_000, "maxScrollDepth": 50}),
            );
        }
        Archetype::Buyer => {
            push("s1", 3 * DAY, "pageview", "/product/tour", Value::Null);
            push("s1", 3 * DAY - 60_000, "pageview", "/", Value::Null);
            push("s2", 240_000, "pageview", "/pricing", Value::Null);
            push(
                "s2",
                180_000,
                "pageview",
                "/pricing/enterprise",
                Value::Null,
            );
            push(
                "s2",
                60_000,
                "page_exit",
                "/pricing/enterprise",
                json!({"activeMs": 180_000, "maxScrollDepth": 75}),
            );
            push(
                "s2",
                30_000,
                "form_submit",
                "/pricing/enterprise",
                json!({"formId": "demo", "fields": ["email", "company"]}),
            );
        }
    }
    json!({"v": 1, "sentAt": now_ms(), "events": events})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_in_ten_are_buyers() {
        let hot = (0..100).filter(|i| Archetype::of(*i).is_hot()).count();
        assert_eq!(hot, 20);
        let j = journey(0, "sim0", 1_000_000_000_000);
        assert_eq!(j["events"].as_array().unwrap().len(), 6);
        assert!(
            crate::ingest::parse_body(j.to_string().as_bytes()).is_ok(),
            "journeys follow the contract"
        );
        for i in 1..3 {
            assert!(crate::ingest::parse_body(
                journey(i, "x", 1_000_000_000_000).to_string().as_bytes()
            )
            .is_ok());
        }
    }
}
