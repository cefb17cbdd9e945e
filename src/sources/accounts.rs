//! Accounts, beside `[sources.leads]` in embedded mode: reads accounts changed since the last
//! run (by `account_profiles.changeSeq`), yields `account_hot` when an account's level rose to
//! hot or burning (first seen at hot counts) and `account_sync` when its row changed, and
//! commits the deliveries with its progress. An account's deliveries are kept under
//! `account:<domain>` (its fires, threads and last-seen level beside the leads').

use serde_json::json;

use crate::account::{self, Account};
use crate::lead::Lead;
use crate::outbox::Seen;
use crate::routing::Trigger;
use crate::sources::stage::{Arrival, Progress, Stage};
use crate::store::SqliteStore;

pub const SOURCE: &str = "accounts";

/// Hands over every page of account changes (blocking: SQLite), calling `handed` with the rows
/// each commit added; stops between pages once `go_on` says so.
pub fn drain(
    store: &SqliteStore,
    stage: &Stage,
    page: usize,
    now_ms: impl Fn() -> i64,
    go_on: impl Fn() -> bool,
    mut handed: impl FnMut(usize),
) -> anyhow::Result<()> {
    loop {
        let position = stage.outbox.position(SOURCE)?;
        let accounts = store.changed_accounts(position, page)?;
        let Some(last) = accounts.last().map(Account::version) else {
            return Ok(());
        };
        let count = accounts.len();
        let now = now_ms();
        let keys: Vec<String> = accounts.iter().map(|a| account::key(a.domain())).collect();
        let ids: Vec<&str> = keys.iter().map(String::as_str).collect();
        let seen = stage.outbox.seen(&ids)?;
        let mut crm = store.crm_ids(&ids)?;
        let progress = Progress {
            position: Some((SOURCE.to_string(), last)),
            seen: accounts
                .iter()
                .zip(&keys)
                .map(|(a, key)| {
                    let seen = Seen {
                        level: a.level(),
                        version: a.version(),
                    };
                    (key.clone(), seen)
                })
                .collect(),
            ..Progress::default()
        };
        let mut arrivals = Vec::with_capacity(count);
        for (mut a, key) in accounts.into_iter().zip(keys) {
            let triggers = triggers(&a, seen.get(&key).copied(), now);
            if triggers.is_empty() {
                continue;
            }
            a.set("engaged", store.engaged_people(a.domain(), now)?);
            a.set("memberRecords", store.member_records(a.domain())?);
            let records = crm.remove(&key).unwrap_or_default();
            a.set("records", records_json(&records));
            let lead = Lead::from_json(json!({ "visitorId": key }).as_object().expect("object"));
            arrivals.push(Arrival {
                lead,
                triggers,
                crm: records,
                account: Some(a),
            });
        }
        handed(stage.hand_over(arrivals, progress, now)?.added);
        if count < page || !go_on() {
            return Ok(());
        }
    }
}

/// `[{connector, id}]` of CRM records.
pub fn records_json(records: &[crate::store::CrmRecord]) -> serde_json::Value {
    records
        .iter()
        .map(|r| json!({"connector": r.connector, "id": r.id}))
        .collect()
}

/// The triggers an account's change yields, given what was seen of it before.
pub fn triggers(account: &Account, previous: Option<Seen>, now_ms: i64) -> Vec<Trigger> {
    let (level, version) = (account.level(), account.version());
    let mut out = Vec::new();
    let (rose, changed) = crate::sources::rise_and_change(level, version, previous);
    if rose {
        out.push(
            Trigger::account_hot(level, previous.map(|p| p.level), version, now_ms)
                .caused_at(account.get("lastVisitAt").as_i64()),
        );
    }
    if changed {
        out.push(Trigger::account_sync(level, version, now_ms));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lead::Level;
    use crate::routing::TriggerKind::{AccountHot, AccountSync};

    fn account(level: &str, version: i64) -> Account {
        let mut values = vec![serde_json::Value::Null; account::FIELDS.len()];
        let at = |name: &str| {
            account::FIELDS
                .iter()
                .position(|(n, _)| *n == name)
                .unwrap()
        };
        values[at("accountDomain")] = json!("acme.example");
        values[at("accountLevel")] = json!(level);
        values[at("changeSeq")] = json!(version);
        Account::from_values(values)
    }

    #[test]
    fn rises_and_changes() {
        let kinds = |a: &Account, previous: Option<(Level, i64)>| -> Vec<_> {
            let previous = previous.map(|(level, version)| Seen { level, version });
            triggers(a, previous, 0).iter().map(|t| t.kind).collect()
        };
        assert_eq!(kinds(&account("hot", 1), None), [AccountHot, AccountSync]);
        assert_eq!(kinds(&account("warm", 1), None), [AccountSync]);
        assert_eq!(
            kinds(&account("burning", 3), Some((Level::Hot, 2))),
            [AccountHot, AccountSync]
        );
        assert_eq!(
            kinds(&account("hot", 3), Some((Level::Burning, 2))),
            [AccountSync]
        );
        assert!(kinds(&account("hot", 2), Some((Level::Hot, 2))).is_empty());
        let t = &triggers(&account("hot", 7), None, 0)[0];
        assert_eq!(t.identity, "account_hot:hot:7");
    }
}
