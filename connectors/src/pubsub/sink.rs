use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use google_cloud_gax::error::rpc::Code;
use google_cloud_pubsub::client::Publisher;
use google_cloud_pubsub::model::Message;
use serde_json::{json, Value};
use tokio::sync::OnceCell;

use super::{auth, PubSubConfig};
use crate::{Connector, Delivery, Outcome, RenderContext, RenderError};

/// A configured topic. The client is built on first use (building it is asynchronous).
pub struct PubSub {
    topic: String,
    endpoint: Option<String>,
    credentials: Option<Value>,
    ordering: bool,
    timeout: Duration,
    client: OnceCell<Publisher>,
}

impl PubSub {
    pub fn new(config: PubSubConfig) -> Result<Self, String> {
        let parts: Vec<&str> = config.topic.split('/').collect();
        if !matches!(parts.as_slice(), ["projects", p, "topics", t] if !p.is_empty() && !t.is_empty())
        {
            return Err(format!(
                "topic \"{}\" must be a full name like \"projects/my-project/topics/hot-leads\"",
                config.topic
            ));
        }
        let credentials = config
            .credentials_file
            .as_deref()
            .map(auth::read_key)
            .transpose()?;
        Ok(PubSub {
            topic: config.topic,
            endpoint: config.endpoint,
            credentials,
            ordering: config.ordering,
            timeout: config.timeout,
            client: OnceCell::new(),
        })
    }

    async fn client(&self) -> Result<&Publisher, Outcome> {
        self.client
            .get_or_try_init(|| async {
                let mut builder = Publisher::builder(self.topic.clone());
                if let Some(endpoint) = &self.endpoint {
                    builder = builder.with_endpoint(endpoint.clone());
                }
                if let Some(credentials) =
                    auth::credentials(self.credentials.as_ref(), self.endpoint.as_deref())
                        .map_err(|e| Outcome::permanent(format!("auth: {e}")))?
                {
                    builder = builder.with_credentials(credentials);
                }
                builder
                    .build()
                    .await
                    .map_err(|e| Outcome::retry(format!("pubsub: cannot build the client: {e}")))
            })
            .await
    }

    /// The message for one delivery: the rendered body with `id` set to the idempotency key
    /// (stable across retries, so a consumer can drop a repeat).
    pub(super) fn message(&self, d: &Delivery) -> Result<Message, Outcome> {
        let mut body: Value = serde_json::from_str(&d.payload)
            .map_err(|_| Outcome::permanent("the stored payload is not JSON"))?;
        if body.get("id").is_none_or(Value::is_null) {
            body["id"] = json!(d.key);
        }
        let attributes: HashMap<String, String> = [
            ("version", "1".to_string()),
            (
                "kind",
                body["kind"].as_str().unwrap_or("hot_lead").to_string(),
            ),
            ("visitorId", d.visitor_id.clone()),
            ("idempotencyKey", d.key.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let mut message = Message::new()
            .set_data(body.to_string())
            .set_attributes(attributes);
        if self.ordering {
            message = message.set_ordering_key(d.visitor_id.clone());
        }
        Ok(message)
    }
}

/// Not retrying these: the topic, the permissions or the message must change first.
fn permanent(code: Code) -> bool {
    matches!(
        code,
        Code::NotFound | Code::PermissionDenied | Code::InvalidArgument | Code::Unauthenticated
    )
}

#[async_trait]
impl Connector for PubSub {
    fn kind(&self) -> &'static str {
        "pubsub"
    }

    /// Publishes of one `send` are batched by the client.
    fn max_batch(&self) -> usize {
        100
    }

    fn render(&self, context: &RenderContext) -> Result<String, RenderError> {
        let data = context.data();
        Ok(json!({
            "version": 1,
            "kind": data["trigger"]["kind"],
            "at": data["trigger"]["at"],
            "level": data["trigger"]["level"],
            "previousLevel": data["trigger"]["previousLevel"],
            "route": data["route"],
            "lead": data["lead"],
        })
        .to_string())
    }

    async fn send(&self, batch: &[Delivery]) -> Vec<Outcome> {
        let client = match self.client().await {
            Ok(c) => c,
            Err(outcome) => return vec![outcome; batch.len()],
        };
        let mut pending = Vec::with_capacity(batch.len());
        for d in batch {
            pending.push(self.message(d).map(|m| client.publish(m)));
        }
        let mut outcomes = Vec::with_capacity(batch.len());
        for (d, p) in batch.iter().zip(pending) {
            let outcome = match p {
                Err(outcome) => outcome,
                Ok(future) => match tokio::time::timeout(self.timeout, future).await {
                    Ok(Ok(_id)) => Outcome::Delivered { record_id: None },
                    Ok(Err(google_cloud_pubsub::error::PublishError::Rpc(e))) => {
                        let code = e.status().map(|s| s.code);
                        if self.ordering {
                            client.resume_publish(d.visitor_id.clone());
                        }
                        match code {
                            Some(code) if permanent(code) => Outcome::permanent(format!(
                                "pubsub: {code:?}: {e}; check the topic and the publisher's permissions"
                            )),
                            _ => Outcome::retry(format!("pubsub: {e}")),
                        }
                    }
                    Ok(Err(e)) => {
                        if self.ordering {
                            client.resume_publish(d.visitor_id.clone());
                        }
                        Outcome::retry(format!("pubsub: {e}"))
                    }
                    Err(_) => {
                        Outcome::retry(format!("timeout: no answer within {:?}", self.timeout))
                    }
                },
            };
            outcomes.push(outcome);
        }
        outcomes
    }
}
