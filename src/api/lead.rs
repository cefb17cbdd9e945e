//! A lead's page (or an account's, `account:<domain>`): who it is — its e-mail included,
//! this being its own page —, its account, CRM records, sessions with their events, rises,
//! and every delivery with its attempts. For `GET /api/v1/leads/{id}` and the console.

use serde_json::{json, Value};

use super::Api;

/// Deliveries shown on a lead's page.
const LEAD_DELIVERIES: usize = 200;

/// The page of `id` at `now`, `None` when there is no such lead or account. The reads that do
/// not depend on each other run together: on BigQuery each is a job of its own, and the page
/// waits for the slowest instead of their sum.
pub async fn page(api: &Api, id: &str, now: i64) -> anyhow::Result<Option<Value>> {
    let outbox = api.outbox.clone();
    let visitor = id.to_string();
    let delivered = async {
        tokio::task::spawn_blocking(move || {
            anyhow::Ok((
                outbox.deliveries_of(&visitor, LEAD_DELIVERIES)?,
                outbox.marks(&[visitor.as_str()], now)?,
            ))
        })
        .await?
    };
    let crm = async {
        let records = api.store.clone().crm_records(id).await?;
        anyhow::Ok(
            records
                .iter()
                .map(|r| super::crm_json(api, r))
                .collect::<Vec<_>>(),
        )
    };
    if let Some(domain) = id.strip_prefix("account:") {
        let accounts = api.store.clone().accounts(vec![domain.to_string()]);
        let ((deliveries, _), crm, accounts) = tokio::try_join!(delivered, crm, accounts)?;
        let Some(account) = accounts.get(domain) else {
            return Ok(None);
        };
        return Ok(Some(json!({
            "kind": "account", "account": account.as_json(), "crm": crm, "deliveries": deliveries,
        })));
    }
    // The account is the one of the lead's e-mail domain: read after the lead.
    let lead_and_account = async {
        let Some(lead) = api
            .store
            .clone()
            .profiles(vec![id.to_string()])
            .await?
            .remove(id)
        else {
            return anyhow::Ok(None);
        };
        let account = match lead
            .get("email")
            .as_str()
            .and_then(crate::account::domain_of)
        {
            Some(d) => api
                .store
                .clone()
                .accounts(vec![d])
                .await?
                .into_values()
                .next(),
            None => None,
        };
        Ok(Some((lead, account)))
    };
    let timeline = api.store.clone().timeline(id, now);
    let ((deliveries, marks), crm, found, timeline) =
        tokio::try_join!(delivered, crm, lead_and_account, timeline)?;
    let Some((mut lead, account)) = found else {
        return Ok(None);
    };
    if let Some(m) = marks.get(id) {
        m.apply(&mut lead);
    }
    anyhow::Ok(Some(json!({
        "kind": "lead", "lead": lead.as_json(),
        "account": account.as_ref().map(crate::account::Account::as_json),
        "crm": crm, "sessions": timeline["sessions"], "levels": timeline["levels"],
        "deliveries": deliveries,
    })))
}
