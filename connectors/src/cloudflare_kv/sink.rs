use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value};

use super::{CloudflareKvConfig, Holds};
use crate::{
    classify_status, http, Connector, Delivery, Failure, Outcome, Reason, RenderContext,
    RenderError, Secret, TemplateSet,
};

/// The API's limits per bulk request, and KV's per key.
const MAX_PAIRS: usize = 10_000;
const MAX_REQUEST_BYTES: usize = 100 * 1024 * 1024;
const MAX_KEY_BYTES: usize = 512;
const MAX_VALUE_BYTES: usize = 25 * 1024 * 1024;

/// A configured namespace.
pub struct CloudflareKv {
    client: reqwest::Client,
    /// `…/accounts/{account}/storage/kv/namespaces/{namespace}`.
    namespace: String,
    token: Secret,
    holds: Holds,
    template: String,
    templates: Arc<TemplateSet>,
    expiration_ttl: Option<u64>,
    timeout: Duration,
}

/// One delivery, read back from its payload.
enum Op {
    Put { key: String, value: String },
    Delete { key: String },
}

impl CloudflareKv {
    pub fn new(config: CloudflareKvConfig, templates: Arc<TemplateSet>) -> Result<Self, String> {
        let template = config.template.clone().unwrap_or_else(|| {
            match config.holds {
                Holds::Personalization => "kv/personalization",
                Holds::Identities => "kv/identity",
            }
            .to_string()
        });
        if !templates.has(&template) {
            return Err(format!("template `{template}` does not exist"));
        }
        let id = |what: &str, v: &str| {
            if !v.is_empty() && v.chars().all(|c| c.is_ascii_alphanumeric()) {
                Ok(())
            } else {
                Err(format!(
                    "{what} `{v}` is not a Cloudflare id (letters and digits)"
                ))
            }
        };
        id("account_id", &config.account_id)?;
        id("namespace_id", &config.namespace_id)?;
        let ttl = match config.expiration_ttl {
            Some(t) if t < Duration::from_secs(60) => {
                return Err("expiration_ttl must be at least 60s (a KV rule)".into())
            }
            t => t.map(|t| t.as_secs()),
        };
        let base = config.base_url.trim_end_matches('/');
        reqwest::Url::parse(base).map_err(|e| format!("base_url is not a valid URL: {e}"))?;
        Ok(CloudflareKv {
            client: http::api_client()?,
            namespace: format!(
                "{base}/accounts/{}/storage/kv/namespaces/{}",
                config.account_id, config.namespace_id
            ),
            token: config.api_token,
            holds: config.holds,
            template,
            templates,
            expiration_ttl: ttl,
            timeout: config.timeout,
        })
    }

    /// One bulk request; `Delivered` when the API says `success: true`.
    async fn call(&self, request: reqwest::RequestBuilder, body: String) -> Outcome {
        let sent = request
            .bearer_auth(self.token.expose())
            .header("content-type", "application/json")
            .timeout(self.timeout)
            .body(body)
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => return Outcome::Failed(http::transport_failure(e, self.timeout)),
        };
        let status = response.status().as_u16();
        let after = http::retry_after(response.headers());
        let text = response.text().await.unwrap_or_default();
        let envelope: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        match classify_status(status, after, &errors(&envelope, &text)) {
            Outcome::Delivered { .. } if envelope["success"] != json!(true) => Outcome::failed(
                Reason::ServerError,
                format!(
                    "HTTP {status} without success: {}",
                    errors(&envelope, &text)
                ),
            ),
            outcome => outcome,
        }
    }
}

/// The envelope's `errors` as one line (`10013 namespace not found; …`), else the raw body.
fn errors(envelope: &Value, raw: &str) -> String {
    match envelope["errors"].as_array() {
        Some(list) if !list.is_empty() => list
            .iter()
            .map(|e| format!("{} {}", e["code"], e["message"].as_str().unwrap_or("")))
            .collect::<Vec<_>>()
            .join("; "),
        _ => raw.to_string(),
    }
}

fn parse(payload: &str) -> Result<Op, Failure> {
    let v: Value = serde_json::from_str(payload)
        .map_err(|_| Failure::new(Reason::InvalidItem, "the stored payload is not JSON"))?;
    let key = v["key"].as_str().unwrap_or_default().to_string();
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(Failure::new(
            Reason::InvalidItem,
            format!("a KV key must be 1 to {MAX_KEY_BYTES} bytes"),
        ));
    }
    match (v["op"].as_str(), v["value"].as_str()) {
        (Some("delete"), _) => Ok(Op::Delete { key }),
        (Some("put"), Some(value)) if value.len() <= MAX_VALUE_BYTES => Ok(Op::Put {
            key,
            value: value.to_string(),
        }),
        (Some("put"), Some(_)) => Err(Failure::new(
            Reason::InvalidItem,
            "a KV value is at most 25 MiB",
        )),
        _ => Err(Failure::new(
            Reason::InvalidItem,
            "the payload is neither a put nor a delete",
        )),
    }
}

#[async_trait]
impl Connector for CloudflareKv {
    fn kind(&self) -> &'static str {
        "cloudflare_kv"
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }

    fn max_batch(&self) -> usize {
        MAX_PAIRS
    }

    /// A namespace of identities takes `identity` triggers (and erasures, and replays of its
    /// dead letters); one of personalization takes everything else.
    fn takes(&self, trigger_kind: &str) -> bool {
        match self.holds {
            Holds::Identities => matches!(trigger_kind, "identity" | "erasure" | "replay"),
            Holds::Personalization => {
                trigger_kind != "identity" && !crate::is_account_kind(trigger_kind)
            }
        }
    }

    /// Values are keyed by the visitor id: an erasure deletes them, synced or not.
    fn erases_by_visitor(&self) -> bool {
        true
    }

    /// The API allows 1,200 requests per 5 minutes (4 a second), and one send is at most two
    /// requests (a bulk write and a bulk delete): 2 sends a second, 20,000 keys.
    fn default_rate_limit(&self) -> Option<f64> {
        Some(2.0)
    }

    /// One request at a time: a put and a later delete of the same key must land in order.
    fn default_concurrency(&self) -> usize {
        1
    }

    /// Long enough that an import's or a scoring run's changes share bulk requests.
    fn default_batch_wait(&self) -> Duration {
        Duration::from_secs(1)
    }

    /// Reads the namespace.
    async fn check(&self) -> Result<String, Failure> {
        let request = self.client.get(&self.namespace);
        match self.call(request, String::new()).await {
            Outcome::Delivered { .. } => Ok("the namespace is readable with this token".into()),
            Outcome::Failed(f) => Err(f),
        }
    }

    /// `{"op": "put", "key": visitorId, "value": <template, compact>}`, or for an `erasure`
    /// trigger `{"op": "delete", "key": visitorId}`.
    fn render(&self, context: &RenderContext) -> Result<String, RenderError> {
        let data = context.data();
        let key = &data["lead"]["visitorId"];
        if data["trigger"]["kind"] == "erasure" {
            return Ok(json!({"op": "delete", "key": key}).to_string());
        }
        let text = self.templates.render_json(&self.template, context)?;
        let value: Value = serde_json::from_str(&text).map_err(|e| RenderError::InvalidJson {
            name: self.template.clone(),
            message: e.to_string(),
        })?;
        Ok(json!({"op": "put", "key": key, "value": value.to_string()}).to_string())
    }

    /// Puts first, then deletes (an erasure in the same batch wins); of several puts of one
    /// key only the last is sent. Each bulk request carries at most 10,000 keys and 100 MB.
    async fn send(&self, batch: &[Delivery]) -> Vec<Outcome> {
        let mut outcomes: Vec<Option<Outcome>> = vec![None; batch.len()];
        let mut last_put: HashMap<String, usize> = HashMap::new();
        let mut ops = Vec::with_capacity(batch.len());
        for (i, d) in batch.iter().enumerate() {
            match parse(&d.payload) {
                Ok(op) => {
                    if let Op::Put { key, .. } = &op {
                        last_put.insert(key.clone(), i);
                    }
                    ops.push((i, op));
                }
                Err(f) => outcomes[i] = Some(Outcome::Failed(f)),
            }
        }
        let mut puts: Vec<(usize, Value)> = Vec::new();
        let mut deletes: Vec<(usize, String)> = Vec::new();
        let mut superseded: HashMap<usize, usize> = HashMap::new();
        for (i, op) in ops {
            match op {
                Op::Put { key, value } if last_put[&key] == i => {
                    let mut pair = json!({"key": key, "value": value});
                    if let Some(ttl) = self.expiration_ttl {
                        pair["expiration_ttl"] = json!(ttl);
                    }
                    puts.push((i, pair));
                }
                // An older value of a key written again in this batch: it shares the newer
                // write's outcome.
                Op::Put { key, .. } => drop(superseded.insert(i, last_put[&key])),
                Op::Delete { key } => deletes.push((i, key)),
            }
        }
        for chunk in chunks(&puts, |(_, pair)| pair.to_string().len()) {
            let body = Value::Array(chunk.iter().map(|(_, p)| p.clone()).collect()).to_string();
            let request = self.client.put(format!("{}/bulk", self.namespace));
            let outcome = self.call(request, body).await;
            for (i, _) in chunk {
                outcomes[*i] = Some(outcome.clone());
            }
        }
        for (old, newer) in superseded {
            outcomes[old] = outcomes[newer].clone();
        }
        for chunk in chunks(&deletes, |(_, key)| key.len() + 3) {
            let keys: Vec<&String> = chunk.iter().map(|(_, k)| k).collect();
            let request = self.client.post(format!("{}/bulk/delete", self.namespace));
            let outcome = self.call(request, json!(keys).to_string()).await;
            for (i, _) in chunk {
                outcomes[*i] = Some(outcome.clone());
            }
        }
        outcomes
            .into_iter()
            .map(|o| o.expect("every delivery has an outcome"))
            .collect()
    }
}

/// `items` cut into requests of at most 10,000 items and 100 MB (by `size`).
fn chunks<T>(items: &[T], size: impl Fn(&T) -> usize) -> Vec<&[T]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 2);
    for (i, item) in items.iter().enumerate() {
        let n = size(item) + 1;
        if i > start && (i - start == MAX_PAIRS || bytes + n > MAX_REQUEST_BYTES) {
            out.push(&items[start..i]);
            (start, bytes) = (i, 2);
        }
        bytes += n;
    }
    if start < items.len() {
        out.push(&items[start..]);
    }
    out
}
