use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value};

use super::auth::Auth;
use super::classify::{self, Limit};
use super::config::{DEFAULT_COMPANY_PROPERTIES, DEFAULT_PROPERTIES};
use super::window::Window;
use super::HubSpotConfig;
use crate::batch::Keyed;
use crate::cache::TtlCache;
use crate::templates::FieldTemplates;
use crate::{
    http, Connector, Delivery, Failure, Outcome, Reason, RenderContext, RenderError, TemplateSet,
};

/// HubSpot's batch upsert takes at most this many inputs.
pub const MAX_BATCH: usize = 100;

/// Note → contact, HubSpot-defined association type.
const NOTE_TO_CONTACT: u32 = 202;

/// The key of a company payload (an account record).
const COMPANY: &str = "company";

/// A configured HubSpot account.
pub struct HubSpot {
    /// Its name in config: the records oie synced through it are named by it.
    name: String,
    client: reqwest::Client,
    /// `base_url`, for the owners API.
    base: String,
    objects: String,
    auth: Auth,
    window: Window,
    properties: FieldTemplates,
    company_properties: FieldTemplates,
    company_id_property: String,
    record_url: Option<String>,
    templates: Arc<TemplateSet>,
    note_template: Option<String>,
    timeout: Duration,
    calls: AtomicU64,
    /// Owner id → the owner's e-mail (`None`: no such owner, or no e-mail).
    owners: TtlCache<Option<String>>,
}

/// How long an owner's e-mail is trusted: owners are a portal's users, and rarely change.
const OWNER_TTL: Duration = Duration::from_secs(3600);

impl HubSpot {
    pub fn new(
        config: HubSpotConfig,
        templates: Arc<TemplateSet>,
        name: &str,
    ) -> Result<Self, String> {
        let auth = Auth::from_config(&config)?;
        reqwest::Url::parse(&config.base_url)
            .map_err(|e| format!("base_url is not a valid URL: {e}"))?;
        if !config.objects_path.starts_with('/') {
            return Err("objects_path must start with `/`, like \"/crm/objects/2026-03\"".into());
        }
        let mut fields: Vec<(String, String)> = DEFAULT_PROPERTIES
            .iter()
            .filter(|(name, _)| !config.properties.contains_key(*name))
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .collect();
        fields.extend(
            config
                .properties
                .iter()
                .filter(|(_, t)| !t.trim().is_empty())
                .map(|(n, t)| (n.clone(), t.clone())),
        );
        let properties = FieldTemplates::compile(fields.iter().map(|(n, t)| (n, t)))
            .map_err(|e| format!("properties: {e}"))?;
        let company_fields = merged(DEFAULT_COMPANY_PROPERTIES, &config.company_properties);
        let company_properties =
            FieldTemplates::compile(company_fields.iter().map(|(n, t)| (n, t)))
                .map_err(|e| format!("company_properties: {e}"))?;
        crate::check_record_url(&config.record_url)?;
        if config.company_id_property.trim().is_empty() {
            return Err("company_id_property is empty: name a company property with unique values, like \"oie_account_domain\"".into());
        }
        if let Some(name) = &config.note_template {
            if !templates.has(name) {
                return Err(format!("note_template `{name}` does not exist"));
            }
        }
        let client = http::api_client()?;
        Ok(HubSpot {
            name: name.to_string(),
            client,
            base: config.base_url.trim_end_matches('/').to_string(),
            objects: format!(
                "{}{}",
                config.base_url.trim_end_matches('/'),
                config.objects_path.trim_end_matches('/')
            ),
            auth,
            window: Window::new(config.window_limit, config.window),
            properties,
            company_properties,
            company_id_property: config.company_id_property,
            record_url: config.record_url,
            templates,
            note_template: config.note_template,
            timeout: config.timeout,
            calls: AtomicU64::new(0),
            owners: TtlCache::new(OWNER_TTL),
        })
    }

    /// API calls made so far (token requests not included).
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// The requests per window the connector paces to now, and the window.
    pub fn window_limit(&self) -> (u32, Duration) {
        self.window.limit()
    }

    /// OAuth token refreshes made so far.
    pub fn token_requests(&self) -> u64 {
        self.auth.mints()
    }

    /// One API call, paced by the window, with one fresh token after a 401 of a refreshed
    /// token. `Ok` carries the status and body of a 2xx (207 included); `Err` the failure every
    /// input of the request shares.
    async fn call(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<(u16, String), Failure> {
        let mut renewed = false;
        loop {
            let token = self.auth.token(&self.client, self.timeout).await?;
            self.window.acquire().await;
            self.calls.fetch_add(1, Ordering::Relaxed);
            let mut request = self
                .client
                .request(method.clone(), url)
                .bearer_auth(token.access.expose())
                .timeout(self.timeout);
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = request
                .send()
                .await
                .map_err(|e| http::transport_failure(e, self.timeout))?;
            self.window.observe(response.headers());
            let status = response.status().as_u16();
            let after = http::retry_after(response.headers());
            let text = response.text().await.unwrap_or_default();
            match status {
                200..=299 => return Ok((status, text)),
                401 if !renewed && self.auth.rejected(&token).await => renewed = true,
                429 => return Err(self.limited(&text, after)),
                _ => return Err(classify::refused(status, after, &text)),
            }
        }
    }

    /// A 429: wait out the window (`throttled`), or until the daily reset (`quota`, which
    /// parks the connector).
    fn limited(&self, body: &str, after: Option<Duration>) -> Failure {
        let text = classify::message(body);
        match classify::limit_policy(body) {
            Limit::Daily => {
                let wait = self.window.daily_wait();
                Failure::new(
                    Reason::Quota,
                    format!("HubSpot's daily API allocation is used up (429 DAILY): {text}"),
                )
                .after(Some(wait))
            }
            Limit::Window => {
                let wait = self.window.throttled().max(after.unwrap_or_default());
                tracing::warn!(
                    wait = ?wait,
                    "HubSpot's 10-second limit was hit (429 TEN_SECONDLY_ROLLING); pausing for one window"
                );
                Failure::new(
                    Reason::Throttled,
                    format!("429 TEN_SECONDLY_ROLLING: {text}"),
                )
                .after(Some(wait))
            }
        }
    }

    /// Deletes a contact oie synced, permanently, with HubSpot's GDPR delete (one call per
    /// contact: there is no batch form). A contact already gone counts as deleted.
    async fn gdpr_delete(&self, record: &str) -> Outcome {
        let url = format!("{}/contacts/gdpr-delete", self.objects);
        let body = json!({ "objectId": record });
        match self.call(reqwest::Method::POST, &url, Some(&body)).await {
            Ok(_) => Outcome::Delivered {
                record_id: Some(record.to_string()),
            },
            Err(f) if f.reason == Reason::NotFound => Outcome::Delivered { record_id: None },
            Err(f) => Outcome::Failed(f.context("gdpr-delete")),
        }
    }

    /// Creates one Note per delivered input that asked for one, associated with its contact.
    /// Returns the outcome of inputs whose note failed.
    async fn notes(&self, notes: &[(usize, String, &Value)]) -> Option<Outcome> {
        if notes.is_empty() {
            return None;
        }
        let inputs: Vec<Value> = notes
            .iter()
            .map(|(_, contact, note)| {
                json!({
                    "properties": {
                        "hs_timestamp": note["timestamp"],
                        "hs_note_body": note["body"],
                    },
                    "associations": [{
                        "to": {"id": contact},
                        "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": NOTE_TO_CONTACT}],
                    }],
                })
            })
            .collect();
        let url = format!("{}/notes/batch/create", self.objects);
        match self
            .call(
                reqwest::Method::POST,
                &url,
                Some(&json!({ "inputs": inputs })),
            )
            .await
        {
            Ok((207, body)) => Some(Outcome::failed(
                Reason::ServerError,
                format!("note: some notes failed: {}", classify::message(&body)),
            )),
            Ok(_) => None,
            Err(failure) => Some(Outcome::Failed(failure.context("note"))),
        }
    }
}

/// The default fields not named in `config`, then `config`'s with a template (an empty one
/// drops a default).
fn merged(
    defaults: &[(&str, &str)],
    config: &std::collections::BTreeMap<String, String>,
) -> Vec<(String, String)> {
    let mut fields: Vec<(String, String)> = defaults
        .iter()
        .filter(|(name, _)| !config.contains_key(*name))
        .map(|(n, t)| (n.to_string(), t.to_string()))
        .collect();
    fields.extend(
        config
            .iter()
            .filter(|(_, t)| !t.trim().is_empty())
            .map(|(n, t)| (n.clone(), t.clone())),
    );
    fields
}

/// The ids of the records oie synced through connector `name`, from a list of
/// `{connector, id}` in the render data.
fn records_of<'a>(records: &'a Value, name: &'a str) -> impl Iterator<Item = &'a str> {
    records
        .as_array()
        .into_iter()
        .flatten()
        .filter(move |r| r["connector"] == name)
        .filter_map(|r| r["id"].as_str())
}

/// One contact input: the upsert body, and the Note to create for it.
struct Input {
    body: Value,
    note: Option<Value>,
    /// The id of the lead's company (its account's record), to associate the contact with.
    company: Option<String>,
}

/// Reads a stored payload: the lower-cased e-mail it upserts by, and the input.
fn input(delivery: &Delivery) -> Result<(String, Input), Outcome> {
    serde_json::from_str::<Value>(&delivery.payload)
        .ok()
        .and_then(|mut body| {
            let id = body["id"].as_str()?.to_lowercase();
            let note = body.as_object_mut()?.remove("note");
            let company = body
                .as_object_mut()?
                .remove(COMPANY)
                .and_then(|c| c.as_str().map(str::to_string));
            Some((
                id,
                Input {
                    body,
                    note,
                    company,
                },
            ))
        })
        .ok_or_else(|| {
            Outcome::failed(
                Reason::InvalidItem,
                "the stored payload is not a HubSpot contact input",
            )
        })
}

/// One company input: the upsert body, and the contacts to associate with it.
struct CompanyInput {
    body: Value,
    contacts: Vec<String>,
}

/// Reads a stored company payload: the lower-cased domain it upserts by, and the input.
fn company_input(delivery: &Delivery) -> Result<(String, CompanyInput), Outcome> {
    serde_json::from_str::<Value>(&delivery.payload)
        .ok()
        .and_then(|v| {
            let id = v[COMPANY]["id"].as_str()?.to_lowercase();
            let contacts = v["contacts"]
                .as_array()?
                .iter()
                .filter_map(|c| c.as_str().map(str::to_string))
                .collect();
            Some((
                id,
                CompanyInput {
                    body: v[COMPANY].clone(),
                    contacts,
                },
            ))
        })
        .ok_or_else(|| {
            Outcome::failed(
                Reason::InvalidItem,
                "the stored payload is not a HubSpot company input",
            )
        })
}

/// Two deliveries for one company: the later body wins, the contacts of both are associated.
fn merge_company(earlier: &mut CompanyInput, later: CompanyInput) {
    earlier.body = later.body;
    for c in later.contacts {
        if !earlier.contacts.contains(&c) {
            earlier.contacts.push(c);
        }
    }
}

/// Two deliveries for one e-mail: the later body wins, and a Note asked for by either is kept.
fn merge(earlier: &mut Input, later: Input) {
    earlier.body = later.body;
    if later.note.is_some() {
        earlier.note = later.note;
    }
    if later.company.is_some() {
        earlier.company = later.company;
    }
}

#[async_trait]
impl Connector for HubSpot {
    fn kind(&self) -> &'static str {
        "hubspot"
    }

    fn is_crm(&self) -> bool {
        true
    }

    fn record_url(&self, id: &str) -> Option<String> {
        crate::record_link(&self.record_url, id)
    }

    /// Contacts for people, companies for accounts.
    fn takes(&self, trigger_kind: &str) -> bool {
        trigger_kind != "identity"
    }

    fn max_batch(&self) -> usize {
        MAX_BATCH
    }

    /// The window paces requests; a few in flight keep it busy.
    fn default_concurrency(&self) -> usize {
        4
    }

    /// A lead's profile changes several times a minute while its visitor browses: waiting lets
    /// the changes coalesce into one input and fills batches.
    fn default_batch_wait(&self) -> Duration {
        super::DEFAULT_BATCH_WAIT
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }

    fn gauges(&self) -> Vec<(&'static str, f64)> {
        let seen = self.window.seen();
        let known = [
            ("window_limit", seen.window_max),
            ("window_remaining", seen.window_remaining),
            ("daily_limit", seen.daily),
            ("daily_remaining", seen.daily_remaining),
        ];
        known
            .into_iter()
            .filter_map(|(n, v)| v.map(|v| (n, v)))
            .collect()
    }

    async fn check(&self) -> Result<String, Failure> {
        let url = format!("{}/contacts?limit=1", self.objects);
        self.call(reqwest::Method::GET, &url, None).await?;
        let (limit, window) = self.window.limit();
        let daily = self
            .window
            .seen()
            .daily_remaining
            .map(|d| format!(", {d} calls left today"))
            .unwrap_or_default();
        Ok(format!(
            "authenticated; contacts readable; pacing {limit} requests per {window:?}{daily}"
        ))
    }

    fn render(&self, context: &RenderContext) -> Result<String, RenderError> {
        if let Some(erasure) = crate::erasure::render("hubspot", context) {
            return erasure;
        }
        let data = context.data();
        if data["trigger"]["kind"]
            .as_str()
            .is_some_and(crate::is_account_kind)
        {
            return self.render_company(context);
        }
        let email = data["lead"]["email"]
            .as_str()
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .ok_or_else(|| RenderError::Render {
                name: "hubspot".into(),
                message: "the lead has no e-mail, and HubSpot contacts are upserted by e-mail; route only leads with `lead.email != null` here".into(),
            })?;
        let mut input = json!({
            "id": email,
            "idProperty": "email",
            "properties": Value::Object(self.properties.render(context)?),
        });
        if let Some(name) = &self.note_template {
            if data["trigger"]["kind"] == "hot_lead" {
                input["note"] = json!({
                    "timestamp": data["trigger"]["at"],
                    "body": self.templates.render_text(name, context)?.trim(),
                });
            }
        }
        // The lead's company, once oie has synced its account here: the contact joins it.
        if let Some(company) = records_of(&data["account"]["records"], &self.name).next() {
            input[COMPANY] = json!(company);
        }
        Ok(input.to_string())
    }

    async fn send(&self, batch: &[Delivery]) -> Vec<Outcome> {
        crate::owner::send(self, batch).await
    }

    /// The contacts' `hubspot_owner_id` by batch read (100 per call), each owner's e-mail from
    /// the owners API (cached for an hour).
    async fn record_owners(
        &self,
        records: &[String],
    ) -> Result<HashMap<String, Option<String>>, Failure> {
        let mut owners = HashMap::new();
        let url = format!("{}/contacts/batch/read", self.objects);
        for chunk in records.chunks(MAX_BATCH) {
            let inputs: Vec<Value> = chunk.iter().map(|id| json!({ "id": id })).collect();
            let body = json!({"properties": ["hubspot_owner_id"], "inputs": inputs});
            // 207: some contacts are gone; the others are read.
            let (_, text) = self
                .call(reqwest::Method::POST, &url, Some(&body))
                .await
                .map_err(|f| f.context("contacts batch read"))?;
            let parsed: Value = serde_json::from_str(&text).unwrap_or_default();
            for contact in parsed["results"].as_array().into_iter().flatten() {
                let Some(id) = contact["id"].as_str() else {
                    continue;
                };
                let owner = contact["properties"]["hubspot_owner_id"]
                    .as_str()
                    .filter(|o| !o.is_empty());
                let email = match owner {
                    Some(owner) => self.owner_email(owner).await?,
                    None => None,
                };
                owners.insert(id.to_string(), email);
            }
        }
        Ok(owners)
    }
}

impl HubSpot {
    /// The e-mail of owner `id` (`GET /crm/v3/owners/{id}`); `None` for an owner HubSpot no
    /// longer has.
    async fn owner_email(&self, id: &str) -> Result<Option<String>, Failure> {
        if let Some(known) = self.owners.get(id) {
            return Ok(known);
        }
        let url = format!(
            "{}/crm/v3/owners/{}",
            self.base,
            url::form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>()
        );
        let email = match self.call(reqwest::Method::GET, &url, None).await {
            Ok((_, text)) => serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["email"].as_str().map(str::to_lowercase))
                .filter(|e| !e.is_empty()),
            Err(f) if f.reason == Reason::NotFound => None,
            Err(f) => return Err(f.context("owners")),
        };
        self.owners.put(id, email.clone());
        Ok(email)
    }
}

impl HubSpot {
    /// An account's company: upserted by `company_id_property` = the account's domain, with
    /// the contacts of its people oie synced here to associate with it.
    fn render_company(&self, context: &RenderContext) -> Result<String, RenderError> {
        let account = &context.data()["account"];
        let domain = account["accountDomain"]
            .as_str()
            .filter(|d| !d.is_empty())
            .ok_or_else(|| RenderError::Render {
                name: "hubspot".into(),
                message: "an account trigger without an account domain".into(),
            })?;
        let mut properties = self.company_properties.render(context)?;
        properties.insert(self.company_id_property.clone(), json!(domain));
        let contacts: Vec<&str> = records_of(&account["memberRecords"], &self.name).collect();
        Ok(json!({
            COMPANY: {"id": domain, "idProperty": self.company_id_property, "properties": properties},
            "contacts": contacts,
        })
        .to_string())
    }

    /// Companies upserted in one batch call (by `company_id_property`), then the contacts each
    /// names associated with it.
    async fn upsert_companies(&self, batch: &[Delivery]) -> Vec<Outcome> {
        let keyed = Keyed::new(batch, company_input, merge_company);
        let inputs = keyed.items();
        if inputs.is_empty() {
            return keyed.finish(Vec::new(), "hubspot");
        }
        let bodies: Vec<&Value> = inputs.iter().map(|(_, c)| &c.body).collect();
        let ids: Vec<String> = inputs.iter().map(|(id, _)| id.clone()).collect();
        let mut results = self
            .batch_upsert("companies", &bodies, &ids, &self.company_id_property)
            .await;
        let pairs: Vec<(usize, String, String)> = inputs
            .iter()
            .enumerate()
            .flat_map(|(i, (_, company))| {
                let id = results[i].record_id().map(str::to_string);
                company
                    .contacts
                    .iter()
                    .filter_map(move |c| Some((i, c.clone(), id.clone()?)))
            })
            .collect();
        self.associate_into(&pairs, &mut results).await;
        keyed.finish(results, "hubspot")
    }

    /// One batch upsert of `object` (`contacts`, `companies`): an outcome per input, found by
    /// its id (`ids`, lower-cased values of the `key` property).
    async fn batch_upsert(
        &self,
        object: &str,
        bodies: &[&Value],
        ids: &[String],
        key: &str,
    ) -> Vec<Outcome> {
        let url = format!("{}/{object}/batch/upsert", self.objects);
        let body = json!({ "inputs": bodies });
        match self.call(reqwest::Method::POST, &url, Some(&body)).await {
            Ok((_, text)) => {
                let parsed = serde_json::from_str::<Value>(&text).unwrap_or(Value::Null);
                classify::per_input(ids, key, &parsed)
            }
            Err(failure) => vec![Outcome::Failed(failure); ids.len()],
        }
    }

    /// Associates contacts with companies, `(input, contact, company)`; when that fails, the
    /// failure becomes those inputs' outcome in `results` (their upsert is retried with it).
    async fn associate_into(&self, pairs: &[(usize, String, String)], results: &mut [Outcome]) {
        if let Some(failed) = self.associate(pairs).await {
            for (i, _, _) in pairs {
                results[*i] = failed.clone();
            }
        }
    }

    /// Associates contacts with companies, `(input, contact, company)`, with the v4 batch
    /// default association (≤ 100 a call). Returns the outcome of the inputs whose
    /// associations failed.
    async fn associate(&self, pairs: &[(usize, String, String)]) -> Option<Outcome> {
        let url = format!(
            "{}/crm/v4/associations/contacts/companies/batch/associate/default",
            self.base
        );
        for chunk in pairs.chunks(MAX_BATCH) {
            let inputs: Vec<Value> = chunk
                .iter()
                .map(
                    |(_, contact, company)| json!({"from": {"id": contact}, "to": {"id": company}}),
                )
                .collect();
            match self
                .call(
                    reqwest::Method::POST,
                    &url,
                    Some(&json!({ "inputs": inputs })),
                )
                .await
            {
                Ok((207, body)) => {
                    return Some(Outcome::failed(
                        Reason::ServerError,
                        format!("association: some failed: {}", classify::message(&body)),
                    ))
                }
                Ok(_) => {}
                Err(failure) => return Some(Outcome::Failed(failure.context("association"))),
            }
        }
        None
    }

    /// Contacts upserted in one batch call, then their Notes.
    async fn upsert(&self, batch: &[Delivery]) -> Vec<Outcome> {
        let keyed = Keyed::new(batch, input, merge);
        let inputs = keyed.items();
        if inputs.is_empty() {
            return keyed.finish(Vec::new(), "hubspot");
        }
        let bodies: Vec<&Value> = inputs.iter().map(|(_, i)| &i.body).collect();
        let ids: Vec<String> = inputs.iter().map(|(id, _)| id.clone()).collect();
        let mut results = self.batch_upsert("contacts", &bodies, &ids, "email").await;
        let notes: Vec<(usize, String, &Value)> = inputs
            .iter()
            .enumerate()
            .filter_map(|(i, (_, input))| {
                Some((i, results[i].record_id()?.to_string(), input.note.as_ref()?))
            })
            .collect();
        if let Some(failed) = self.notes(&notes).await {
            for (i, _, _) in &notes {
                results[*i] = failed.clone();
            }
        }
        let pairs: Vec<(usize, String, String)> = inputs
            .iter()
            .enumerate()
            .filter_map(|(i, (_, input))| {
                Some((
                    i,
                    results[i].record_id()?.to_string(),
                    input.company.clone()?,
                ))
            })
            .collect();
        self.associate_into(&pairs, &mut results).await;
        keyed.finish(results, "hubspot")
    }
}

#[async_trait]
impl crate::owner::AssignsOwners for HubSpot {
    /// Makes the HubSpot owner with `email` the owner of contact `record` (`hubspot_owner_id`).
    async fn assign_owner(&self, email: &str, record: &str) -> Outcome {
        let url = format!(
            "{}/crm/v3/owners?email={}",
            self.base,
            url::form_urlencoded::byte_serialize(email.as_bytes()).collect::<String>()
        );
        let owner = match self.call(reqwest::Method::GET, &url, None).await {
            Ok((_, text)) => serde_json::from_str::<Value>(&text).ok().and_then(|v| {
                v["results"][0]["id"]
                    .as_str()
                    .map(str::to_string)
                    .or_else(|| v["results"][0]["id"].as_i64().map(|n| n.to_string()))
            }),
            Err(failure) => return Outcome::Failed(failure.context("owners")),
        };
        let Some(owner) = owner else {
            return Outcome::failed(
                Reason::InvalidItem,
                format!("HubSpot has no owner with the e-mail {email}: add them as a user of the portal, then replay this delivery"),
            );
        };
        let url = format!("{}/contacts/{record}", self.objects);
        let body = json!({"properties": {"hubspot_owner_id": owner}});
        match self.call(reqwest::Method::PATCH, &url, Some(&body)).await {
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
            async |records: Vec<String>| {
                let mut outcomes = Vec::with_capacity(records.len());
                for record in records {
                    outcomes.push(self.gdpr_delete(&record).await);
                }
                outcomes
            },
            async |rest: &[Delivery]| {
                crate::batch::partition(
                    rest,
                    |d| d.payload.starts_with("{\"company\""),
                    async |companies: &[Delivery]| self.upsert_companies(companies).await,
                    async |contacts: &[Delivery]| self.upsert(contacts).await,
                )
                .await
            },
        )
        .await
    }
}
