//! `GET /api/v1/now`: the hot and burning leads and accounts of the last 7 days, newest rise
//! first — who, how hot and why, who claimed them, their CRM records, and what became of each
//! alert's delivery. No e-mail address is shown (that is for the lead's own page).

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::{json, Value};

use super::Api;
use crate::account::Account;
use crate::lead::Lead;
use crate::outbox::Rise;

/// The window "Now" looks back over.
pub const WINDOW_MS: i64 = 7 * 86_400_000;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    /// `hot` or `burning`: rises to that level.
    pub level: Option<String>,
    /// Rises delivered by this route.
    pub route: Option<String>,
    /// Text in the name, company, visitor id or domain (any case).
    pub q: Option<String>,
    /// Rises per page (default 50, at most 200).
    pub limit: Option<usize>,
    /// The `next` of the previous page.
    pub after: Option<String>,
}

/// One page: `{"items": [...], "next": cursor | null}`.
pub async fn page(api: &Api, filter: Filter, now_ms: i64) -> anyhow::Result<Value> {
    let limit = filter.limit.unwrap_or(50).clamp(1, 200);
    let after = filter.after.as_deref().and_then(|a| {
        let (at, visitor) = a.split_once(':')?;
        Some((at.parse::<i64>().ok()?, visitor.to_string()))
    });
    let outbox = api.outbox.clone();
    let rises = tokio::task::spawn_blocking(move || {
        outbox.recent_rises(
            now_ms - WINDOW_MS,
            after.as_ref().map(|(at, v)| (*at, v.as_str())),
            limit,
        )
    })
    .await??;
    let next = (rises.len() == limit)
        .then(|| rises.last().map(|r| format!("{}:{}", r.at, r.visitor_id)))
        .flatten();
    let (mut leads, mut domains) = (Vec::new(), Vec::new());
    for r in &rises {
        match r.visitor_id.strip_prefix("account:") {
            Some(domain) => domains.push(domain.to_string()),
            None => leads.push(r.visitor_id.clone()),
        }
    }
    let outbox = api.outbox.clone();
    let owned = leads.clone();
    let marks = async {
        tokio::task::spawn_blocking(move || {
            let ids: Vec<&str> = owned.iter().map(String::as_str).collect();
            outbox.marks(&ids, now_ms)
        })
        .await?
    };
    let mut visitors: Vec<String> = rises.iter().map(|r| r.visitor_id.clone()).collect();
    visitors.sort();
    visitors.dedup();
    // Independent reads, together: on BigQuery each is a job of its own.
    let (marks, mut profiles, accounts, crm) = tokio::try_join!(
        marks,
        api.store.clone().profiles(leads),
        api.store.clone().accounts(domains),
        api.store.clone().crm_records_of(visitors),
    )?;
    for (visitor, lead) in profiles.iter_mut() {
        if let Some(m) = marks.get(visitor) {
            m.apply(lead);
        }
    }
    let crm: HashMap<String, Value> = crm
        .into_iter()
        .map(|(visitor, records)| {
            let records = records
                .iter()
                .map(|c| {
                    let mut v = super::crm_json(api, c);
                    // No e-mail address on Now.
                    if let Some(o) = v.as_object_mut() {
                        o.remove("ownerEmail");
                    }
                    v
                })
                .collect();
            (visitor, Value::Array(records))
        })
        .collect();
    let items: Vec<Value> = rises
        .iter()
        .filter_map(|r| {
            let records = crm.get(&r.visitor_id).cloned().unwrap_or(json!([]));
            let item = match r.visitor_id.strip_prefix("account:") {
                Some(domain) => account_item(r, accounts.get(domain), records),
                None => lead_item(r, profiles.get(&r.visitor_id), records),
            };
            keep(&filter, r, &item).then_some(item)
        })
        .collect();
    Ok(json!({ "items": items, "next": next }))
}

fn deliveries(r: &Rise) -> Value {
    serde_json::to_value(&r.deliveries).unwrap_or(Value::Null)
}

fn lead_item(r: &Rise, lead: Option<&Lead>, crm: Value) -> Value {
    let get = |k: &str| lead.map_or(Value::Null, |l| l.get(k).clone());
    let name = lead
        .map(|l| {
            let part = |k: &str| l.get(k).as_str().map(str::trim).filter(|s| !s.is_empty());
            match (part("firstName"), part("lastName")) {
                (Some(f), Some(l)) => format!("{f} {l}"),
                (Some(one), None) | (None, Some(one)) => one.to_string(),
                (None, None) => format!("Visitor {}", r.visitor_id),
            }
        })
        .unwrap_or_else(|| format!("Visitor {} (erased?)", r.visitor_id));
    let why = lead
        .map(|l| oie_connectors::templates::why(&Value::Object(l.as_json().clone())))
        .unwrap_or_default();
    json!({
        "kind": "lead", "visitorId": r.visitor_id, "at": r.at, "level": r.level,
        "previousLevel": r.previous_level, "name": name, "company": get("company"),
        "title": get("title"), "score": get("intentScore"), "levelNow": get("engagementLevel"),
        "why": why, "topPages": get("topPages"), "lastVisitAt": get("lastVisitAt"),
        "claimedBy": get("claimedBy"), "crm": crm, "deliveries": deliveries(r),
    })
}

fn account_item(r: &Rise, account: Option<&Account>, crm: Value) -> Value {
    let get = |k: &str| account.map_or(Value::Null, |a| a.get(k).clone());
    let domain = r.visitor_id.trim_start_matches("account:");
    let name = get("company")
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| domain.to_string());
    let why = account
        .map(|a| oie_connectors::templates::account_why(&Value::Object(a.as_json().clone())))
        .unwrap_or_default();
    json!({
        "kind": "account", "visitorId": r.visitor_id, "domain": domain, "at": r.at,
        "level": r.level, "previousLevel": r.previous_level, "name": name,
        "company": get("company"), "score": get("accountScore"), "levelNow": get("accountLevel"),
        "engagedPeople": get("engagedPeople"), "people": get("people"), "why": why,
        "topPages": get("topPages"), "lastVisitAt": get("lastVisitAt"), "crm": crm,
        "deliveries": deliveries(r),
    })
}

/// Whether an item passes the filter.
fn keep(filter: &Filter, r: &Rise, item: &Value) -> bool {
    if filter
        .level
        .as_deref()
        .is_some_and(|l| r.level.as_deref() != Some(l))
    {
        return false;
    }
    if let Some(route) = &filter.route {
        if !r.deliveries.iter().any(|d| &d.route == route) {
            return false;
        }
    }
    if let Some(q) = filter
        .q
        .as_deref()
        .map(str::to_lowercase)
        .filter(|q| !q.is_empty())
    {
        let hay = ["name", "company", "visitorId", "domain"]
            .iter()
            .filter_map(|k| item[*k].as_str())
            .any(|t| t.to_lowercase().contains(&q));
        if !hay {
            return false;
        }
    }
    true
}
