//! A lead's page (or an account's, `account:<domain>`): who it is — its e-mail included,
//! this being its own page —, its account, CRM records, sessions with their events, rises,
//! and every delivery with its attempts. For `GET /api/v1/leads/{id}` and the console.

use serde_json::{json, Value};

use super::Api;

/// Deliveries shown on a lead's page.
const LEAD_DELIVERIES: usize = 200;

/// The page of `id` at `now`, `None` when there is no such lead or account.
pub async fn page(api: &Api, id: &str, now: i64) -> anyhow::Result<Option<Value>> {
    let id = id.to_string();
    let outbox = api.outbox.clone();
    let visitor = id.clone();
    let (deliveries, marks) = tokio::task::spawn_blocking(move || {
        anyhow::Ok((
            outbox.deliveries_of(&visitor, LEAD_DELIVERIES)?,
            outbox.marks(&[visitor.as_str()], now)?,
        ))
    })
    .await??;
    let crm: Vec<Value> = api
        .store
        .clone()
        .crm_records(&id)
        .await?
        .iter()
        .map(|r| super::crm_json(api, r))
        .collect();
    if let Some(domain) = id.strip_prefix("account:") {
        let account = api.store.clone().accounts(vec![domain.to_string()]).await?;
        let Some(account) = account.get(domain) else {
            return Ok(None);
        };
        return Ok(Some(json!({
            "kind": "account", "account": account.as_json(), "crm": crm, "deliveries": deliveries,
        })));
    }
    let mut lead = api.store.clone().profiles(vec![id.clone()]).await?;
    let Some(mut lead) = lead.remove(&id) else {
        return Ok(None);
    };
    if let Some(m) = marks.get(&id) {
        m.apply(&mut lead);
    }
    let account = lead
        .get("email")
        .as_str()
        .and_then(crate::account::domain_of)
        .map(|d| vec![d]);
    let account = match account {
        Some(d) => api.store.clone().accounts(d).await?.into_values().next(),
        None => None,
    };
    let timeline = api.store.clone().timeline(&id, now).await?;
    anyhow::Ok(Some(json!({
        "kind": "lead", "lead": lead.as_json(),
        "account": account.as_ref().map(crate::account::Account::as_json),
        "crm": crm, "sessions": timeline["sessions"], "levels": timeline["levels"],
        "deliveries": deliveries,
    })))
}
