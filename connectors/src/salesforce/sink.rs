use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Map, Value};

use super::auth::Auth;
use super::classify::{self, Refusal};
use super::config::{DEFAULT_ACCOUNT_FIELDS, DEFAULT_FIELDS};
use super::limits::{Limits, DAILY_PROBE};
use super::SalesforceConfig;
use crate::batch::Keyed;
use crate::templates::FieldTemplates;
use crate::{
    http, Connector, Delivery, Failure, Outcome, Reason, RenderContext, RenderError, Secret,
};

/// sObject Collections take at most this many records per call.
pub const MAX_BATCH: usize = 200;

/// A configured Salesforce org.
pub struct Salesforce {
    /// Its name in config: the records oie synced through it are named by it.
    name: String,
    client: reqwest::Client,
    auth: Auth,
    limits: Limits,
    object: String,
    external_id: String,
    version: String,
    fields: FieldTemplates,
    account_external_id: String,
    account_fields: FieldTemplates,
    record_url: Option<String>,
    timeout: Duration,
    calls: AtomicU64,
}

/// The key of an Account payload (an account record).
const ACCOUNT: &str = "account";

impl Salesforce {
    /// `private_key` is the PEM text of `private_key_file` or `private_key`, read by the caller.
    pub fn new(
        config: SalesforceConfig,
        private_key: Option<Secret>,
        name: &str,
    ) -> Result<Self, String> {
        let auth = Auth::from_config(&config, private_key.as_ref())?;
        if !(config.headroom >= 0.0 && config.headroom < 1.0) {
            return Err("headroom must be a share between 0 and 1, like 0.10".into());
        }
        let version = match config.api_version.trim_start_matches('v') {
            v if v
                .split('.')
                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit())) =>
            {
                format!("v{v}")
            }
            _ => {
                return Err(format!(
                    "api_version `{}` is not like \"v66.0\"",
                    config.api_version
                ))
            }
        };
        let valid_name =
            |n: &str| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        for (what, field) in [
            ("object", &config.object),
            ("external_id_field", &config.external_id_field),
            (
                "account_external_id_field",
                &config.account_external_id_field,
            ),
        ] {
            if !valid_name(field) {
                return Err(format!("{what} `{field}` is not a Salesforce API name"));
            }
        }
        let mut account_fields: Vec<(String, String)> = DEFAULT_ACCOUNT_FIELDS
            .iter()
            .filter(|(n, _)| !config.account_fields.contains_key(*n))
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .collect();
        for (field, template) in &config.account_fields {
            if !valid_name(field) || field == &config.account_external_id_field {
                return Err(format!(
                    "account_fields: `{field}` is not a field oie can set"
                ));
            }
            if !template.trim().is_empty() {
                account_fields.push((field.clone(), template.clone()));
            }
        }
        let account_fields = FieldTemplates::compile(account_fields.iter().map(|(n, t)| (n, t)))
            .map_err(|e| format!("account_fields: {e}"))?;
        crate::check_record_url(&config.record_url)?;
        let defaults = DEFAULT_FIELDS
            .iter()
            // Contacts have no Company field; their account is a lookup.
            .filter(|(name, _)| config.object == "Lead" || *name != "Company")
            .filter(|(name, _)| !config.fields.contains_key(*name));
        let mut fields: Vec<(String, String)> = defaults
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .collect();
        for (name, template) in &config.fields {
            if name == &config.external_id_field {
                return Err(format!(
                    "fields: `{name}` is the external id field; oie sets it to the visitor id"
                ));
            }
            if !valid_name(name) {
                return Err(format!("fields: `{name}` is not a Salesforce API name"));
            }
            if !template.trim().is_empty() {
                fields.push((name.clone(), template.clone()));
            }
        }
        let fields = FieldTemplates::compile(fields.iter().map(|(n, t)| (n, t)))
            .map_err(|e| format!("fields: {e}"))?;
        let client = http::api_client()?;
        Ok(Salesforce {
            name: name.to_string(),
            client,
            auth,
            limits: Limits::new(config.headroom),
            object: config.object,
            external_id: config.external_id_field,
            version,
            fields,
            account_external_id: config.account_external_id_field,
            account_fields,
            record_url: config.record_url,
            timeout: config.timeout,
            calls: AtomicU64::new(0),
        })
    }

    /// API calls made so far (token requests not included).
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Token requests made so far.
    pub fn token_requests(&self) -> u64 {
        self.auth.mints()
    }

    /// One data call to `path` under the instance URL. A 401 mints a new token and tries once
    /// more. `Ok` is the body of a 200; `Err` the failure every record of the call shares.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<String, Failure> {
        let mut renewed = false;
        loop {
            let token = self.auth.token(&self.client, self.timeout).await?;
            let instance = token.instance_url.as_deref().unwrap_or_default();
            self.limits.pace().await;
            self.calls.fetch_add(1, Ordering::Relaxed);
            let mut request = self
                .client
                .request(method.clone(), format!("{instance}{path}"))
                .bearer_auth(token.access.expose())
                .timeout(self.timeout);
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = request
                .send()
                .await
                .map_err(|e| http::transport_failure(e, self.timeout))?;
            self.limits.observe(response.headers());
            let status = response.status().as_u16();
            let text = response.text().await.unwrap_or_default();
            // 204: a PATCH of one record (an owner assignment) answers without a body.
            if status == 200 || status == 204 {
                return Ok(text);
            }
            match classify::refused(status, &text, &self.external_id) {
                Refusal::Session(_) if !renewed => {
                    tracing::info!("Salesforce refused the session (401); minting a new token");
                    self.auth.rejected(&token).await;
                    renewed = true;
                }
                Refusal::Session(text) => {
                    return Err(Failure::new(Reason::Auth, format!(
                        "HTTP 401: Salesforce refused a new token too ({text}); check the app's policies and the user's permission set"
                    )))
                }
                Refusal::Limit { daily, text } if daily || self.limits.exhausted() => {
                    return Err(Failure::new(
                        Reason::Quota,
                        format!("Salesforce's daily API allocation is used up: {text}"),
                    )
                    .after(Some(DAILY_PROBE)));
                }
                Refusal::Limit { text, .. } => {
                    tracing::warn!("Salesforce refused a call for too many concurrent requests; backing off");
                    return Err(Failure::new(
                        Reason::Throttled,
                        format!("too many concurrent requests: {text}"),
                    ));
                }
                Refusal::Final(outcome) => return Err(outcome),
            }
        }
    }
}

#[async_trait]
impl Connector for Salesforce {
    fn kind(&self) -> &'static str {
        "salesforce"
    }

    fn is_crm(&self) -> bool {
        true
    }

    fn record_url(&self, id: &str) -> Option<String> {
        crate::record_link(&self.record_url, id)
    }

    /// Leads or Contacts for people, Accounts for accounts.
    fn takes(&self, trigger_kind: &str) -> bool {
        trigger_kind != "identity"
    }

    fn max_batch(&self) -> usize {
        MAX_BATCH
    }

    /// Collections calls are long; two in flight stay far from the 25 concurrent long requests.
    fn default_concurrency(&self) -> usize {
        2
    }

    /// A lead's profile changes several times a minute while its visitor browses: waiting lets
    /// the changes coalesce into one record and fills collections.
    fn default_batch_wait(&self) -> Duration {
        super::DEFAULT_BATCH_WAIT
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }

    fn gauges(&self) -> Vec<(&'static str, f64)> {
        match self.limits.usage() {
            Some((used, limit)) => vec![("daily_used", used as f64), ("daily_limit", limit as f64)],
            None => Vec::new(),
        }
    }

    async fn check(&self) -> Result<String, Failure> {
        let path = format!(
            "/services/data/{}/sobjects/{}/describe",
            self.version, self.object
        );
        let body = self.call(reqwest::Method::GET, &path, None).await?;
        let described: Value = serde_json::from_str(&body).unwrap_or_default();
        let known: HashMap<&str, &Value> = described["fields"]
            .as_array()
            .map(|f| {
                f.iter()
                    .filter_map(|x| Some((x["name"].as_str()?, x)))
                    .collect()
            })
            .unwrap_or_default();
        let mut missing: Vec<&str> = self
            .fields
            .names()
            .iter()
            .map(String::as_str)
            .filter(|n| !known.contains_key(n))
            .collect();
        match known.get(self.external_id.as_str()) {
            None => missing.insert(0, &self.external_id),
            Some(f) if f["externalId"] != Value::Bool(true) => {
                return Err(Failure::new(
                    Reason::InvalidItem,
                    format!(
                        "{}.{} exists but is not marked External ID",
                        self.object, self.external_id
                    ),
                ))
            }
            Some(_) => {}
        }
        if !missing.is_empty() {
            return Err(Failure::new(
                Reason::InvalidItem,
                format!(
                    "{} has no field {}; create it (see the README)",
                    self.object,
                    missing.join(", ")
                ),
            ));
        }
        let usage = self
            .limits
            .usage()
            .map(|(u, l)| format!("; API usage {u}/{l} today"))
            .unwrap_or_default();
        Ok(format!(
            "authenticated; {} has {} and every mapped field{usage}",
            self.object, self.external_id
        ))
    }

    fn render(&self, context: &RenderContext) -> Result<String, RenderError> {
        if let Some(erasure) = crate::erasure::render("salesforce", context) {
            // Record ids go into a URL: only what Salesforce ids are made of.
            let record = context.data()["record"].as_str().unwrap_or_default();
            if !record.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(RenderError::Render {
                    name: "salesforce".into(),
                    message: format!("`{record}` is not a Salesforce record id"),
                });
            }
            return erasure;
        }
        let data = context.data();
        if data["trigger"]["kind"]
            .as_str()
            .is_some_and(crate::is_account_kind)
        {
            return self.render_account(context);
        }
        let visitor = data["lead"]["visitorId"].as_str().unwrap_or_default();
        let mut record = Map::new();
        record.insert("attributes".into(), json!({ "type": self.object }));
        record.insert(self.external_id.clone(), json!(visitor));
        record.extend(self.fields.render(context)?);
        // A Contact belongs to its account's Account once oie has synced it here (Leads have no
        // account: they carry `Company`).
        if self.object == "Contact" {
            let account = data["account"]["records"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|r| r["connector"] == self.name.as_str())
                .and_then(|r| r["id"].as_str());
            if let Some(id) = account {
                record.insert("AccountId".into(), json!(id));
            }
        }
        Ok(Value::Object(record).to_string())
    }

    async fn send(&self, batch: &[Delivery]) -> Vec<Outcome> {
        crate::owner::send(self, batch).await
    }

    /// `Owner.Email` of the records, by SOQL (200 ids a query). A record owned by a queue has
    /// no e-mail to give.
    async fn record_owners(
        &self,
        records: &[String],
    ) -> Result<HashMap<String, Option<String>>, Failure> {
        let mut owners = HashMap::new();
        // Ids go into the query: only what Salesforce ids are made of.
        let ids: Vec<&String> = records
            .iter()
            .filter(|id| !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric()))
            .collect();
        for chunk in ids.chunks(MAX_BATCH) {
            let list: Vec<String> = chunk.iter().map(|id| format!("'{id}'")).collect();
            let soql = format!(
                "SELECT Id, Owner.Email FROM {} WHERE Id IN ({})",
                self.object,
                list.join(",")
            );
            let path = format!(
                "/services/data/{}/query?q={}",
                self.version,
                url::form_urlencoded::byte_serialize(soql.as_bytes()).collect::<String>()
            );
            let text = self
                .call(reqwest::Method::GET, &path, None)
                .await
                .map_err(|f| f.context("Owner query"))?;
            let parsed: Value = serde_json::from_str(&text).unwrap_or_default();
            for record in parsed["records"].as_array().into_iter().flatten() {
                let Some(id) = record["Id"].as_str() else {
                    continue;
                };
                let email = record["Owner"]["Email"]
                    .as_str()
                    .filter(|e| !e.is_empty())
                    .map(str::to_lowercase);
                owners.insert(id.to_string(), email);
            }
        }
        Ok(owners)
    }
}

impl Salesforce {
    /// An account's Account, upserted by `account_external_id_field` = its domain.
    fn render_account(&self, context: &RenderContext) -> Result<String, RenderError> {
        let domain = context.data()["account"]["accountDomain"]
            .as_str()
            .filter(|d| !d.is_empty())
            .ok_or_else(|| RenderError::Render {
                name: "salesforce".into(),
                message: "an account trigger without an account domain".into(),
            })?;
        let mut record = Map::new();
        record.insert("attributes".into(), json!({ "type": "Account" }));
        record.insert(self.account_external_id.clone(), json!(domain));
        record.extend(self.account_fields.render(context)?);
        Ok(json!({ ACCOUNT: Value::Object(record) }).to_string())
    }

    /// Deletes records oie synced, by id, with sObject Collections (200 a call). A record
    /// already deleted (or never there) counts as deleted. Deleted records spend 15 days in
    /// Salesforce's recycle bin.
    async fn delete(&self, records: &[String]) -> Vec<Outcome> {
        let mut outcomes = Vec::with_capacity(records.len());
        for chunk in records.chunks(MAX_BATCH) {
            let path = format!(
                "/services/data/{}/composite/sobjects?ids={}&allOrNone=false",
                self.version,
                chunk.join(",")
            );
            match self.call(reqwest::Method::DELETE, &path, None).await {
                Ok(text) => outcomes.extend(classify::per_deletion(&text, chunk)),
                Err(failure) => outcomes.extend(vec![Outcome::Failed(failure); chunk.len()]),
            }
        }
        outcomes
    }

    /// Records upserted by the external id in one collection call.
    async fn upsert(&self, batch: &[Delivery]) -> Vec<Outcome> {
        self.upsert_collection(batch, &self.object, &self.external_id, None)
            .await
    }

    /// Accounts upserted by their domain in one collection call.
    async fn upsert_accounts(&self, batch: &[Delivery]) -> Vec<Outcome> {
        self.upsert_collection(batch, "Account", &self.account_external_id, Some(ACCOUNT))
            .await
    }

    /// Records of `object` upserted by `external_id` in one collection call; the record is the
    /// payload (or its `wrapper` key).
    async fn upsert_collection(
        &self,
        batch: &[Delivery],
        object: &str,
        external_id: &str,
        wrapper: Option<&str>,
    ) -> Vec<Outcome> {
        // One record per key: two deliveries for one record share the later payload.
        let keyed = Keyed::new(
            batch,
            |d| {
                let mut record = serde_json::from_str::<Value>(&d.payload).map_err(|_| {
                    Outcome::failed(
                        Reason::InvalidItem,
                        "the stored payload is not a Salesforce record",
                    )
                })?;
                if let Some(key) = wrapper {
                    record = record[key].take();
                }
                let id = record[external_id]
                    .as_str()
                    .unwrap_or(&d.visitor_id)
                    .to_string();
                Ok((id, record))
            },
            |earlier, later| *earlier = later,
        );
        let records: Vec<&Value> = keyed.items().iter().map(|(_, r)| r).collect();
        if records.is_empty() {
            return keyed.finish(Vec::new(), "salesforce");
        }
        let path = format!(
            "/services/data/{}/composite/sobjects/{object}/{external_id}",
            self.version
        );
        let body = json!({"allOrNone": false, "records": records});
        let results = match self.call(reqwest::Method::PATCH, &path, Some(&body)).await {
            Ok(text) => classify::per_record(&text, records.len(), external_id),
            Err(failure) => vec![Outcome::Failed(failure); records.len()],
        };
        keyed.finish(results, "salesforce")
    }
}

#[async_trait]
impl crate::owner::AssignsOwners for Salesforce {
    /// Makes the active User with `email` the owner of `record` (`OwnerId`).
    async fn assign_owner(&self, email: &str, record: &str) -> Outcome {
        // SOQL string literal: backslash and quote escaped.
        let literal = email.replace('\\', "\\\\").replace('\'', "\\'");
        let soql =
            format!("SELECT Id FROM User WHERE Email = '{literal}' AND IsActive = true LIMIT 1");
        let path = format!(
            "/services/data/{}/query?q={}",
            self.version,
            url::form_urlencoded::byte_serialize(soql.as_bytes()).collect::<String>()
        );
        let user = match self.call(reqwest::Method::GET, &path, None).await {
            Ok(text) => serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["records"][0]["Id"].as_str().map(str::to_string)),
            Err(failure) => return Outcome::Failed(failure.context("User query")),
        };
        let Some(user) = user else {
            return Outcome::failed(
                Reason::InvalidItem,
                format!("Salesforce has no active User with the e-mail {email}: add or activate them, then replay this delivery"),
            );
        };
        let path = format!(
            "/services/data/{}/sobjects/{}/{record}",
            self.version, self.object
        );
        match self
            .call(
                reqwest::Method::PATCH,
                &path,
                Some(&json!({"OwnerId": user})),
            )
            .await
        {
            Ok(_) => Outcome::Delivered {
                record_id: Some(record.to_string()),
            },
            Err(failure) => Outcome::Failed(failure.context("owner")),
        }
    }

    /// Erasures and upserts.
    async fn send_others(&self, batch: &[Delivery]) -> Vec<Outcome> {
        crate::erasure::split(
            batch,
            async |records: Vec<String>| self.delete(&records).await,
            async |rest: &[Delivery]| {
                crate::batch::partition(
                    rest,
                    |d| d.payload.starts_with("{\"account\""),
                    async |accounts: &[Delivery]| self.upsert_accounts(accounts).await,
                    async |records: &[Delivery]| self.upsert(records).await,
                )
                .await
            },
        )
        .await
    }
}
