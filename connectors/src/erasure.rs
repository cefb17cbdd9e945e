//! CRM erasures: a delivery of the `erasure` trigger tells a CRM to delete the person oie
//! synced. Its payload is `{"erase": {"record": "<the CRM's record id>"}}`: the record oie
//! created or updated, never a lookup by e-mail (HubSpot blocklists an e-mail it is asked to
//! delete but does not know). One batch may hold erasures beside ordinary syncs: they are
//! taken out and sent their own way.

use serde_json::{json, Value};

use crate::{Delivery, Outcome, RenderContext, RenderError};

/// The payload of an erasure for the connector's own record (`record` in the render input,
/// which oie fills for each CRM connector), or `None` when the trigger is not an erasure.
pub fn render(kind: &str, context: &RenderContext) -> Option<Result<String, RenderError>> {
    let data = context.data();
    if data["trigger"]["kind"] != "erasure" {
        return None;
    }
    Some(match data["record"].as_str() {
        Some(record) => Ok(json!({"erase": {"record": record}}).to_string()),
        None => Err(RenderError::Render {
            name: kind.to_string(),
            message: format!("an erasure needs the {kind} record oie synced; this lead has none"),
        }),
    })
}

/// The record an erasure delivery deletes, if it is one.
pub fn record(delivery: &Delivery) -> Option<String> {
    if !delivery.payload.starts_with("{\"erase\"") {
        return None;
    }
    serde_json::from_str::<Value>(&delivery.payload)
        .ok()?
        .pointer("/erase/record")?
        .as_str()
        .map(str::to_string)
}

/// Sends a batch that may hold erasures: those go to `erase` (with their record ids, in batch
/// order), the rest to `upsert`; the outcomes come back in the batch's order.
pub async fn split<E, U>(batch: &[Delivery], erase: E, upsert: U) -> Vec<Outcome>
where
    E: AsyncFnOnce(Vec<String>) -> Vec<Outcome>,
    U: AsyncFnOnce(&[Delivery]) -> Vec<Outcome>,
{
    crate::batch::partition(
        batch,
        |d| record(d).is_some(),
        async |erasures: &[Delivery]| erase(erasures.iter().filter_map(record).collect()).await,
        upsert,
    )
    .await
}
