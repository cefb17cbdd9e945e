use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value};

use super::classify::{error_code, Answer};
use super::{enforce_limits, SlackConfig, DIGEST_SHOWN};
use crate::{
    http, Connector, Delivery, Failure, Outcome, Reason, RenderContext, RenderError, Secret,
    TemplateSet, VisitorState,
};

/// Where messages go.
enum Mode {
    Webhook {
        url: Secret,
    },
    Api {
        endpoint: String,
        token: Secret,
        channel: String,
        thread_ts: Option<String>,
    },
}

/// The key of a render's thread hints in the stored message (taken out before posting).
const THREAD_HINT: &str = "_oie_thread";

/// The key of a message update (`{"channel", "ts"}`): the payload becomes `chat.update`.
pub const UPDATE: &str = "_oie_update";

/// A configured Slack destination (one channel).
pub struct Slack {
    client: reqwest::Client,
    mode: Mode,
    /// With `thread = "per_lead"`: where each lead's thread is kept.
    threads: Option<Arc<dyn VisitorState>>,
    templates: Arc<TemplateSet>,
    template: String,
    digest_template: String,
    crm_record_url: Option<String>,
    timeout: Duration,
}

impl Slack {
    pub fn new(
        config: SlackConfig,
        templates: Arc<TemplateSet>,
        state: Arc<dyn VisitorState>,
    ) -> Result<Self, String> {
        let threads = match config.thread.as_deref() {
            None => None,
            Some("per_lead") if config.webhook_url.is_some() => {
                return Err("thread = \"per_lead\" needs `token` and `channel`: an incoming webhook cannot reply in a thread".into())
            }
            Some("per_lead") if config.thread_ts.is_some() => {
                return Err("set either thread = \"per_lead\" or `thread_ts`, not both".into())
            }
            Some("per_lead") => Some(state),
            Some(other) => return Err(format!("thread = \"{other}\": the only value is \"per_lead\"")),
        };
        let mode = match (config.webhook_url, config.token, config.channel) {
            (Some(url), None, _) => {
                reqwest::Url::parse(url.expose())
                    .map_err(|e| format!("webhook_url is not a valid URL: {e}"))?;
                Mode::Webhook { url }
            }
            (None, Some(token), Some(channel)) => Mode::Api {
                endpoint: format!("{}/chat.postMessage", config.base_url.trim_end_matches('/')),
                token,
                channel,
                thread_ts: config.thread_ts,
            },
            (None, Some(_), None) => {
                return Err("`token` needs `channel` (a channel id like C0123ABCD)".into())
            }
            (Some(_), Some(_), _) => {
                return Err("set either `webhook_url` or `token`, not both".into())
            }
            (None, None, _) => return Err("set `webhook_url`, or `token` and `channel`".into()),
        };
        for name in [&config.template, &config.digest_template] {
            if !templates.has(name) {
                return Err(format!("template `{name}` does not exist"));
            }
        }
        let client = http::api_client()?;
        Ok(Slack {
            client,
            mode,
            threads,
            templates,
            template: config.template,
            digest_template: config.digest_template,
            crm_record_url: config.crm_record_url,
            timeout: config.timeout,
        })
    }

    /// The render data plus `crmUrl` (the CRM record link, or null).
    fn with_crm_url(&self, data: &Value) -> Value {
        let mut data = data.clone();
        let id = data["crm"]
            .as_array()
            .and_then(|c| c.first())
            .and_then(|c| c["id"].as_str());
        let url = match (&self.crm_record_url, id) {
            (Some(pattern), Some(id)) => Value::String(pattern.replace("{id}", id)),
            _ => Value::Null,
        };
        data["crmUrl"] = url;
        data
    }

    fn finish(&self, name: &str, data: Value) -> Result<Value, RenderError> {
        let text = self
            .templates
            .render_json(name, &RenderContext::new(data))?;
        let mut message: Value =
            serde_json::from_str(&text).map_err(|e| RenderError::InvalidJson {
                name: name.to_string(),
                message: e.to_string(),
            })?;
        enforce_limits(&mut message);
        Ok(message)
    }

    async fn send_one(&self, delivery: &Delivery) -> Outcome {
        let Ok(mut message) = serde_json::from_str::<Value>(&delivery.payload) else {
            return Outcome::failed(Reason::InvalidItem, "the stored message is not JSON");
        };
        if let Some(target) = message.as_object_mut().and_then(|m| m.remove(UPDATE)) {
            return self.update(&target, message).await;
        }
        let thread = self.thread_of(&mut message, &delivery.visitor_id);
        let mut fallback = json!({"text": message["text"]});
        for key in ["thread_ts", "reply_broadcast"] {
            if let Some(v) = message.get(key) {
                fallback[key] = v.clone();
            }
        }
        let posted = match self.post(&message).await {
            Err(Answer::InvalidBlocks) => {
                tracing::warn!("slack refused the blocks (invalid_blocks); sending the text alone");
                match self.post(&fallback).await {
                    Err(Answer::InvalidBlocks) => {
                        return Outcome::failed(
                            Reason::InvalidItem,
                            "slack invalid_blocks, even as plain text",
                        )
                    }
                    other => other,
                }
            }
            other => other,
        };
        match posted {
            Ok(answer) => {
                if let Some(scope) = thread {
                    // A lead's first message: its thread from now on.
                    if let Some(ts) = answer["ts"].as_str() {
                        if let Some(threads) = &self.threads {
                            threads.put(&scope, &delivery.visitor_id, ts);
                        }
                    }
                }
                Outcome::Delivered { record_id: None }
            }
            Err(Answer::Failed(f)) => Outcome::Failed(f),
            Err(Answer::InvalidBlocks) => unreachable!("handled above"),
        }
    }

    /// `chat.update` of the message at `target` (`{"channel", "ts"}`) with `message`'s text and
    /// blocks (a click on an alert's button, handed over by `POST /slack/actions`).
    async fn update(&self, target: &Value, mut message: Value) -> Outcome {
        let Mode::Api {
            endpoint, token, ..
        } = &self.mode
        else {
            return Outcome::failed(
                Reason::InvalidItem,
                "an incoming webhook cannot update a message",
            );
        };
        message["channel"] = target["channel"].clone();
        message["ts"] = target["ts"].clone();
        let url = endpoint.replace("/chat.postMessage", "/chat.update");
        match self.web(self.client.post(url).json(&message), token).await {
            Ok(_) => Outcome::Delivered { record_id: None },
            Err(Answer::Failed(f)) => Outcome::Failed(f.context("chat.update")),
            Err(Answer::InvalidBlocks) => {
                Outcome::failed(Reason::InvalidItem, "chat.update: invalid_blocks")
            }
        }
    }

    /// One Web API call with the bot token: Slack's JSON answer, or what it refused.
    async fn web(&self, request: reqwest::RequestBuilder, token: &Secret) -> Result<Value, Answer> {
        let response = request
            .bearer_auth(token.expose())
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| Answer::Failed(http::transport_failure(e, self.timeout)))?;
        let status = response.status().as_u16();
        let after = http::retry_after(response.headers());
        let body = response.text().await.unwrap_or_default();
        api_answer(status, &body, after)
    }

    /// With `thread = "per_lead"`, makes a single lead's message a reply in the lead's thread
    /// (broadcast to the channel when the render asked for it) and returns `None`; or, when the
    /// lead has no thread yet, returns the scope to keep the new message's `ts` under. Digests
    /// (no thread hint) are left alone.
    fn thread_of(&self, message: &mut Value, visitor: &str) -> Option<String> {
        let hint = message.as_object_mut()?.remove(THREAD_HINT)?;
        let (threads, Mode::Api { channel, .. }) = (self.threads.as_ref()?, &self.mode) else {
            return None;
        };
        let scope = format!("slack:{channel}");
        match threads.get(&scope, visitor) {
            Some(ts) => {
                message["thread_ts"] = json!(ts);
                if hint["broadcast"] == json!(true) {
                    message["reply_broadcast"] = json!(true);
                }
                None
            }
            None => Some(scope),
        }
    }

    /// One HTTP call; `Ok` with Slack's answer (`chat.postMessage`'s JSON, null for an incoming
    /// webhook) when it accepted the message.
    async fn post(&self, message: &Value) -> Result<Value, Answer> {
        // Link previews would fetch pages a visitor's browser named: never.
        let mut message = message.clone();
        message["unfurl_links"] = json!(false);
        message["unfurl_media"] = json!(false);
        let request = match &self.mode {
            Mode::Webhook { url } => self.client.post(url.expose()).json(&message),
            Mode::Api {
                endpoint,
                token,
                channel,
                thread_ts,
            } => {
                let mut body = message;
                body["channel"] = json!(channel);
                if let Some(ts) = thread_ts {
                    body["thread_ts"] = json!(ts);
                }
                self.client
                    .post(endpoint)
                    .bearer_auth(token.expose())
                    .json(&body)
            }
        };
        let response = request
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| Answer::Failed(http::transport_failure(e, self.timeout)))?;
        let status = response.status().as_u16();
        let after = http::retry_after(response.headers());
        let body = response.text().await.unwrap_or_default();
        match &self.mode {
            Mode::Webhook { .. } if status == 200 => Ok(Value::Null),
            Mode::Webhook { .. } => Err(error_code(&body, status, after)),
            Mode::Api { .. } => api_answer(status, &body, after),
        }
    }
}

/// `chat.postMessage` answers HTTP 200 even on error; the body says which.
fn api_answer(status: u16, body: &str, after: Option<Duration>) -> Result<Value, Answer> {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let code = parsed
        .as_ref()
        .and_then(|v| v["error"].as_str())
        .unwrap_or_default();
    match (status, parsed.as_ref().and_then(|v| v["ok"].as_bool())) {
        (200, Some(true)) => Ok(parsed.unwrap_or_default()),
        (200, None) => Err(Answer::Failed(Failure::new(
            Reason::ServerError,
            "slack answered 200 without a JSON body",
        ))),
        _ => Err(error_code(code, status, after)),
    }
}

#[async_trait]
impl Connector for Slack {
    fn kind(&self) -> &'static str {
        "slack"
    }

    /// About one message per second per channel, as Slack documents.
    fn default_rate_limit(&self) -> Option<f64> {
        Some(1.0)
    }

    /// One at a time, so messages arrive in order.
    fn default_concurrency(&self) -> usize {
        1
    }

    /// `users.info` (scope `users:read.email`) with the bot token.
    async fn user_email(&self, user: &str) -> Result<Option<String>, Failure> {
        let Mode::Api {
            endpoint, token, ..
        } = &self.mode
        else {
            return Ok(None);
        };
        let url = endpoint.replace("/chat.postMessage", "/users.info");
        match self
            .web(self.client.get(url).query(&[("user", user)]), token)
            .await
        {
            Ok(answer) => Ok(answer["user"]["profile"]["email"]
                .as_str()
                .filter(|e| !e.is_empty())
                .map(str::to_string)),
            Err(Answer::Failed(f)) => Err(f.context("users.info")),
            Err(Answer::InvalidBlocks) => Err(Failure::new(Reason::ServerError, "users.info")),
        }
    }

    fn updates_messages_in(&self) -> Option<&str> {
        match &self.mode {
            Mode::Api { channel, .. } => Some(channel),
            Mode::Webhook { .. } => None,
        }
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }

    /// `auth.test` with the bot token; an incoming webhook has no read call (posting would send
    /// a message), so it is not checked.
    async fn check(&self) -> Result<String, Failure> {
        let Mode::Api {
            endpoint, token, ..
        } = &self.mode
        else {
            return Ok("not checked: an incoming webhook has no read call".into());
        };
        let url = endpoint.replace("/chat.postMessage", "/auth.test");
        match self.web(self.client.post(url), token).await {
            Ok(body) => Ok(format!(
                "authenticated as {} in {}",
                body["user"].as_str().unwrap_or("?"),
                body["team"].as_str().unwrap_or("?")
            )),
            Err(Answer::Failed(f)) => Err(f.context("auth.test")),
            Err(Answer::InvalidBlocks) => Err(Failure::new(Reason::ServerError, "auth.test")),
        }
    }

    fn render(&self, context: &RenderContext) -> Result<String, RenderError> {
        let mut message = self.finish(&self.template, self.with_crm_url(context.data()))?;
        if self.threads.is_some() {
            // Kept with the stored message for the send: whether a reply is also shown in the
            // channel (a rise to burning).
            let trigger = &context.data()["trigger"];
            let broadcast = trigger["kind"] == "hot_lead"
                && trigger["level"] == "burning"
                && trigger["previousLevel"] != "burning";
            message[THREAD_HINT] = json!({"broadcast": broadcast});
        }
        Ok(message.to_string())
    }

    fn render_digest(&self, items: &[Value]) -> Result<String, RenderError> {
        let leads: Vec<Value> = items
            .iter()
            .take(DIGEST_SHOWN)
            .map(|i| self.with_crm_url(i))
            .collect();
        let data = json!({
            "count": items.len(),
            "plural": items.len() != 1,
            "more": items.len().saturating_sub(DIGEST_SHOWN),
            "leads": leads,
            "route": items.first().map(|i| i["route"].clone()).unwrap_or(Value::Null),
        });
        self.finish(&self.digest_template, data)
            .map(|m| m.to_string())
    }

    async fn send(&self, batch: &[Delivery]) -> Vec<Outcome> {
        let mut outcomes = Vec::with_capacity(batch.len());
        for delivery in batch {
            outcomes.push(self.send_one(delivery).await);
        }
        outcomes
    }
}
