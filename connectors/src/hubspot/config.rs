use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::{duration, secret, Secret};

/// `[connectors.NAME] kind = "hubspot"`: set `token`, or `client_id`, `client_secret` and
/// `refresh_token` (an OAuth app).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HubSpotConfig {
    /// Private-app token or Service Key, as `"${HUBSPOT_TOKEN}"`.
    #[serde(default, deserialize_with = "secret::env_only_opt")]
    pub token: Option<Secret>,
    /// OAuth app client id (with `client_secret` and `refresh_token`).
    #[serde(default)]
    pub client_id: Option<String>,
    /// OAuth app client secret, as `"${HUBSPOT_CLIENT_SECRET}"`.
    #[serde(default, deserialize_with = "secret::env_only_opt")]
    pub client_secret: Option<Secret>,
    /// OAuth refresh token, as `"${HUBSPOT_REFRESH_TOKEN}"`.
    #[serde(default, deserialize_with = "secret::env_only_opt")]
    pub refresh_token: Option<Secret>,
    /// API host (default `https://api.hubapi.com`); change it only for tests.
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// Object API prefix: `/crm/objects/2026-03` (default) or `/crm/v3/objects`.
    #[serde(default = "default_objects_path")]
    pub objects_path: String,
    /// OAuth token path (default `/oauth/2026-03/token`).
    #[serde(default = "default_token_path")]
    pub token_path: String,
    /// Contact properties: name → handlebars template, e.g.
    /// `oie_intent_score = "{{lead.intentScore}}"`. Added to the defaults (email, firstname,
    /// lastname, company); an empty template drops a default.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// Company properties of account records (`account_hot`, `account_sync`): name → template
    /// over `account`, e.g. `oie_peak_score = "{{account.peakScore}}"`. Added to the defaults
    /// (name, domain, oie_account_score, oie_account_level, oie_engaged_people); an empty
    /// template drops a default.
    #[serde(default)]
    pub company_properties: BTreeMap<String, String>,
    /// The company property with unique values companies are upserted by (default
    /// `oie_account_domain`; create it in HubSpot as a single-line text property with unique
    /// values: `domain` is not unique).
    #[serde(default = "default_company_id_property")]
    pub company_id_property: String,
    /// Template of a Note created on `hot_lead` triggers, e.g. `"hubspot/note"`; none by default.
    #[serde(default)]
    pub note_template: Option<String>,
    /// Requests per rate-limit window: 100 (Free/Starter, default), 190 (Professional and
    /// Enterprise), 250 (with the API limit increase). HubSpot's headers lower it if needed.
    #[serde(default = "default_window_limit")]
    pub window_limit: u32,
    /// The rate-limit window (default 10s, HubSpot's); the headers' interval wins.
    #[serde(default = "default_window", deserialize_with = "duration::deserialize")]
    pub window: Duration,
    /// A link to a record in the app, `{id}` replaced by the record id, e.g.
    /// `"https://app.hubspot.com/contacts/12345/record/0-1/{id}"`: the console links the records it shows.
    #[serde(default)]
    pub record_url: Option<String>,
    /// How long to wait for HubSpot's answer (default 30s).
    #[serde(
        default = "default_timeout",
        deserialize_with = "duration::deserialize"
    )]
    pub timeout: Duration,
}

fn default_base_url() -> String {
    "https://api.hubapi.com".to_string()
}

fn default_objects_path() -> String {
    "/crm/objects/2026-03".to_string()
}

fn default_token_path() -> String {
    "/oauth/2026-03/token".to_string()
}

fn default_company_id_property() -> String {
    "oie_account_domain".to_string()
}

fn default_window_limit() -> u32 {
    100
}

fn default_window() -> Duration {
    Duration::from_secs(10)
}

fn default_timeout() -> Duration {
    Duration::from_secs(30)
}

/// The company properties every account sync sends unless config drops them.
pub const DEFAULT_COMPANY_PROPERTIES: &[(&str, &str)] = &[
    ("name", "{{account.company}}"),
    ("domain", "{{account.accountDomain}}"),
    ("oie_account_score", "{{account.accountScore}}"),
    ("oie_account_level", "{{account.accountLevel}}"),
    ("oie_engaged_people", "{{account.engagedPeople}}"),
];

/// The contact properties every sync sends unless config drops them.
pub const DEFAULT_PROPERTIES: &[(&str, &str)] = &[
    ("email", "{{lead.email}}"),
    ("firstname", "{{lead.firstName}}"),
    ("lastname", "{{lead.lastName}}"),
    ("company", "{{lead.company}}"),
];
