//! A lead profile as routes and templates see it: a JSON object with the camelCase columns of
//! `lead_profiles`, every field present (null when unknown).

use serde_json::{Map, Value};

/// The type of a lead column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    Text,
    Integer,
    Real,
    /// JSON kept as text by the stores, parsed for routes and templates.
    Json,
    Bool,
}

/// Every column of `lead_profiles`, in table order.
pub const FIELDS: &[(&str, FieldType)] = &[
    ("visitorId", FieldType::Text),
    ("email", FieldType::Text),
    ("firstName", FieldType::Text),
    ("lastName", FieldType::Text),
    ("company", FieldType::Text),
    ("title", FieldType::Text),
    ("campaignId", FieldType::Text),
    ("campaignName", FieldType::Text),
    ("intentScore", FieldType::Integer),
    ("engagementLevel", FieldType::Text),
    ("firstVisitAt", FieldType::Integer),
    ("lastVisitAt", FieldType::Integer),
    ("totalSessions", FieldType::Integer),
    ("totalPageviews", FieldType::Integer),
    ("totalActiveSeconds", FieldType::Integer),
    ("pricingPageVisits", FieldType::Integer),
    ("caseStudyViews", FieldType::Integer),
    ("productPageViews", FieldType::Integer),
    ("formSubmissions", FieldType::Integer),
    ("videosCompleted", FieldType::Integer),
    ("maxScrollDepth", FieldType::Integer),
    ("lastPageUrl", FieldType::Text),
    // Why the score is what it is: its parts, and the most viewed pages of the window.
    ("scoreRecency", FieldType::Integer),
    ("scoreFrequency", FieldType::Integer),
    ("scoreEngagement", FieldType::Real),
    ("scoreHighIntent", FieldType::Integer),
    ("scoreConversions", FieldType::Integer),
    ("topPages", FieldType::Json),
    ("updatedAt", FieldType::Integer),
    ("changeSeq", FieldType::Integer),
    // Not a fit, from Slack: written into the store's profile (and laid over it by routing
    // from the outbox, so it holds at once).
    ("disqualified", FieldType::Bool),
    ("disqualifiedBy", FieldType::Text),
    ("disqualifiedAt", FieldType::Integer),
    // Claim, from Slack (MARKS): kept by oie, laid over the stored profile.
    ("claimedBy", FieldType::Text),
    ("claimedAt", FieldType::Integer),
];

/// Lead fields no store holds: oie keeps them in its outbox from Slack's Claim and lays them
/// over every lead it routes, in both modes.
pub const MARKS: &[&str] = &["claimedBy", "claimedAt"];

/// The fields a store holds: [`FIELDS`] without [`MARKS`], in order.
pub fn stored_fields() -> impl Iterator<Item = &'static (&'static str, FieldType)> {
    FIELDS.iter().filter(|(name, _)| !MARKS.contains(name))
}

/// Whether `v` is a short id or visitor id as the ingest contract defines them
/// (`^[A-Za-z0-9_.:-]{1,64}$`).
pub fn is_id(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 64
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.:-".contains(c))
}

/// Whether `name` is a lead field.
pub fn is_field(name: &str) -> bool {
    FIELDS.iter().any(|(f, _)| *f == name)
}

/// The engagement level, in rising order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Cold,
    Warm,
    Hot,
    Burning,
}

impl Level {
    pub fn parse(text: &str) -> Option<Level> {
        match text {
            "cold" => Some(Level::Cold),
            "warm" => Some(Level::Warm),
            "hot" => Some(Level::Hot),
            "burning" => Some(Level::Burning),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Cold => "cold",
            Level::Warm => "warm",
            Level::Hot => "hot",
            Level::Burning => "burning",
        }
    }

    /// The level of a score, as ARCHITECTURE §7 states.
    pub fn of_score(score: i64) -> Level {
        match score {
            s if s >= 80 => Level::Burning,
            s if s >= 60 => Level::Hot,
            s if s >= 40 => Level::Warm,
            _ => Level::Cold,
        }
    }

    /// Hot and burning leads are worth an alert.
    pub fn is_hot(self) -> bool {
        self >= Level::Hot
    }
}

/// A JSON field stored as text becomes the JSON it holds (text that is not JSON stays text);
/// an unknown flag is false.
fn typed(ty: FieldType, value: Value) -> Value {
    match (ty, value) {
        (FieldType::Bool, Value::Null) => Value::Bool(false),
        (FieldType::Json, Value::String(text)) => {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        }
        (_, value) => value,
    }
}

/// One lead profile.
#[derive(Debug, Clone, PartialEq)]
pub struct Lead {
    fields: Map<String, Value>,
}

impl Lead {
    /// Builds a lead from `FIELDS`' values, in `FIELDS`' order (as a store reads them).
    pub fn from_values(values: impl IntoIterator<Item = Value>) -> Lead {
        let mut fields: Map<String, Value> = stored_fields()
            .zip(values)
            .map(|((name, ty), value)| (name.to_string(), typed(*ty, value)))
            .collect();
        for (name, ty) in FIELDS.iter().filter(|(n, _)| MARKS.contains(n)) {
            fields.insert(name.to_string(), typed(*ty, Value::Null));
        }
        Lead { fields }
    }

    /// Builds a lead from a JSON object; unknown keys are dropped, missing ones become null.
    pub fn from_json(object: &Map<String, Value>) -> Lead {
        let fields = FIELDS
            .iter()
            .map(|(name, ty)| {
                let value = object.get(*name).cloned().unwrap_or(Value::Null);
                (name.to_string(), typed(*ty, value))
            })
            .collect();
        Lead { fields }
    }

    pub fn visitor_id(&self) -> &str {
        self.fields["visitorId"].as_str().unwrap_or_default()
    }

    pub fn level(&self) -> Level {
        self.fields["engagementLevel"]
            .as_str()
            .and_then(Level::parse)
            .unwrap_or(Level::Cold)
    }

    /// The change version of the profile (its `changeSeq`, unique and commit-ordered).
    pub fn version(&self) -> i64 {
        self.fields["changeSeq"].as_i64().unwrap_or(0)
    }

    pub fn get(&self, name: &str) -> &Value {
        self.fields.get(name).unwrap_or(&Value::Null)
    }

    /// Sets a field of [`FIELDS`] (oie's own marks, laid over a stored profile).
    pub fn set(&mut self, name: &str, value: Value) {
        if is_field(name) {
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
    fn levels_follow_the_formula_boundaries() {
        assert_eq!(Level::of_score(39), Level::Cold);
        assert_eq!(Level::of_score(40), Level::Warm);
        assert_eq!(Level::of_score(60), Level::Hot);
        assert_eq!(Level::of_score(79), Level::Hot);
        assert_eq!(Level::of_score(80), Level::Burning);
        assert!(Level::Burning > Level::Hot && Level::Hot.is_hot() && !Level::Warm.is_hot());
    }

    #[test]
    fn every_field_is_present() {
        let object = serde_json::json!({"visitorId": "v1", "extra": 1});
        let lead = Lead::from_json(object.as_object().unwrap());
        assert_eq!(lead.as_json().len(), FIELDS.len());
        assert_eq!(lead.get("company"), &Value::Null);
        assert!(lead.as_json().get("extra").is_none());
        assert_eq!(lead.level(), Level::Cold);
    }
}
