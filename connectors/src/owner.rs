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
