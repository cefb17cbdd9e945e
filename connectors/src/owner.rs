//! Owner assignments: who claimed a lead from Slack becomes the owner of its record in a CRM.
//! oie hands one over per CRM record of the lead, as a payload
//! `{"owner": {"email", "record"}}`; CRM connectors find their user with that e-mail
//! (HubSpot owners, Salesforce active Users) and set it on the record.

use serde_json::{json, Value};

use crate::Delivery;

/// The payload that asks a CRM connector to make the user with `email` the owner of `record`.
pub fn payload(email: &str, record: &str) -> String {
    json!({"owner": {"email": email, "record": record}}).to_string()
}

/// (e-mail, record) when the delivery is an owner assignment.
pub fn assignment(delivery: &Delivery) -> Option<(String, String)> {
    if !delivery.payload.starts_with("{\"owner\"") {
        return None;
    }
    let v: Value = serde_json::from_str(&delivery.payload).ok()?;
    Some((
        v.pointer("/owner/email")?.as_str()?.to_string(),
        v.pointer("/owner/record")?.as_str()?.to_string(),
    ))
}

/// A CRM connector that can make a user the owner of a record.
#[async_trait::async_trait]
pub trait AssignsOwners: Sync {
    /// Makes the user with `email` the owner of `record`.
    async fn assign_owner(&self, email: &str, record: &str) -> crate::Outcome;
    /// Sends deliveries that are not owner assignments.
    async fn send_others(&self, batch: &[Delivery]) -> Vec<crate::Outcome>;
}

/// Sends a batch that may hold owner assignments: those one at a time (they are rare: a click
/// each), the rest as the connector sends them; outcomes in the batch's order.
pub async fn send(crm: &impl AssignsOwners, batch: &[Delivery]) -> Vec<crate::Outcome> {
    let assignments: Vec<Option<(String, String)>> = batch.iter().map(assignment).collect();
    if assignments.iter().all(Option::is_none) {
        return crm.send_others(batch).await;
    }
    let mut outcomes = Vec::with_capacity(batch.len());
    for (delivery, owner) in batch.iter().zip(assignments) {
        outcomes.push(match owner {
            Some((email, record)) => crm.assign_owner(&email, &record).await,
            None => crm
                .send_others(std::slice::from_ref(delivery))
                .await
                .remove(0),
        });
    }
    outcomes
}
