use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE, USER_AGENT};

use super::{sign, SigningKey, WebhookConfig};
use crate::{
    classify_status, http, Connector, Delivery, Outcome, RenderContext, RenderError, TemplateSet,
};

/// A configured webhook endpoint.
pub struct Webhook {
    client: reqwest::Client,
    /// Parsed once: every request would parse it again from the text.
    url: reqwest::Url,
    key: Option<SigningKey>,
    template: String,
    templates: Arc<TemplateSet>,
    timeout: Duration,
}

impl Webhook {
    /// Checks the template and the secret, and builds the HTTP client (no redirects).
    pub fn new(config: WebhookConfig, templates: Arc<TemplateSet>) -> Result<Self, String> {
        if !templates.has(&config.template) {
            return Err(format!("template `{}` does not exist", config.template));
        }
        let url = reqwest::Url::parse(config.url.expose())
            .map_err(|e| format!("url is not a valid URL: {e}"))?;
        let key = config
            .secret
            .as_ref()
            .map(|s| SigningKey::parse(s.expose()))
            .transpose()?;
        let client = http::client()
            .default_headers(headers(&config)?)
            .build()
            .map_err(|e| format!("cannot build HTTP client: {e}"))?;
        Ok(Webhook {
            client,
            url,
            key,
            template: config.template,
            templates,
            timeout: config.timeout,
        })
    }

    async fn send_one(&self, delivery: &Delivery) -> Outcome {
        let timestamp = now_secs();
        let mut request = self
            .client
            .post(self.url.clone())
            .timeout(self.timeout)
            .header("webhook-id", &delivery.key)
            .header("webhook-timestamp", timestamp.to_string())
            .body(delivery.payload.clone());
        if let Some(key) = &self.key {
            let signature = sign(key, &delivery.key, timestamp, delivery.payload.as_bytes());
            request = request.header("webhook-signature", signature);
        }
        match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let retry_after = http::retry_after(response.headers());
                let body = response.text().await.unwrap_or_default();
                classify_status(status, retry_after, &body)
            }
            Err(e) => Outcome::Failed(http::transport_failure(e, self.timeout)),
        }
    }
}

fn headers(config: &WebhookConfig) -> Result<HeaderMap, String> {
    let mut map = HeaderMap::new();
    map.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    map.insert(
        USER_AGENT,
        HeaderValue::from_static(concat!("oie/", env!("CARGO_PKG_VERSION"))),
    );
    for (name, value) in &config.headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("`{name}` is not a valid header name"))?;
        let mut value = HeaderValue::from_str(value.expose())
            .map_err(|_| format!("the value of header `{name}` is not valid in HTTP"))?;
        value.set_sensitive(true);
        map.insert(name, value);
    }
    Ok(map)
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[async_trait]
impl Connector for Webhook {
    fn kind(&self) -> &'static str {
        "webhook"
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }

    /// A webhook is one HTTP endpoint, usually far away (n8n, Zapier: 50–500 ms a request):
    /// requests in flight are what hides that latency. 32 keeps a burst of hot leads moving
    /// (64–640 requests/s at those latencies) while staying far below what a web server
    /// accepts from one client; an endpoint that cannot keep up answers 429/503, which the
    /// dispatcher honours, and `rate_limit` caps it outright.
    fn default_concurrency(&self) -> usize {
        32
    }

    fn render(&self, context: &RenderContext) -> Result<String, RenderError> {
        self.templates.render_json(&self.template, context)
    }

    async fn send(&self, batch: &[Delivery]) -> Vec<Outcome> {
        let mut outcomes = Vec::with_capacity(batch.len());
        for delivery in batch {
            outcomes.push(self.send_one(delivery).await);
        }
        outcomes
    }
}
