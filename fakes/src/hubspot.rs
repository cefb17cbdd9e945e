//! A local HubSpot CRM: contacts batch upsert by e-mail (200, or 207 with per-input errors),
//! notes batch create, a contacts read and batch read, owners (by e-mail and by id, and a
//! rotation that gives new contacts an owner), OAuth refresh, and the rate limits — a rolling window
//! (100 per 10 s by default) that answers 429 `TEN_SECONDLY_ROLLING` to the request that does not
//! fit, a daily allocation that answers 429 `DAILY`, and the `X-HubSpot-RateLimit-*` headers on
//! every answer.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

pub const TOKEN: &str = "pat-na1-fake-token";
pub const CLIENT_ID: &str = "fake-client-id";
pub const CLIENT_SECRET: &str = "fake-client-secret";
pub const REFRESH_TOKEN: &str = "fake-refresh-token";

/// Contact properties the fake portal has; others are refused like HubSpot does.
const PROPERTIES: &[&str] = &[
    "hubspot_owner_id",
    "email",
    "firstname",
    "lastname",
    "company",
    "jobtitle",
    "oie_intent_score",
    "oie_engagement_level",
    "oie_visitor_id",
    "oie_last_page",
];

#[derive(Debug, Clone)]
pub struct Contact {
    pub id: String,
    pub properties: HashMap<String, String>,
    pub updates: u32,
}

#[derive(Debug, Clone)]
pub struct Note {
    pub contact: String,
    pub body: String,
    pub timestamp: String,
}

struct Inner {
    window_max: usize,
    window: Duration,
    sent: VecDeque<Instant>,
    daily_limit: u64,
    daily_used: u64,
    access_lifetime: Duration,
    access_tokens: HashMap<String, Instant>,
    contacts: HashMap<String, Contact>,
    notes: Vec<Note>,
    next_id: u64,
    upsert_calls: u64,
    note_calls: u64,
    token_calls: u64,
    limited_window: u64,
    limited_daily: u64,
    fail_next: VecDeque<u16>,
    /// Every token is refused (401) until then: a rotation in progress.
    refuse_tokens_until: Option<Instant>,
    refused: u64,
    /// Contacts removed by GDPR delete (their ids).
    gdpr_deleted: Vec<String>,
    /// E-mails a GDPR delete named that matched no contact: HubSpot blocklists them.
    blocklisted: Vec<String>,
    /// The portal's users as owners: e-mail → owner id.
    owners: HashMap<String, String>,
    /// The owner id new contacts get (a HubSpot workflow's rotation), if any.
    rotation: Option<String>,
    /// `GET /crm/v3/owners/{id}` calls.
    owner_reads: u64,
    /// Companies by the unique `oie_account_domain`.
    companies: HashMap<String, Contact>,
    /// Contact id → company ids it is associated with.
    associations: HashMap<String, HashSet<String>>,
}

/// The fake and what it saw.
#[derive(Clone)]
pub struct HubSpotFake {
    pub base: String,
    inner: Arc<Mutex<Inner>>,
}

impl HubSpotFake {
    /// A portal with HubSpot's default limits: 100 requests per 10 s, 250,000 a day.
    pub async fn start() -> HubSpotFake {
        Self::with_window(100, Duration::from_secs(10)).await
    }

    pub async fn with_window(max: usize, window: Duration) -> HubSpotFake {
        let inner = Arc::new(Mutex::new(Inner {
            window_max: max,
            window,
            sent: VecDeque::new(),
            daily_limit: 250_000,
            daily_used: 0,
            access_lifetime: Duration::from_secs(1800),
            access_tokens: HashMap::new(),
            contacts: HashMap::new(),
            notes: Vec::new(),
            next_id: 1000,
            upsert_calls: 0,
            note_calls: 0,
            token_calls: 0,
            limited_window: 0,
            limited_daily: 0,
            fail_next: VecDeque::new(),
            refuse_tokens_until: None,
            refused: 0,
            gdpr_deleted: Vec::new(),
            blocklisted: Vec::new(),
            owners: HashMap::new(),
            rotation: None,
            owner_reads: 0,
            companies: HashMap::new(),
            associations: HashMap::new(),
        }));
        let app = Router::new()
            .route("/oauth/2026-03/token", post(token))
            .route("/oauth/v1/token", post(token))
            .route("/crm/{a}/{b}/contacts/batch/upsert", post(upsert))
            .route("/crm/{a}/{b}/notes/batch/create", post(notes))
            .route("/crm/{a}/{b}/contacts", get(list))
            .route("/crm/{a}/{b}/contacts/gdpr-delete", post(gdpr_delete))
            .route("/crm/v3/owners", get(owners))
            .route("/crm/v3/owners/{id}", get(owner))
            .route("/crm/{a}/{b}/contacts/batch/read", post(batch_read))
            .route(
                "/crm/{a}/{b}/companies/batch/upsert",
                post(upsert_companies),
            )
            .route(
                "/crm/v4/associations/contacts/companies/batch/associate/default",
                post(associate),
            )
            .route(
                "/crm/{a}/{b}/contacts/{id}",
                axum::routing::patch(update_contact),
            )
            .with_state(inner.clone());
        HubSpotFake {
            base: crate::serve(app).await,
            inner,
        }
    }

    /// Adds a user of the portal, who can own records; returns their owner id.
    pub fn add_owner(&self, email: &str) -> String {
        let mut s = self.lock();
        let id = format!("{}", 77_000 + s.owners.len());
        s.owners.insert(email.to_lowercase(), id.clone());
        id
    }

    /// New contacts are owned by the owner with `email` (added if missing), as a HubSpot
    /// workflow assigning new contacts would; `None` stops it. Returns the owner id.
    pub fn assign_new_contacts_to(&self, email: Option<&str>) -> Option<String> {
        let id = email.map(|e| {
            let known = self.lock().owners.get(&e.to_lowercase()).cloned();
            known.unwrap_or_else(|| self.add_owner(e))
        });
        self.lock().rotation = id.clone();
        id
    }

    /// The companies, by their `oie_account_domain`.
    pub fn companies(&self) -> HashMap<String, Contact> {
        self.lock().companies.clone()
    }

    /// The ids of the contacts associated with company `id`, sorted.
    pub fn contacts_of_company(&self, id: &str) -> Vec<String> {
        let s = self.lock();
        let mut ids: Vec<String> = s
            .associations
            .iter()
            .filter(|(_, companies)| companies.contains(id))
            .map(|(c, _)| c.clone())
            .collect();
        ids.sort();
        ids
    }

    /// `GET /crm/v3/owners/{id}` calls so far.
    pub fn owner_reads(&self) -> u64 {
        self.lock().owner_reads
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap()
    }

    /// Changes the rate-limit window while running.
    pub fn set_window(&self, max: usize, window: Duration) {
        let mut s = self.lock();
        s.window_max = max;
        s.window = window;
    }

    pub fn set_daily(&self, limit: u64, used: u64) {
        let mut s = self.lock();
        s.daily_limit = limit;
        s.daily_used = used;
    }

    /// Access tokens minted from now on live this long.
    pub fn set_access_lifetime(&self, lifetime: Duration) {
        self.lock().access_lifetime = lifetime;
    }

    /// Refuses every token with 401 for `d` from now, as while a private-app token is rotated.
    pub fn refuse_tokens_for(&self, d: Duration) {
        self.lock().refuse_tokens_until = Some(Instant::now() + d);
    }

    /// Data calls refused with 401 so far.
    pub fn refused(&self) -> u64 {
        self.lock().refused
    }

    /// The next data calls answer these statuses (e.g. 503) before working again.
    pub fn fail_next(&self, statuses: &[u16]) {
        self.lock().fail_next.extend(statuses);
    }

    /// Ids of the contacts GDPR-deleted so far.
    pub fn gdpr_deleted(&self) -> Vec<String> {
        self.lock().gdpr_deleted.clone()
    }

    /// E-mails HubSpot blocklisted because a GDPR delete named them without a contact.
    pub fn blocklisted(&self) -> Vec<String> {
        self.lock().blocklisted.clone()
    }

    pub fn contacts(&self) -> HashMap<String, Contact> {
        self.lock().contacts.clone()
    }

    pub fn contact(&self, email: &str) -> Option<Contact> {
        self.lock().contacts.get(&email.to_lowercase()).cloned()
    }

    pub fn notes(&self) -> Vec<Note> {
        self.lock().notes.clone()
    }

    /// Batch upsert calls that reached the contacts store (not rate-limited).
    pub fn upsert_calls(&self) -> u64 {
        self.lock().upsert_calls
    }

    pub fn note_calls(&self) -> u64 {
        self.lock().note_calls
    }

    pub fn token_calls(&self) -> u64 {
        self.lock().token_calls
    }

    /// 429s answered: (window, daily).
    pub fn rate_limited(&self) -> (u64, u64) {
        let s = self.lock();
        (s.limited_window, s.limited_daily)
    }
}

fn error(status: StatusCode, category: &str, message: &str) -> Response {
    (
        status,
        Json(json!({
            "status": "error",
            "message": message,
            "correlationId": "aeb5b58b-0d1c-4e1a-9b3e-fake",
            "category": category,
        })),
    )
        .into_response()
}

/// Auth, daily and window limits for a data call; `Err` is the answer to send instead.
/// Returns the rate-limit headers for the answer.
/// The fake, locked, for a request [`admit`] let through, with the rate-limit headers.
fn admitted<'a>(
    inner: &'a Mutex<Inner>,
    headers: &HeaderMap,
) -> Result<(std::sync::MutexGuard<'a, Inner>, HeaderMap), Response> {
    let mut s = inner.lock().unwrap();
    let limits = admit(&mut s, headers)?;
    Ok((s, limits))
}

fn admit(inner: &mut Inner, headers: &HeaderMap) -> Result<HeaderMap, Response> {
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_string();
    let now = Instant::now();
    let valid = bearer == TOKEN || inner.access_tokens.get(&bearer).is_some_and(|t| *t > now);
    let rotating = inner.refuse_tokens_until.is_some_and(|t| now < t);
    if !valid || rotating {
        inner.refused += 1;
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "INVALID_AUTHENTICATION",
            "Authentication credentials not found or expired.",
        ));
    }
    let window = inner.window;
    while inner.sent.front().is_some_and(|t| now >= *t + window) {
        inner.sent.pop_front();
    }
    if inner.daily_used >= inner.daily_limit {
        inner.limited_daily += 1;
        return Err(limited(inner, "DAILY", "daily"));
    }
    if inner.sent.len() >= inner.window_max {
        inner.limited_window += 1;
        return Err(limited(
            inner,
            "TEN_SECONDLY_ROLLING",
            "ten_secondly_rolling",
        ));
    }
    inner.sent.push_back(now);
    inner.daily_used += 1;
    Ok(limit_headers(inner))
}

/// HubSpot's 429 for `policy`, with the rate-limit headers.
fn limited(inner: &Inner, policy: &str, name: &str) -> Response {
    let body = json!({
        "status": "error",
        "message": format!("You have reached your {name} limit."),
        "errorType": "RATE_LIMIT",
        "correlationId": "c0ffee00-fake",
        "policyName": policy,
    });
    (
        StatusCode::TOO_MANY_REQUESTS,
        limit_headers(inner),
        Json(body),
    )
        .into_response()
}

fn limit_headers(inner: &Inner) -> HeaderMap {
    let mut h = HeaderMap::new();
    let mut put = |name: &'static str, value: u64| {
        h.insert(name, HeaderValue::from(value));
    };
    put("x-hubspot-ratelimit-max", inner.window_max as u64);
    put(
        "x-hubspot-ratelimit-remaining",
        inner.window_max.saturating_sub(inner.sent.len()) as u64,
    );
    put(
        "x-hubspot-ratelimit-interval-milliseconds",
        inner.window.as_millis() as u64,
    );
    put("x-hubspot-ratelimit-daily", inner.daily_limit);
    put(
        "x-hubspot-ratelimit-daily-remaining",
        inner.daily_limit.saturating_sub(inner.daily_used),
    );
    h
}

async fn token(
    State(inner): State<Arc<Mutex<Inner>>>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let mut s = inner.lock().unwrap();
    s.token_calls += 1;
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
    if field("grant_type") != "refresh_token"
        || field("client_id") != CLIENT_ID
        || field("client_secret") != CLIENT_SECRET
        || field("refresh_token") != REFRESH_TOKEN
    {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"status":"BAD_REFRESH_TOKEN","message":"missing or unknown refresh token","error":"invalid_grant","error_description":"missing or unknown refresh token"})),
        )
            .into_response();
    }
    let access = format!("hs-access-{}", s.token_calls);
    let lifetime = s.access_lifetime;
    s.access_tokens
        .insert(access.clone(), Instant::now() + lifetime);
    Json(json!({
        "token_type": "bearer",
        "refresh_token": REFRESH_TOKEN,
        "access_token": access,
        "expires_in": lifetime.as_secs(),
    }))
    .into_response()
}

/// `POST …/contacts/gdpr-delete {"objectId", "idProperty"?}`: deletes the contact for good,
/// 204. By id, an unknown contact is a 404; by e-mail, an unknown address is blocklisted (and
/// 204), as HubSpot does.
async fn gdpr_delete(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let (mut s, limits) = match admitted(&inner, &headers) {
        Ok(admitted) => admitted,
        Err(r) => return r,
    };
    let object = body["objectId"].as_str().unwrap_or_default().to_string();
    let by_email = body["idProperty"] == "email";
    let found = s
        .contacts
        .iter()
        .find(|(email, c)| {
            if by_email {
                **email == object.to_lowercase()
            } else {
                c.id == object
            }
        })
        .map(|(email, c)| (email.clone(), c.id.clone()));
    match (found, by_email) {
        (Some((email, id)), _) => {
            s.contacts.remove(&email);
            s.gdpr_deleted.push(id);
            (StatusCode::NO_CONTENT, limits).into_response()
        }
        (None, true) => {
            s.blocklisted.push(object);
            (StatusCode::NO_CONTENT, limits).into_response()
        }
        (None, false) => (
            limits,
            error(
                StatusCode::NOT_FOUND,
                "OBJECT_NOT_FOUND",
                "resource not found",
            ),
        )
            .into_response(),
    }
}

async fn list(State(inner): State<Arc<Mutex<Inner>>>, headers: HeaderMap) -> Response {
    let (s, limits) = match admitted(&inner, &headers) {
        Ok(admitted) => admitted,
        Err(r) => return r,
    };
    let results: Vec<Value> = s
        .contacts
        .values()
        .take(1)
        .map(|c| json!({"id": c.id, "properties": c.properties}))
        .collect();
    (limits, Json(json!({ "results": results }))).into_response()
}

async fn upsert(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path((a, b)): Path<(String, String)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let (mut s, limits) = match admitted(&inner, &headers) {
        Ok(admitted) => admitted,
        Err(r) => return r,
    };
    if let Some(status) = s.fail_next.pop_front() {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return (limits, error(status, "INTERNAL_ERROR", "fake failure")).into_response();
    }
    if !matches!(
        (a.as_str(), b.as_str()),
        ("objects", "2026-03") | ("v3", "objects")
    ) {
        return error(
            StatusCode::NOT_FOUND,
            "OBJECT_NOT_FOUND",
            "unknown API path",
        );
    }
    let inputs = body["inputs"].as_array().cloned().unwrap_or_default();
    if inputs.is_empty() || inputs.len() > 100 {
        return (
            limits,
            error(
                StatusCode::BAD_REQUEST,
                "VALIDATION_ERROR",
                "inputs must hold between 1 and 100 items",
            ),
        )
            .into_response();
    }
    let mut seen = HashSet::new();
    for input in &inputs {
        let id = input["id"].as_str().unwrap_or_default().to_lowercase();
        if !seen.insert(id.clone()) {
            return (
                limits,
                error(
                    StatusCode::BAD_REQUEST,
                    "VALIDATION_ERROR",
                    &format!("Duplicate IDs found in batch input: [{id}]. IDs must be unique"),
                ),
            )
                .into_response();
        }
    }
    s.upsert_calls += 1;
    let mut results = Vec::new();
    let mut errors = Vec::new();
    for input in inputs {
        let id = input["id"].as_str().unwrap_or_default().to_lowercase();
        let props = properties(&input["properties"]);
        if input["idProperty"] != "email" || !id.contains('@') {
            errors.push(json!({"status":"error","category":"VALIDATION_ERROR","message":format!("Property values were not valid: email \"{id}\" is invalid"),"context":{"ids":[id]}}));
            continue;
        }
        if let Some(bad) = props.keys().find(|k| !PROPERTIES.contains(&k.as_str())) {
            errors.push(json!({"status":"error","category":"VALIDATION_ERROR","message":format!("Property \"{bad}\" does not exist"),"context":{"ids":[id],"propertyName":[bad]}}));
            continue;
        }
        if props
            .get("oie_intent_score")
            .is_some_and(|v| v.parse::<f64>().is_err())
        {
            errors.push(json!({"status":"error","category":"VALIDATION_ERROR","message":"Property values were not valid: oie_intent_score must be a number","context":{"ids":[id]}}));
            continue;
        }
        let owner = s
            .rotation
            .clone()
            .map(|o| ("hubspot_owner_id".to_string(), o));
        let inner = &mut *s;
        let mut record = Upsert {
            records: &mut inner.contacts,
            next_id: &mut inner.next_id,
        };
        results.push(record.upsert(&id, ("email", props), owner));
    }
    batch_answer(limits, results, errors)
}

async fn notes(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let (mut s, limits) = match admitted(&inner, &headers) {
        Ok(admitted) => admitted,
        Err(r) => return r,
    };
    s.note_calls += 1;
    let mut results = Vec::new();
    for input in body["inputs"].as_array().cloned().unwrap_or_default() {
        let contact = input["associations"][0]["to"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let kind = &input["associations"][0]["types"][0];
        if !s.contacts.values().any(|c| c.id == contact)
            || kind["associationTypeId"] != 202
            || input["properties"]["hs_timestamp"].as_str().is_none()
        {
            return (
                limits,
                error(
                    StatusCode::BAD_REQUEST,
                    "VALIDATION_ERROR",
                    "note needs hs_timestamp and a contact association (type 202)",
                ),
            )
                .into_response();
        }
        let id = s.next_id;
        s.next_id += 1;
        s.notes.push(Note {
            contact,
            body: input["properties"]["hs_note_body"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            timestamp: input["properties"]["hs_timestamp"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        });
        results.push(json!({"id": id.to_string()}));
    }
    (
        StatusCode::CREATED,
        limits,
        Json(json!({"status": "COMPLETE", "results": results})),
    )
        .into_response()
}

/// `GET /crm/v3/owners?email=…`: `{results: [{id, email, userId}]}`, empty when no user has it.
async fn owners(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<HashMap<String, String>>,
) -> Response {
    let (s, limits) = match admitted(&inner, &headers) {
        Ok(admitted) => admitted,
        Err(r) => return r,
    };
    let email = q.get("email").map(|e| e.to_lowercase()).unwrap_or_default();
    let results: Vec<Value> = s
        .owners
        .get(&email)
        .map(|id| json!({"id": id, "email": email, "userId": 9_000_000, "archived": false}))
        .into_iter()
        .collect();
    (limits, Json(json!({ "results": results }))).into_response()
}

/// Company properties the fake portal has; `oie_account_domain` is the one with unique values.
const COMPANY_PROPERTIES: &[&str] = &[
    "name",
    "domain",
    "oie_account_domain",
    "oie_account_score",
    "oie_account_level",
    "oie_engaged_people",
];

/// String values of a `properties` object (numbers and the like as their JSON text).
fn properties(v: &Value) -> HashMap<String, String> {
    v.as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_str().map_or(v.to_string(), str::to_string)))
        .collect()
}

/// Contacts or companies, and the portal's id counter they draw from.
struct Upsert<'a> {
    records: &'a mut HashMap<String, Contact>,
    next_id: &'a mut u64,
}

impl Upsert<'_> {
    /// Creates (with `initial`, when given) or updates the record keyed `id`, setting `props`
    /// and the key property to `id`; its batch result `{id, new, properties}`.
    fn upsert(
        &mut self,
        id: &str,
        (key, props): (&str, HashMap<String, String>),
        initial: Option<(String, String)>,
    ) -> Value {
        let next = *self.next_id;
        let created = !self.records.contains_key(id);
        let record = self
            .records
            .entry(id.to_string())
            .or_insert_with(|| Contact {
                id: next.to_string(),
                properties: initial.into_iter().collect(),
                updates: 0,
            });
        if created {
            *self.next_id += 1;
        } else {
            record.updates += 1;
        }
        record.properties.extend(props);
        record.properties.insert(key.into(), id.to_string());
        json!({"id": record.id, "new": created, "properties": record.properties})
    }
}

/// A batch call's inputs (1 to 100), or the answer refusing it: a failure asked for with
/// `fail_next`, or a batch of the wrong size.
fn batch_inputs(s: &mut Inner, limits: &HeaderMap, body: &Value) -> Result<Vec<Value>, Response> {
    if let Some(status) = s.fail_next.pop_front() {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return Err((
            limits.clone(),
            error(status, "INTERNAL_ERROR", "fake failure"),
        )
            .into_response());
    }
    let inputs = body["inputs"].as_array().cloned().unwrap_or_default();
    if inputs.is_empty() || inputs.len() > 100 {
        return Err((
            limits.clone(),
            error(
                StatusCode::BAD_REQUEST,
                "VALIDATION_ERROR",
                "inputs must hold between 1 and 100 items",
            ),
        )
            .into_response());
    }
    Ok(inputs)
}

/// A batch call's answer: 200 with the results, or 207 with the errors beside them.
fn batch_answer(limits: HeaderMap, results: Vec<Value>, errors: Vec<Value>) -> Response {
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::MULTI_STATUS
    };
    let mut body = json!({"status": "COMPLETE", "results": results});
    if !errors.is_empty() {
        body["numErrors"] = json!(errors.len());
        body["errors"] = json!(errors);
    }
    (status, limits, Json(body)).into_response()
}

/// `POST /crm/…/companies/batch/upsert`: by a property with unique values (`domain` is not
/// one, as in HubSpot), at most 100 inputs; 207 for inputs with unknown properties.
async fn upsert_companies(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let (mut s, limits) = match admitted(&inner, &headers) {
        Ok(admitted) => admitted,
        Err(r) => return r,
    };
    let inputs = match batch_inputs(&mut s, &limits, &body) {
        Ok(inputs) => inputs,
        Err(refused) => return refused,
    };
    if let Some(bad) = inputs
        .iter()
        .find(|i| i["idProperty"] != "oie_account_domain")
    {
        let message = format!(
            "{} is not a unique property; batch upsert needs a property with unique values",
            bad["idProperty"]
        );
        return (
            limits,
            error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", &message),
        )
            .into_response();
    }
    let mut results = Vec::new();
    let mut errors = Vec::new();
    for input in inputs {
        let id = input["id"].as_str().unwrap_or_default().to_lowercase();
        let props = properties(&input["properties"]);
        if let Some(bad) = props
            .keys()
            .find(|k| !COMPANY_PROPERTIES.contains(&k.as_str()))
        {
            errors.push(json!({"status":"error","category":"VALIDATION_ERROR","message":format!("Property \"{bad}\" does not exist"),"context":{"ids":[id],"propertyName":[bad]}}));
            continue;
        }
        let inner = &mut *s;
        let mut record = Upsert {
            records: &mut inner.companies,
            next_id: &mut inner.next_id,
        };
        results.push(record.upsert(&id, ("oie_account_domain", props), None));
    }
    batch_answer(limits, results, errors)
}

/// `POST /crm/v4/associations/contacts/companies/batch/associate/default`
/// `{inputs: [{from: {id}, to: {id}}]}`: both must exist; 207 naming those that do not.
async fn associate(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let (mut s, limits) = match admitted(&inner, &headers) {
        Ok(admitted) => admitted,
        Err(r) => return r,
    };
    let mut errors = Vec::new();
    let mut results = Vec::new();
    for input in body["inputs"].as_array().cloned().unwrap_or_default() {
        let from = input["from"]["id"].as_str().unwrap_or_default().to_string();
        let to = input["to"]["id"].as_str().unwrap_or_default().to_string();
        let known =
            s.contacts.values().any(|c| c.id == from) && s.companies.values().any(|c| c.id == to);
        if !known {
            errors.push(json!({"status": "error", "category": "OBJECT_NOT_FOUND",
                "message": format!("No contact {from} or company {to}"), "context": {"ids": [from]}}));
            continue;
        }
        s.associations
            .entry(from.clone())
            .or_default()
            .insert(to.clone());
        results.push(json!({"from": {"id": from}, "to": {"id": to}}));
    }
    batch_answer(limits, results, errors)
}

/// `GET /crm/v3/owners/{id}`: `{id, email, userId, archived}`, or 404.
async fn owner(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let (mut s, limits) = match admitted(&inner, &headers) {
        Ok(admitted) => admitted,
        Err(r) => return r,
    };
    s.owner_reads += 1;
    let email = s
        .owners
        .iter()
        .find(|(_, o)| **o == id)
        .map(|(e, _)| e.clone());
    match email {
        Some(email) => (
            limits,
            Json(json!({"id": id, "email": email, "userId": 9_000_000, "archived": false})),
        )
            .into_response(),
        None => (
            limits,
            error(
                StatusCode::NOT_FOUND,
                "OBJECT_NOT_FOUND",
                "resource not found",
            ),
        )
            .into_response(),
    }
}

/// `POST /crm/…/contacts/batch/read` `{properties, inputs: [{id}]}`: the contacts with the
/// properties asked for (those they have); 207 with `errors` naming ids it does not have.
async fn batch_read(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let (mut s, limits) = match admitted(&inner, &headers) {
        Ok(admitted) => admitted,
        Err(r) => return r,
    };
    let inputs = match batch_inputs(&mut s, &limits, &body) {
        Ok(inputs) => inputs,
        Err(refused) => return refused,
    };
    let wanted: Vec<&str> = body["properties"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let mut results = Vec::new();
    let mut missing = Vec::new();
    for input in &inputs {
        let id = input["id"].as_str().unwrap_or_default();
        match s.contacts.values().find(|c| c.id == id) {
            Some(c) => {
                let mut properties = serde_json::Map::new();
                properties.insert("hs_object_id".into(), json!(c.id));
                for name in &wanted {
                    if let Some(v) = c.properties.get(*name) {
                        properties.insert(name.to_string(), json!(v));
                    }
                }
                results.push(json!({"id": c.id, "properties": properties, "archived": false}));
            }
            None => missing.push(id.to_string()),
        }
    }
    let mut answer = json!({"status": "COMPLETE", "results": results});
    let status = if missing.is_empty() {
        StatusCode::OK
    } else {
        answer["numErrors"] = json!(1);
        answer["errors"] = json!([{"status": "error", "category": "OBJECT_NOT_FOUND",
            "message": "Could not get some CONTACT objects, they may be deleted or not exist.",
            "context": {"ids": missing}}]);
        StatusCode::MULTI_STATUS
    };
    (status, limits, Json(answer)).into_response()
}

/// `PATCH /crm/…/contacts/{id}`: sets properties of a contact (an owner id must be an owner's).
async fn update_contact(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path((_, _, id)): Path<(String, String, String)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let (mut s, limits) = match admitted(&inner, &headers) {
        Ok(admitted) => admitted,
        Err(r) => return r,
    };
    let props = properties(&body["properties"]);
    if let Some(bad) = props.keys().find(|k| !PROPERTIES.contains(&k.as_str())) {
        return (
            limits,
            error(
                StatusCode::BAD_REQUEST,
                "VALIDATION_ERROR",
                &format!("Property \"{bad}\" does not exist"),
            ),
        )
            .into_response();
    }
    if let Some(owner) = props.get("hubspot_owner_id") {
        if !s.owners.values().any(|o| o == owner) {
            return (
                limits,
                error(
                    StatusCode::BAD_REQUEST,
                    "VALIDATION_ERROR",
                    &format!("{owner} is not a valid owner id"),
                ),
            )
                .into_response();
        }
    }
    let Some(contact) = s.contacts.values_mut().find(|c| c.id == id) else {
        return (
            limits,
            error(
                StatusCode::NOT_FOUND,
                "OBJECT_NOT_FOUND",
                "resource not found",
            ),
        )
            .into_response();
    };
    contact.properties.extend(props);
    contact.updates += 1;
    let answer = json!({"id": contact.id, "properties": contact.properties});
    (limits, Json(answer)).into_response()
}
