use std::time::{Duration, UNIX_EPOCH};

use serde_json::json;

use crate::lead::Level;

/// Why a lead is being delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerKind {
    /// The lead's level rose to hot or burning.
    HotLead,
    /// The lead's profile changed since it was last handed over.
    Sync,
    /// An operator re-drove a dead letter.
    Replay,
    /// The visitor asked to be forgotten: routes may tell CRMs to delete the person.
    Erasure,
    /// An identity (short id → who) was imported or changed. Only connectors that hold
    /// identities (a `cloudflare_kv` connector with `holds = "identities"`) receive it, whatever
    /// a route's `when` says: it carries the e-mail.
    Identity,
    /// An account's level rose to hot or burning (first seen at hot counts).
    AccountHot,
    /// An account's fields changed since it was last handed over.
    AccountSync,
}

impl TriggerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TriggerKind::HotLead => "hot_lead",
            TriggerKind::Sync => "sync",
            TriggerKind::Replay => "replay",
            TriggerKind::Erasure => "erasure",
            TriggerKind::Identity => "identity",
            TriggerKind::AccountHot => "account_hot",
            TriggerKind::AccountSync => "account_sync",
        }
    }

    /// Whether it is about an account (routed with `account`; `lead` is empty).
    pub fn is_account(self) -> bool {
        matches!(self, TriggerKind::AccountHot | TriggerKind::AccountSync)
    }

    pub fn parse(text: &str) -> Option<TriggerKind> {
        match text {
            "hot_lead" => Some(TriggerKind::HotLead),
            "sync" => Some(TriggerKind::Sync),
            "replay" => Some(TriggerKind::Replay),
            "erasure" => Some(TriggerKind::Erasure),
            "identity" => Some(TriggerKind::Identity),
            "account_hot" => Some(TriggerKind::AccountHot),
            "account_sync" => Some(TriggerKind::AccountSync),
            _ => None,
        }
    }
}

/// One reason to deliver one lead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    pub kind: TriggerKind,
    /// The lead's level now.
    pub level: Level,
    /// The level before the rise (`None`: first seen).
    pub previous_level: Option<Level>,
    pub at_ms: i64,
    /// What makes this trigger unique for the lead (part of the idempotency key).
    pub identity: String,
    /// When the prospect did what caused it (ms): the newest event of the lead, or a moment's
    /// `at`. Alert latency (`oie_alert_latency_seconds`) counts from here.
    pub origin_ms: Option<i64>,
}

impl Trigger {
    /// A rise to hot or burning, for the profile version `version`.
    pub fn hot_lead(level: Level, previous: Option<Level>, version: i64, at_ms: i64) -> Trigger {
        Trigger {
            kind: TriggerKind::HotLead,
            level,
            previous_level: previous,
            at_ms,
            identity: format!("hot_lead:{}:{version}", level.as_str()),
            origin_ms: None,
        }
    }

    /// The same trigger, caused by what the prospect did at `origin_ms`.
    pub fn caused_at(mut self, origin_ms: Option<i64>) -> Trigger {
        self.origin_ms = origin_ms;
        self
    }

    /// A moment named by its publisher (a `hot_lead_alerts.alertId`, a Pub/Sub message's `id`):
    /// the same id gives the same identity whichever source or replica reads it.
    pub fn moment(
        kind: TriggerKind,
        level: Level,
        previous: Option<Level>,
        id: &str,
        at_ms: i64,
    ) -> Trigger {
        Trigger {
            kind,
            level,
            previous_level: previous,
            at_ms,
            identity: format!("{}:moment:{id}", kind.as_str()),
            origin_ms: None,
        }
    }

    /// The visitor's erasure, requested at `at_ms` (one per request).
    pub fn erasure(level: Level, at_ms: i64) -> Trigger {
        Trigger {
            kind: TriggerKind::Erasure,
            level,
            previous_level: None,
            at_ms,
            identity: format!("erasure:{at_ms}"),
            origin_ms: None,
        }
    }

    /// An identity imported at `at_ms`; `digest` names its values, so importing the same
    /// identity again adds nothing and a changed one is written once.
    pub fn identity(digest: &str, at_ms: i64) -> Trigger {
        Trigger {
            kind: TriggerKind::Identity,
            level: Level::Cold,
            previous_level: None,
            at_ms,
            identity: format!("identity:{digest}"),
            origin_ms: None,
        }
    }

    /// An account's rise to hot or burning, for its row version `version`.
    pub fn account_hot(level: Level, previous: Option<Level>, version: i64, at_ms: i64) -> Trigger {
        Trigger {
            kind: TriggerKind::AccountHot,
            level,
            previous_level: previous,
            at_ms,
            identity: format!("account_hot:{}:{version}", level.as_str()),
            origin_ms: None,
        }
    }

    /// An account's change, for its row version `version`.
    pub fn account_sync(level: Level, version: i64, at_ms: i64) -> Trigger {
        Trigger {
            kind: TriggerKind::AccountSync,
            level,
            previous_level: None,
            at_ms,
            identity: format!("account_sync:{version}"),
            origin_ms: None,
        }
    }

    /// A profile change, for the profile version `version`.
    pub fn sync(level: Level, version: i64, at_ms: i64) -> Trigger {
        Trigger {
            kind: TriggerKind::Sync,
            level,
            previous_level: None,
            at_ms,
            identity: format!("sync:{version}"),
            origin_ms: None,
        }
    }

    /// `{kind, level, previousLevel, at}` as routes and templates see it.
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "kind": self.kind.as_str(),
            "level": self.level.as_str(),
            "previousLevel": self.previous_level.map(Level::as_str),
            "at": rfc3339(self.at_ms),
        })
    }
}

/// Milliseconds since epoch as RFC 3339 with milliseconds.
pub fn rfc3339(ms: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(t).to_string()
}
