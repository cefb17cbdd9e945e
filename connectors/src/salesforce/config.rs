use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::{duration, secret, Secret};

/// `[connectors.NAME] kind = "salesforce"`: the JWT bearer flow (`client_id`, `username`,
/// `private_key_file` or `private_key`) or the client-credentials flow (`client_id`,
/// `client_secret`, `token_url`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SalesforceConfig {
    /// The External Client App's consumer key.
    pub client_id: String,
    /// JWT bearer: the integration user's username.
    #[serde(default)]
    pub username: Option<String>,
    /// JWT bearer: path of the PEM private key whose certificate is uploaded to the app.
    #[serde(default)]
    pub private_key_file: Option<String>,
    /// JWT bearer: the PEM private key itself, as `"${SF_PRIVATE_KEY}"`.
    #[serde(default, deserialize_with = "secret::env_only_opt")]
    pub private_key: Option<Secret>,
    /// JWT bearer: where tokens are minted (default `https://login.salesforce.com`; use
    /// `https://test.salesforce.com` for sandboxes, or the My Domain URL).
    #[serde(default = "default_login_url")]
    pub login_url: String,
    /// JWT bearer: the assertion's `aud` (default: `login_url`).
    #[serde(default)]
    pub audience: Option<String>,
    /// Client credentials: the consumer secret, as `"${SF_CLIENT_SECRET}"`.
    #[serde(default, deserialize_with = "secret::env_only_opt")]
    pub client_secret: Option<Secret>,
    /// Client credentials: `https://MyDomain.my.salesforce.com/services/oauth2/token` (not the
    /// login or test hosts).
    #[serde(default)]
    pub token_url: Option<String>,
    /// The sObject to upsert: `Lead` (default) or `Contact`.
    #[serde(default = "default_object")]
    pub object: String,
    /// The external-id field that holds oie's visitor id (default `OIE_Visitor_Id__c`).
    #[serde(default = "default_external_id")]
    pub external_id_field: String,
    /// The external-id field of Account that holds the account's domain, for account records
    /// (`account_hot`, `account_sync`; default `OIE_Account_Domain__c`).
    #[serde(default = "default_account_external_id")]
    pub account_external_id_field: String,
    /// Account fields: name → template over `account`. Added to the defaults (Name, Website,
    /// OIE_Account_Score__c, OIE_Account_Level__c); an empty template drops a default.
    #[serde(default)]
    pub account_fields: BTreeMap<String, String>,
    /// REST API version (default `v66.0`).
    #[serde(default = "default_api_version")]
    pub api_version: String,
    /// Record fields: API name → handlebars template, e.g.
    /// `OIE_Intent_Score__c = "{{lead.intentScore}}"`. Added to the defaults (Email, FirstName,
    /// LastName, Company); an empty template drops a default.
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    /// Below this share of the daily API allocation left, calls are spaced so the rest lasts a
    /// day (default 0.10).
    #[serde(default = "default_headroom")]
    pub headroom: f64,
    /// A link to a record in the app, `{id}` replaced by the record id, e.g.
    /// `"https://acme.lightning.force.com/lightning/r/Lead/{id}/view"`: the console links the records it shows.
    #[serde(default)]
    pub record_url: Option<String>,
    /// How long to wait for Salesforce's answer (default 60s).
    #[serde(
        default = "default_timeout",
        deserialize_with = "duration::deserialize"
    )]
    pub timeout: Duration,
}

fn default_login_url() -> String {
    "https://login.salesforce.com".to_string()
}

fn default_object() -> String {
    "Lead".to_string()
}

fn default_external_id() -> String {
    "OIE_Visitor_Id__c".to_string()
}

fn default_account_external_id() -> String {
    "OIE_Account_Domain__c".to_string()
}

fn default_api_version() -> String {
    "v66.0".to_string()
}

fn default_headroom() -> f64 {
    0.10
}

fn default_timeout() -> Duration {
    Duration::from_secs(60)
}

/// The Account fields every account sync sends unless config drops them.
pub const DEFAULT_ACCOUNT_FIELDS: &[(&str, &str)] = &[
    (
        "Name",
        "{{#if account.company}}{{account.company}}{{else}}{{account.accountDomain}}{{/if}}",
    ),
    ("Website", "{{account.accountDomain}}"),
    ("OIE_Account_Score__c", "{{account.accountScore}}"),
    ("OIE_Account_Level__c", "{{account.accountLevel}}"),
];

/// The record fields every sync sends unless config drops them.
pub const DEFAULT_FIELDS: &[(&str, &str)] = &[
    ("Email", "{{lead.email}}"),
    ("FirstName", "{{lead.firstName}}"),
    ("LastName", "{{lead.lastName}}"),
    ("Company", "{{lead.company}}"),
];
