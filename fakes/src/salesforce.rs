//! A local Salesforce org: the token endpoint (JWT bearer with the assertion's RS256 signature
//! verified against the test public key, and client credentials), sObject Collections upsert
//! by external id (200 records at most, `allOrNone = false`, results in order, HTTP 200 even
//! when records fail), describe, `Sforce-Limit-Info` on every answer, `REQUEST_LIMIT_EXCEEDED`
//! when the daily allocation is used up, `INVALID_SESSION_ID` for expired tokens, and faults on
//! demand (`UNABLE_TO_LOCK_ROW`, several records for one external id).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::Query;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post};
use axum::{Json, Router};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{json, Map, Value};

pub const CLIENT_ID: &str = "3MVG9fake.consumer.key";
pub const CLIENT_SECRET: &str = "fake-consumer-secret";
pub const USERNAME: &str = "integration@acme.example";
/// The test key pair (throwaway, see `keys/README.md`): assertions signed with the private key
/// are accepted by [`SalesforceFake::start_with_test_key`].
pub const TEST_PRIVATE_KEY: &str = include_str!("../keys/test_private.pem");
pub const TEST_PUBLIC_KEY: &str = include_str!("../keys/test_public.pem");
/// The API version the fake serves.
pub const VERSION: &str = "v66.0";

/// Lead fields of the fake org; `externalId` marks the ones usable for upserts.
const LEAD_FIELDS: &[(&str, bool)] = &[
    ("Id", false),
    ("Email", false),
    ("FirstName", false),
    ("LastName", false),
    ("Company", false),
    ("Title", false),
    ("LeadSource", false),
    ("OIE_Visitor_Id__c", true),
    ("OIE_Intent_Score__c", false),
    ("OIE_Engagement_Level__c", false),
    ("OIE_Last_Page__c", false),
    ("OIE_Account_Score__c", false),
    ("OIE_Account_Level__c", false),
];

/// Account fields of the fake org; `OIE_Account_Domain__c` is its external id.
const ACCOUNT_FIELDS: &[(&str, bool)] = &[
    ("Id", false),
    ("Name", false),
    ("Website", false),
    ("OIE_Account_Domain__c", true),
    ("OIE_Account_Score__c", false),
    ("OIE_Account_Level__c", false),
];

#[derive(Debug, Clone)]
pub struct Record {
    pub id: String,
    pub fields: Map<String, Value>,
    pub updates: u32,
}

struct Inner {
    public_key: DecodingKey,
    audience: String,
    base: String,
    tokens: HashSet<String>,
    records: HashMap<String, Record>,
    duplicates: HashSet<String>,
    lock_once: HashSet<String>,
    used: u64,
    limit: u64,
    next_id: u64,
    token_calls: u64,
    collection_calls: u64,
    calls: u64,
    concurrent_limit_next: u32,
    /// Sessions are revoked and new tokens refused until then (a certificate rotation).
    refuse_tokens_until: Option<std::time::Instant>,
    /// Ids of records deleted (they sit in the recycle bin).
    deleted: Vec<String>,
    /// Users of the org: (e-mail, id, active).
    users: Vec<(String, String, bool)>,
    /// The User new records are assigned to (an assignment rule), if any.
    assign_to: Option<String>,
    /// Accounts, by `OIE_Account_Domain__c`.
    accounts: HashMap<String, Record>,
}

#[derive(Clone)]
pub struct SalesforceFake {
    pub base: String,
    inner: Arc<Mutex<Inner>>,
}

#[derive(Deserialize)]
struct Claims {
    iss: String,
    sub: String,
    exp: u64,
}

impl SalesforceFake {
    /// An org whose JWT bearer flow trusts `public_key_pem` and expects `aud` = the fake's URL.
    pub async fn start(public_key_pem: &str) -> SalesforceFake {
        let inner = Arc::new(Mutex::new(Inner {
            public_key: DecodingKey::from_rsa_pem(public_key_pem.as_bytes())
                .expect("test public key"),
            audience: String::new(),
            base: String::new(),
            tokens: HashSet::new(),
            records: HashMap::new(),
            duplicates: HashSet::new(),
            lock_once: HashSet::new(),
            used: 0,
            limit: 100_000,
            next_id: 1,
            token_calls: 0,
            collection_calls: 0,
            calls: 0,
            concurrent_limit_next: 0,
            refuse_tokens_until: None,
            deleted: Vec::new(),
            users: Vec::new(),
            assign_to: None,
            accounts: HashMap::new(),
        }));
        let data = "/services/data/{version}";
        let app = Router::new()
            .route("/services/oauth2/token", post(token))
            .route(
                &format!("{data}/composite/sobjects/{{object}}/{{field}}"),
                patch(upsert),
            )
            .route(
                &format!("{data}/sobjects/{{object}}/describe"),
                get(describe),
            )
            .route(
                &format!("{data}/composite/sobjects"),
                delete(delete_records),
            )
            .route(&format!("{data}/query"), get(query))
            .route(
                &format!("{data}/sobjects/{{object}}/{{id}}"),
                patch(update_record),
            )
            .with_state(inner.clone());
        let base = crate::serve(app).await;
        {
            let mut s = inner.lock().unwrap();
            s.audience = base.clone();
            s.base = base.clone();
        }
        SalesforceFake { base, inner }
    }

    /// A User of the org; returns its id.
    pub fn add_user(&self, email: &str, active: bool) -> String {
        let mut s = self.inner.lock().unwrap();
        let id = format!("005{:015}", s.users.len() + 1);
        s.users.push((email.to_lowercase(), id.clone(), active));
        id
    }

    /// New records are owned by the User with `email` (an assignment rule); `None` leaves them
    /// with no owner oie can name. Returns the User's id.
    pub fn assign_new_records_to(&self, email: Option<&str>) -> Option<String> {
        let id = email.map(|e| {
            let known = self
                .lock()
                .users
                .iter()
                .find(|(u, _, _)| *u == e.to_lowercase())
                .map(|(_, id, _)| id.clone());
            known.unwrap_or_else(|| self.add_user(e, true))
        });
        self.lock().assign_to = id.clone();
        id
    }

    /// The Accounts, by their `OIE_Account_Domain__c`.
    pub fn accounts(&self) -> HashMap<String, Record> {
        self.lock().accounts.clone()
    }

    /// An org that trusts the test key pair.
    pub async fn start_with_test_key() -> SalesforceFake {
        Self::start(TEST_PUBLIC_KEY).await
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap()
    }

    /// Every issued token stops working (a session timeout mid-run).
    pub fn expire_tokens(&self) {
        self.lock().tokens.clear();
    }

    /// Revokes every session and refuses new tokens for `d` (the app's certificate is being
    /// rotated), then issues them again.
    pub fn refuse_tokens_for(&self, d: std::time::Duration) {
        let mut s = self.lock();
        s.tokens.clear();
        s.refuse_tokens_until = Some(std::time::Instant::now() + d);
    }

    /// Sets the org's API usage, as `Sforce-Limit-Info` reports it.
    pub fn set_usage(&self, used: u64, limit: u64) {
        let mut s = self.lock();
        s.used = used;
        s.limit = limit;
    }

    pub fn usage(&self) -> (u64, u64) {
        let s = self.lock();
        (s.used, s.limit)
    }

    /// The next upsert of this visitor fails once with `UNABLE_TO_LOCK_ROW`.
    pub fn lock_once(&self, visitor: &str) {
        self.lock().lock_once.insert(visitor.to_string());
    }

    /// The org holds two records with this visitor id: upserts of it fail as a data problem.
    pub fn seed_duplicate(&self, visitor: &str) {
        self.lock().duplicates.insert(visitor.to_string());
    }

    /// The next `n` calls are refused for too many concurrent requests.
    pub fn concurrent_limit(&self, n: u32) {
        self.lock().concurrent_limit_next = n;
    }

    /// Ids of the records deleted so far.
    pub fn deleted(&self) -> Vec<String> {
        self.inner.lock().unwrap().deleted.clone()
    }

    pub fn records(&self) -> HashMap<String, Record> {
        self.lock().records.clone()
    }

    pub fn record(&self, visitor: &str) -> Option<Record> {
        self.lock().records.get(visitor).cloned()
    }

    /// Collection upsert calls that were answered 200.
    pub fn collection_calls(&self) -> u64 {
        self.lock().collection_calls
    }

    /// Data calls of any kind (including refused ones).
    pub fn calls(&self) -> u64 {
        self.lock().calls
    }

    pub fn token_calls(&self) -> u64 {
        self.lock().token_calls
    }
}

fn limit_info(s: &Inner) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        "sforce-limit-info",
        HeaderValue::from_str(&format!("api-usage={}/{}", s.used, s.limit)).expect("ascii"),
    );
    h
}

fn sf_error(status: StatusCode, headers: HeaderMap, code: &str, message: &str) -> Response {
    (
        status,
        headers,
        Json(json!([{"message": message, "errorCode": code}])),
    )
        .into_response()
}

async fn token(
    State(inner): State<Arc<Mutex<Inner>>>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let mut s = inner.lock().unwrap();
    s.token_calls += 1;
    let refuse = |error: &str, description: &str| {
        (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": error, "error_description": description})),
        )
            .into_response()
    };
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
    if s.refuse_tokens_until
        .is_some_and(|t| std::time::Instant::now() < t)
    {
        return refuse(
            "invalid_grant",
            "invalid assertion: signature does not match the app's certificate",
        );
    }
    match field("grant_type") {
        "urn:ietf:params:oauth:grant-type:jwt-bearer" => {
            let mut validation = Validation::new(Algorithm::RS256);
            validation.set_audience(&[s.audience.clone()]);
            validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
            let claims = match jsonwebtoken::decode::<Claims>(
                field("assertion"),
                &s.public_key,
                &validation,
            ) {
                Ok(data) => data.claims,
                Err(e) => return refuse("invalid_grant", &format!("invalid assertion: {e}")),
            };
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs();
            if claims.exp > now + 180 {
                return refuse("invalid_grant", "expiration time is too far in the future");
            }
            if claims.iss != CLIENT_ID {
                return refuse("invalid_client_id", "client identifier invalid");
            }
            if claims.sub != USERNAME {
                return refuse("invalid_grant", "user hasn't approved this consumer");
            }
        }
        "client_credentials" => {
            if field("client_id") != CLIENT_ID || field("client_secret") != CLIENT_SECRET {
                return refuse("invalid_client", "invalid client credentials");
            }
        }
        other => {
            return refuse(
                "unsupported_grant_type",
                &format!("grant type {other} not supported"),
            )
        }
    }
    let access = format!("00Dfake!{}", s.token_calls);
    s.tokens.insert(access.clone());
    Json(json!({
        "access_token": access,
        "instance_url": s.base,
        "id": format!("{}/id/00Dfake/005fake", s.base),
        "token_type": "Bearer",
        "issued_at": "1764151200000",
        "signature": "fake",
    }))
    .into_response()
}

/// Auth and limits for a data call; `Err` is the answer to send instead.
/// The fake, locked, for a request [`admit`] let through.
fn admitted<'a>(
    inner: &'a Mutex<Inner>,
    headers: &HeaderMap,
) -> Result<std::sync::MutexGuard<'a, Inner>, Response> {
    let mut s = inner.lock().unwrap();
    admit(&mut s, headers)?;
    Ok(s)
}

fn admit(s: &mut Inner, headers: &HeaderMap) -> Result<(), Response> {
    s.calls += 1;
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if !s.tokens.contains(bearer) {
        return Err(sf_error(
            StatusCode::UNAUTHORIZED,
            HeaderMap::new(),
            "INVALID_SESSION_ID",
            "Session expired or invalid",
        ));
    }
    if s.used >= s.limit {
        return Err(sf_error(
            StatusCode::FORBIDDEN,
            limit_info(s),
            "REQUEST_LIMIT_EXCEEDED",
            "TotalRequests Limit exceeded.",
        ));
    }
    if s.concurrent_limit_next > 0 {
        s.concurrent_limit_next -= 1;
        return Err(sf_error(
            StatusCode::FORBIDDEN,
            limit_info(s),
            "REQUEST_LIMIT_EXCEEDED",
            "ConcurrentPerOrgLongTxn Limit exceeded.",
        ));
    }
    s.used += 1;
    Ok(())
}

async fn describe(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path((version, object)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let s = match admitted(&inner, &headers) {
        Ok(s) => s,
        Err(r) => return r,
    };
    if version != VERSION || object != "Lead" {
        return sf_error(
            StatusCode::NOT_FOUND,
            limit_info(&s),
            "NOT_FOUND",
            "The requested resource does not exist",
        );
    }
    let fields: Vec<Value> = LEAD_FIELDS
        .iter()
        .map(|(name, ext)| json!({"name": name, "externalId": ext}))
        .collect();
    (
        limit_info(&s),
        Json(json!({"name": object, "fields": fields})),
    )
        .into_response()
}

/// `DELETE /composite/sobjects?ids=…&allOrNone=false`: results in the order of the ids; an id
/// that names no record fails with `ENTITY_IS_DELETED` (or `INVALID_CROSS_REFERENCE_KEY`).
async fn delete_records(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path(version): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let mut s = match admitted(&inner, &headers) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let ids: Vec<String> = query
        .get("ids")
        .map(|i| i.split(',').map(str::to_string).collect())
        .unwrap_or_default();
    if version != VERSION
        || ids.is_empty()
        || ids.len() > 200
        || query.get("allOrNone").map(String::as_str) != Some("false")
    {
        return sf_error(
            StatusCode::BAD_REQUEST,
            limit_info(&s),
            "INVALID_BATCH_SIZE",
            "ids: between 1 and 200 per call; allOrNone must be false here",
        );
    }
    s.collection_calls += 1;
    let mut results = Vec::new();
    for id in ids {
        let key = s
            .records
            .iter()
            .find(|(_, r)| r.id == id)
            .map(|(k, _)| k.clone());
        match key {
            Some(key) => {
                s.records.remove(&key);
                s.deleted.push(id.clone());
                results.push(json!({"id": id, "success": true, "errors": []}));
            }
            None if s.deleted.contains(&id) => results.push(json!({"id": id, "success": false, "errors": [{"statusCode": "ENTITY_IS_DELETED", "message": "entity is deleted", "fields": []}]})),
            None => results.push(json!({"id": id, "success": false, "errors": [{"statusCode": "INVALID_CROSS_REFERENCE_KEY", "message": "invalid cross reference id", "fields": []}]})),
        }
    }
    (StatusCode::OK, limit_info(&s), Json(Value::Array(results))).into_response()
}

async fn upsert(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path((version, object, field)): Path<(String, String, String)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let mut s = match admitted(&inner, &headers) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let is_account = object == "Account";
    let object_fields = if is_account {
        ACCOUNT_FIELDS
    } else {
        LEAD_FIELDS
    };
    let known = |name: &str| object_fields.iter().any(|(f, _)| *f == name);
    if version != VERSION
        || !matches!(object.as_str(), "Lead" | "Account")
        || !object_fields.contains(&(field.as_str(), true))
    {
        return sf_error(
            StatusCode::NOT_FOUND,
            limit_info(&s),
            "NOT_FOUND",
            "The requested resource does not exist",
        );
    }
    let records = body["records"].as_array().cloned().unwrap_or_default();
    if body["allOrNone"] != false || records.is_empty() || records.len() > 200 {
        return sf_error(
            StatusCode::BAD_REQUEST,
            limit_info(&s),
            "INVALID_BATCH_SIZE",
            "Records: between 1 and 200 per call; allOrNone must be false here",
        );
    }
    s.collection_calls += 1;
    let mut results = Vec::new();
    for record in records {
        let Some(obj) = record.as_object() else {
            results.push(json!({"success": false, "errors": [{"statusCode": "JSON_PARSER_ERROR", "message": "record is not an object", "fields": []}]}));
            continue;
        };
        let ext = obj
            .get(&field)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let fail = |code: &str, message: &str, fields: Vec<&str>| json!({"success": false, "created": false, "errors": [{"statusCode": code, "message": message, "fields": fields}]});
        if obj.get("attributes").and_then(|a| a["type"].as_str()) != Some(object.as_str()) {
            results.push(fail(
                "INVALID_TYPE",
                "attributes.type must name the object",
                vec![],
            ));
            continue;
        }
        if ext.is_empty() {
            results.push(fail(
                "REQUIRED_FIELD_MISSING",
                "Required fields are missing",
                vec![&field],
            ));
            continue;
        }
        if let Some(bad) = obj.keys().find(|k| *k != "attributes" && !known(k)) {
            let message = format!("No such column '{bad}' on sobject of type {object}");
            results.push(fail("INVALID_FIELD", &message, vec![bad.as_str()]));
            continue;
        }
        if s.duplicates.contains(&ext) {
            let message = format!("Duplicate external id specified: {ext}");
            results.push(fail("DUPLICATE_EXTERNAL_ID", &message, vec![&field]));
            continue;
        }
        if s.lock_once.remove(&ext) {
            results.push(fail(
                "UNABLE_TO_LOCK_ROW",
                "unable to obtain exclusive access to this record",
                vec![],
            ));
            continue;
        }
        let mut fields = obj.clone();
        fields.remove("attributes");
        let next_id = s.next_id;
        let assign_to = s.assign_to.clone();
        let stored = if is_account {
            &mut s.accounts
        } else {
            &mut s.records
        };
        match stored.get_mut(&ext) {
            Some(existing) => {
                existing.fields.extend(fields);
                existing.updates += 1;
                results.push(
                    json!({"id": existing.id, "success": true, "errors": [], "created": false}),
                );
            }
            None => {
                let required: &[&str] = if is_account {
                    &["Name"]
                } else {
                    &["LastName", "Company"]
                };
                let missing: Vec<&str> = required
                    .iter()
                    .copied()
                    .filter(|f| {
                        fields
                            .get(*f)
                            .and_then(Value::as_str)
                            .is_none_or(str::is_empty)
                    })
                    .collect();
                if !missing.is_empty() {
                    results.push(fail(
                        "REQUIRED_FIELD_MISSING",
                        &format!("Required fields are missing: [{}]", missing.join(", ")),
                        missing,
                    ));
                    continue;
                }
                let id = format!("{}{next_id:015}", if is_account { "001" } else { "00Q" });
                let mut fields = fields;
                if let Some(owner) = &assign_to {
                    fields.insert("OwnerId".into(), json!(owner));
                }
                stored.insert(
                    ext.clone(),
                    Record {
                        id: id.clone(),
                        fields,
                        updates: 0,
                    },
                );
                s.next_id += 1;
                results.push(json!({"id": id, "success": true, "errors": [], "created": true}));
            }
        }
    }
    (limit_info(&s), Json(Value::Array(results))).into_response()
}

/// `GET /query?q=…`: the two queries oie makes — `SELECT Id FROM User WHERE Email = '…' AND
/// IsActive = true LIMIT 1`, and the owners of Leads by id (anything else is refused as
/// Salesforce refuses a malformed query).
async fn query(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<HashMap<String, String>>,
) -> Response {
    let s = match admitted(&inner, &headers) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let soql = q.get("q").cloned().unwrap_or_default();
    if let Some(ids) = soql
        .strip_prefix("SELECT Id, Owner.Email FROM Lead WHERE Id IN (")
        .and_then(|r| r.strip_suffix(')'))
    {
        return owners_of(&s, ids);
    }
    let prefix = "SELECT Id FROM User WHERE Email = '";
    let suffix = "' AND IsActive = true LIMIT 1";
    let Some(email) = soql
        .strip_prefix(prefix)
        .and_then(|r| r.strip_suffix(suffix))
    else {
        return sf_error(
            StatusCode::BAD_REQUEST,
            limit_info(&s),
            "MALFORMED_QUERY",
            "unexpected query",
        );
    };
    let email = email
        .replace("\\'", "'")
        .replace("\\\\", "\\")
        .to_lowercase();
    let records: Vec<Value> = s
        .users
        .iter()
        .filter(|(e, _, active)| *e == email && *active)
        .take(1)
        .map(|(_, id, _)| json!({"attributes": {"type": "User"}, "Id": id}))
        .collect();
    (
        limit_info(&s),
        Json(json!({"totalSize": records.len(), "done": true, "records": records})),
    )
        .into_response()
}

/// `SELECT Id, Owner.Email FROM Lead WHERE Id IN ('…',…)`: each record with its owning User's
/// e-mail (`Owner` null when the fake has none for it).
fn owners_of(s: &Inner, ids: &str) -> Response {
    let ids: Vec<String> = ids
        .split(',')
        .map(|i| i.trim().trim_matches('\'').to_string())
        .collect();
    if ids
        .iter()
        .any(|i| i.is_empty() || !i.chars().all(|c| c.is_ascii_alphanumeric()))
    {
        return sf_error(
            StatusCode::BAD_REQUEST,
            limit_info(s),
            "MALFORMED_QUERY",
            "unexpected token in the IN list",
        );
    }
    let records: Vec<Value> = s
        .records
        .values()
        .filter(|r| ids.contains(&r.id))
        .map(|r| {
            let email = r
                .fields
                .get("OwnerId")
                .and_then(Value::as_str)
                .and_then(|o| {
                    s.users
                        .iter()
                        .find(|(_, id, _)| id == o)
                        .map(|(e, _, _)| e.clone())
                });
            let owner = email.map_or(
                Value::Null,
                |e| json!({"attributes": {"type": "User"}, "Email": e}),
            );
            json!({"attributes": {"type": "Lead"}, "Id": r.id, "Owner": owner})
        })
        .collect();
    (
        limit_info(s),
        Json(json!({"totalSize": records.len(), "done": true, "records": records})),
    )
        .into_response()
}

/// `PATCH /sobjects/{object}/{id}`: updates fields of a record; 204 without a body. An `OwnerId`
/// must be an active User's.
async fn update_record(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path((_, _, id)): Path<(String, String, String)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let mut s = match admitted(&inner, &headers) {
        Ok(s) => s,
        Err(r) => return r,
    };
    if let Some(owner) = body["OwnerId"].as_str() {
        if !s.users.iter().any(|(_, u, active)| u == owner && *active) {
            return sf_error(
                StatusCode::BAD_REQUEST,
                limit_info(&s),
                "INVALID_CROSS_REFERENCE_KEY",
                "invalid cross reference id",
            );
        }
    }
    let info = limit_info(&s);
    let Some(record) = s.records.values_mut().find(|r| r.id == id) else {
        return sf_error(
            StatusCode::NOT_FOUND,
            info,
            "NOT_FOUND",
            "The requested resource does not exist",
        );
    };
    for (k, v) in body.as_object().into_iter().flatten() {
        record.fields.insert(k.clone(), v.clone());
    }
    record.updates += 1;
    (info, StatusCode::NO_CONTENT).into_response()
}
