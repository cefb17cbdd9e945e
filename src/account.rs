//! An account as routes and templates see it: the camelCase columns of `account_profiles`,
//! every field present (null when unknown), plus what the source adds for the moment at hand
//! (its engaged people on account triggers, how many others were active this week on a
//! person's).

use serde_json::{Map, Value};

use crate::lead::{FieldType, Level};

/// Every column of `account_profiles` routes see, in table order.
pub const FIELDS: &[(&str, FieldType)] = &[
    ("accountDomain", FieldType::Text),
    ("company", FieldType::Text),
    ("people", FieldType::Integer),
    ("engagedPeople", FieldType::Integer),
    ("peakScore", FieldType::Integer),
    ("accountScore", FieldType::Integer),
    ("accountLevel", FieldType::Text),
    ("previousLevel", FieldType::Text),
    ("levelChangedAt", FieldType::Integer),
    ("lastVisitAt", FieldType::Integer),
    ("topPages", FieldType::Json),
    ("updatedAt", FieldType::Integer),
    ("changeSeq", FieldType::Integer),
];

/// Fields a source adds: `engaged` (on account triggers: the engaged people, best first, each
/// `{visitorId, firstName, lastName, title, intentScore, engagementLevel, lastVisitAt}`),
/// `memberRecords` (on account triggers: its people's CRM records, `{connector, id}`),
/// `othersThisWeek` (on a person's triggers: the account's other people seen in 7 days) and
/// `records` (the account's own CRM records: a HubSpot company, a Salesforce Account).
pub const EXTRA: &[&str] = &["engaged", "memberRecords", "othersThisWeek", "records"];

/// Whether `name` is an account field routes may read.
pub fn is_field(name: &str) -> bool {
    FIELDS.iter().any(|(f, _)| *f == name) || EXTRA.contains(&name)
}

/// The pseudo visitor id an account's deliveries are kept under: its threads, fires and
/// last-seen level live beside the leads', and no visitor id has this form.
pub fn key(domain: &str) -> String {
    format!("account:{domain}")
}

/// The account domain of an e-mail, by the rule of queries/6_account_profiles.sql (free-mail
/// domains aside: they have no `account_profiles` row): lower-cased, after the first `@` (which
/// must not be first), holding a dot and no other `@`.
pub fn domain_of(email: &str) -> Option<String> {
    let email = email.trim();
    let at = email.find('@').filter(|at| *at > 0)?;
    let domain = email[at + 1..].to_lowercase();
    (!domain.is_empty() && !domain.contains('@') && domain.contains('.')).then_some(domain)
}

/// One account.
#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    fields: Map<String, Value>,
}

impl Account {
    /// Builds an account from `FIELDS`' values, in order (as a store reads them).
    pub fn from_values(values: impl IntoIterator<Item = Value>) -> Account {
        let mut fields: Map<String, Value> = FIELDS
            .iter()
            .zip(values)
            .map(|((name, ty), value)| {
                let value = match (ty, value) {
                    (FieldType::Json, Value::String(text)) => {
                        serde_json::from_str(&text).unwrap_or(Value::String(text))
                    }
                    (_, value) => value,
                };
                (name.to_string(), value)
            })
            .collect();
        for name in EXTRA {
            fields.insert(name.to_string(), Value::Null);
        }
        Account { fields }
    }

    pub fn domain(&self) -> &str {
        self.fields["accountDomain"].as_str().unwrap_or_default()
    }

    pub fn level(&self) -> Level {
        self.fields["accountLevel"]
            .as_str()
            .and_then(Level::parse)
            .unwrap_or(Level::Cold)
    }

    /// The change version of the row (its `changeSeq`).
    pub fn version(&self) -> i64 {
        self.fields["changeSeq"].as_i64().unwrap_or(0)
    }

    pub fn get(&self, name: &str) -> &Value {
        self.fields.get(name).unwrap_or(&Value::Null)
    }

    /// Sets one of [`EXTRA`].
    pub fn set(&mut self, name: &str, value: Value) {
        if EXTRA.contains(&name) {
            self.fields.insert(name.to_string(), value);
        }
    }

    pub fn as_json(&self) -> &Map<String, Value> {
        &self.fields
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_domain_rule_is_the_sql_one() {
        assert_eq!(
            domain_of(" Li.Wei@Initech.Example ").as_deref(),
            Some("initech.example")
        );
        assert_eq!(
            domain_of("cy@Globex.example").as_deref(),
            Some("globex.example")
        );
        assert_eq!(domain_of("nobody-at-all"), None);
        assert_eq!(domain_of("@acme.example"), None);
        assert_eq!(domain_of("a@b@acme.example"), None);
        assert_eq!(domain_of("a@localhost"), None);
    }
}
