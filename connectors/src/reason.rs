//! Why an attempt did not deliver: a small closed set, so a failure can be counted (a metric
//! label), stored (a column of attempts and dead letters) and acted on (what the dispatcher
//! does with it), while the vendor's own words travel beside it as free text.

use std::fmt;
use std::time::Duration;

/// The reason of a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// No connection, or it broke: DNS, refused, reset, TLS, an unwritable file.
    Transport,
    /// No answer within the timeout.
    Timeout,
    /// The destination asked to slow down: 429, 502, 503, 504, any answer with `Retry-After`,
    /// Slack `ratelimited`, HubSpot's ten-second window, Salesforce's concurrent-request limit.
    Throttled,
    /// The destination answered, but failed to handle the request (500 and other 5xx).
    ServerError,
    /// The credentials were refused: a rejected or revoked token, a missing scope or permission.
    Auth,
    /// The destination does not exist: a webhook 404, Slack `channel_not_found` or `no_service`.
    NotFound,
    /// The destination was removed for good: HTTP 410, an archived Slack channel.
    Gone,
    /// The URL answers with a redirect, which oie never follows.
    Redirect,
    /// The vendor's daily API allocation is used up.
    Quota,
    /// The destination refused this item (a validation error): it will never succeed as it is.
    InvalidItem,
    /// The payload could not be rendered from its template.
    Render,
    /// A newer delivery for the same record replaced it before it was sent.
    Superseded,
}

/// What a failure with a given reason does to the delivery and its connector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Try this delivery again later; the attempt counts against `max_attempts`, and the
    /// request counts as a failure of the endpoint.
    Retry,
    /// Try again later without spending an attempt: the destination did not look at it, it
    /// asked to be called more slowly.
    Throttle,
    /// This delivery will never succeed as it is: a dead letter. The destination is fine.
    DeadLetter,
    /// Nothing will get through until someone fixes the connector (credentials, URL) or the
    /// vendor's allocation comes back: park the connector and keep its queue.
    Park,
}

const ALL: [Reason; 12] = [
    Reason::Transport,
    Reason::Timeout,
    Reason::Throttled,
    Reason::ServerError,
    Reason::Auth,
    Reason::NotFound,
    Reason::Gone,
    Reason::Redirect,
    Reason::Quota,
    Reason::InvalidItem,
    Reason::Render,
    Reason::Superseded,
];

impl Reason {
    /// Every reason, for documentation and metrics.
    pub fn all() -> &'static [Reason] {
        &ALL
    }

    /// The label: `transport`, `timeout`, `throttled`, `server_error`, `auth`, `not_found`,
    /// `gone`, `redirect`, `quota`, `invalid_item`, `render`, `superseded`.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Transport => "transport",
            Reason::Timeout => "timeout",
            Reason::Throttled => "throttled",
            Reason::ServerError => "server_error",
            Reason::Auth => "auth",
            Reason::NotFound => "not_found",
            Reason::Gone => "gone",
            Reason::Redirect => "redirect",
            Reason::Quota => "quota",
            Reason::InvalidItem => "invalid_item",
            Reason::Render => "render",
            Reason::Superseded => "superseded",
        }
    }

    pub fn parse(label: &str) -> Option<Reason> {
        ALL.iter().copied().find(|r| r.as_str() == label)
    }

    pub fn effect(self) -> Effect {
        match self {
            Reason::Transport | Reason::Timeout | Reason::ServerError => Effect::Retry,
            Reason::Throttled => Effect::Throttle,
            Reason::InvalidItem | Reason::Render | Reason::Superseded => Effect::DeadLetter,
            Reason::Auth | Reason::NotFound | Reason::Gone | Reason::Redirect | Reason::Quota => {
                Effect::Park
            }
        }
    }

    /// Whether the destination answered at all (so it is up), as opposed to no connection or
    /// no answer in time.
    pub fn answered(self) -> bool {
        !matches!(self, Reason::Transport | Reason::Timeout)
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed attempt: the reason, the vendor's words, and when the vendor said to come back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {detail}")]
pub struct Failure {
    pub reason: Reason,
    /// What the destination said (its status, error code and message), on one line, without
    /// secrets or URLs.
    pub detail: String,
    /// `Retry-After`, or the vendor's reset time, when the destination gave one.
    pub after: Option<Duration>,
}

impl Failure {
    pub fn new(reason: Reason, detail: impl Into<String>) -> Failure {
        Failure {
            reason,
            detail: detail.into(),
            after: None,
        }
    }

    /// The same failure, with when to come back.
    pub fn after(mut self, after: Option<Duration>) -> Failure {
        self.after = after;
        self
    }

    /// The same failure with `prefix: ` before its detail (which call failed).
    pub fn context(mut self, prefix: &str) -> Failure {
        self.detail = format!("{prefix}: {}", self.detail);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for r in Reason::all() {
            assert_eq!(Reason::parse(r.as_str()), Some(*r));
            assert!(seen.insert(r.as_str()), "{r} twice");
        }
        assert_eq!(Reason::parse("permanent"), None);
    }

    #[test]
    fn effects() {
        assert_eq!(Reason::Timeout.effect(), Effect::Retry);
        assert_eq!(Reason::Throttled.effect(), Effect::Throttle);
        assert_eq!(Reason::InvalidItem.effect(), Effect::DeadLetter);
        for r in [Reason::Auth, Reason::NotFound, Reason::Gone, Reason::Quota] {
            assert_eq!(r.effect(), Effect::Park, "{r}");
        }
        assert!(!Reason::Transport.answered());
        assert!(Reason::ServerError.answered());
    }

    #[test]
    fn failures_print_reason_then_detail() {
        let f = Failure::new(Reason::Auth, "HTTP 401 bad token").context("upsert");
        assert_eq!(f.to_string(), "auth: upsert: HTTP 401 bad token");
    }
}
