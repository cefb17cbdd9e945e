use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use google_cloud_gax::error::rpc::Code;
use google_cloud_pubsub::client::Publisher;
use google_cloud_pubsub::model::Message;
use serde_json::{json, Value};
use tokio::sync::OnceCell;

use super::{auth, PubSubConfig};
use crate::{Connector, Delivery, Failure, Outcome, Reason, RenderContext, RenderError};

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

    async fn client(&self) -> Result<&Publisher, Failure> {
        self.client
            .get_or_try_init(|| async {
                let mut builder = Publisher::builder(self.topic.clone());
                if let Some(endpoint) = &self.endpoint {
                    builder = builder.with_endpoint(endpoint.clone());
                }
                if let Some(credentials) =
                    auth::credentials(self.credentials.as_ref(), self.endpoint.as_deref())
                        .map_err(|e| Failure::new(Reason::Auth, e.to_string()))?
                {
                    builder = builder.with_credentials(credentials);
                }
                builder.build().await.map_err(|e| {
                    Failure::new(Reason::Transport, format!("cannot build the client: {e}"))
                })
            })
            .await
    }

    /// The message for one delivery: the rendered body with `id` set to the idempotency key
    /// (stable across retries, so a consumer can drop a repeat).
    pub(super) fn message(&self, d: &Delivery) -> Result<Message, Failure> {
        let mut body: Value = serde_json::from_str(&d.payload)
            .map_err(|_| Failure::new(Reason::InvalidItem, "the stored payload is not JSON"))?;
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

/// The reason of a failed publish, from its gRPC status code.
fn reason(code: Option<Code>) -> Reason {
    match code {
        Some(Code::NotFound) => Reason::NotFound,
        Some(Code::PermissionDenied | Code::Unauthenticated) => Reason::Auth,
        Some(Code::InvalidArgument | Code::FailedPrecondition) => Reason::InvalidItem,
        Some(Code::ResourceExhausted) => Reason::Throttled,
        Some(Code::DeadlineExceeded) => Reason::Timeout,
        Some(Code::Unavailable) => Reason::Transport,
        _ => Reason::ServerError,
    }
}

#[async_trait]
impl Connector for PubSub {
    fn kind(&self) -> &'static str {
        "pubsub"
    }

    /// Its messages are version-1 hot-lead messages, about people.
    fn takes(&self, trigger_kind: &str) -> bool {
        trigger_kind != "identity" && !crate::is_account_kind(trigger_kind)
    }

    fn timeout(&self) -> Duration {
        self.timeout
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
            Err(failure) => return vec![Outcome::Failed(failure); batch.len()],
        };
        let mut pending = Vec::with_capacity(batch.len());
        for d in batch {
            pending.push(self.message(d).map(|m| client.publish(m)));
        }
        let mut outcomes = Vec::with_capacity(batch.len());
        for (d, p) in batch.iter().zip(pending) {
            let failure = match p {
                Err(failure) => failure,
                Ok(future) => match tokio::time::timeout(self.timeout, future).await {
                    Ok(Ok(_id)) => {
                        outcomes.push(Outcome::Delivered { record_id: None });
                        continue;
                    }
                    Ok(Err(e)) => {
                        if self.ordering {
                            client.resume_publish(d.visitor_id.clone());
                        }
                        let code = match &e {
                            google_cloud_pubsub::error::PublishError::Rpc(e) => {
                                e.status().map(|s| s.code)
                            }
                            _ => None,
                        };
                        let reason = reason(code);
                        let hint = match reason {
                            Reason::NotFound | Reason::Auth => {
                                "; check the topic and the publisher's permissions"
                            }
                            _ => "",
                        };
                        Failure::new(reason, format!("pubsub: {e}{hint}"))
                    }
                    Err(_) => Failure::new(
                        Reason::Timeout,
                        format!("no answer within {:?}", self.timeout),
                    ),
                },
            };
            outcomes.push(Outcome::Failed(failure));
        }
        outcomes
    }
}
