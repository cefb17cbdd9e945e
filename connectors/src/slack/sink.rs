use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value};

use super::classify::{self, error_code, Answer};
use super::{enforce_limits, SlackConfig, DIGEST_SHOWN};
use crate::cache::TtlCache;
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
        /// The Web API's root (`https://slack.com/api`).
        base: String,
        token: Secret,
        channel: String,
        thread_ts: Option<String>,
    },
}

/// The key of a render's thread hints in the stored message (taken out before posting).
const THREAD_HINT: &str = "_oie_thread";

/// The key of a render's owner hint (the lead's CRM owner e-mail, or null), with
/// `recipient = "owner"`; taken out before posting.
const OWNER_HINT: &str = "_oie_owner";

/// The key of a message update (`{"channel", "ts"}`): the payload becomes `chat.update`.
pub const UPDATE: &str = "_oie_update";

/// A configured Slack destination (one channel).
pub struct Slack {
    client: reqwest::Client,
    mode: Mode,
    /// With `thread = "per_lead"`: where each lead's thread is kept.
    threads: Option<Arc<dyn VisitorState>>,
    /// With `recipient = "owner"`: the Slack user of each owner e-mail (`None`: not in Slack).
    owners: Option<TtlCache<Option<String>>>,
    templates: Arc<TemplateSet>,
    template: String,
    account_template: String,
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
        let owners = match config.recipient.as_str() {
            "channel" if config.fallback_channel.is_some() => {
                return Err("`fallback_channel` goes with recipient = \"owner\"; a channel connector posts to `channel`".into())
            }
            "channel" => None,
            "owner" if config.token.is_none() => {
                return Err("recipient = \"owner\" needs `token`: an incoming webhook posts to one channel only".into())
            }
            "owner" if config.channel.is_some() || config.thread_ts.is_some() => {
                return Err("recipient = \"owner\" sends direct messages: set `fallback_channel` (for leads without an owner in Slack) instead of `channel` and `thread_ts`".into())
            }
            "owner" if config.fallback_channel.is_none() => {
                return Err("recipient = \"owner\" needs `fallback_channel`: where alerts go when the lead has no owner or the owner is not in Slack".into())
            }
            "owner" => Some(TtlCache::new(config.owner_cache)),
            other => {
                return Err(format!("recipient = \"{other}\": the values are \"channel\" (the default) and \"owner\""))
            }
        };
        let channel = config.channel.or(config.fallback_channel);
        let mode = match (config.webhook_url, config.token, channel) {
            (Some(url), None, _) => {
                reqwest::Url::parse(url.expose())
                    .map_err(|e| format!("webhook_url is not a valid URL: {e}"))?;
                Mode::Webhook { url }
            }
            (None, Some(token), Some(channel)) => Mode::Api {
                base: config.base_url.trim_end_matches('/').to_string(),
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
        for name in [
            &config.template,
            &config.account_template,
            &config.digest_template,
        ] {
            if !templates.has(name) {
                return Err(format!("template `{name}` does not exist"));
            }
        }
        let client = http::api_client()?;
        Ok(Slack {
            client,
            mode,
            threads,
            owners,
            templates,
            template: config.template,
            account_template: config.account_template,
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
        let owner = match self.owner_of(&mut message).await {
            Ok(owner) => owner,
            Err(f) => return Outcome::Failed(f),
        };
        if let Some(user) = owner {
            match self
                .deliver(&message, Some(&user), &delivery.visitor_id)
                .await
            {
                Outcome::Failed(f) if classify::refused_dm(&f) => {
                    let detail = f.detail;
                    tracing::info!(%detail, "slack refused the direct message to the lead's owner; posting to the fallback channel");
                }
                outcome => return outcome,
            }
        }
        self.deliver(&message, None, &delivery.visitor_id).await
    }

    /// Posts `message` to `to` (a user id, for a direct message) or the connector's channel,
    /// in the lead's thread when it has one there, and keeps the thread of a lead's first
    /// message.
    async fn deliver(&self, message: &Value, to: Option<&str>, visitor: &str) -> Outcome {
        let mut message = message.clone();
        let thread = self.thread_of(&mut message, visitor, to);
        let mut fallback = json!({"text": message["text"]});
        for key in ["thread_ts", "reply_broadcast"] {
            if let Some(v) = message.get(key) {
                fallback[key] = v.clone();
            }
        }
        let posted = match self.post(&message, to).await {
            Err(Answer::InvalidBlocks) => {
                tracing::warn!("slack refused the blocks (invalid_blocks); sending the text alone");
                match self.post(&fallback, to).await {
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
                            threads.put(&scope, visitor, ts);
                        }
                    }
                }
                Outcome::Delivered { record_id: None }
            }
            Err(Answer::Failed(f)) => Outcome::Failed(f),
            Err(Answer::InvalidBlocks) => unreachable!("handled above"),
        }
    }

    /// With `recipient = "owner"`: takes the owner hint out of `message` and answers the Slack
    /// user to send it to — `None` when the lead has no owner or the owner has no Slack account
    /// (`users.lookupByEmail`, remembered for `owner_cache`). A failed lookup is the delivery's
    /// failure, so it is retried as Slack asks.
    async fn owner_of(&self, message: &mut Value) -> Result<Option<String>, Failure> {
        let Some(hint) = message.as_object_mut().and_then(|m| m.remove(OWNER_HINT)) else {
            return Ok(None);
        };
        let (Some(owners), Some(email), Some((url, token))) = (
            &self.owners,
            hint.as_str(),
            self.method("users.lookupByEmail"),
        ) else {
            return Ok(None);
        };
        if let Some(known) = owners.get(email) {
            return Ok(known);
        }
        let user = match self
            .web(self.client.get(url).query(&[("email", email)]), token)
            .await
        {
            Ok(answer) => answer["user"]["id"].as_str().map(str::to_string),
            Err(Answer::Failed(f)) if classify::user_not_found(&f) => None,
            Err(Answer::Failed(f)) => return Err(f.context("users.lookupByEmail")),
            Err(Answer::InvalidBlocks) => {
                return Err(Failure::new(Reason::ServerError, "users.lookupByEmail"))
            }
        };
        owners.put(email, user.clone());
        Ok(user)
    }

    /// `chat.update` of the message at `target` (`{"channel", "ts"}`) with `message`'s text and
    /// blocks (a click on an alert's button, handed over by `POST /slack/actions`).
    async fn update(&self, target: &Value, mut message: Value) -> Outcome {
        let Some((url, token)) = self.method("chat.update") else {
            return Outcome::failed(
                Reason::InvalidItem,
                "an incoming webhook cannot update a message",
            );
        };
        message["channel"] = target["channel"].clone();
        message["ts"] = target["ts"].clone();
        match self.web(self.client.post(url).json(&message), token).await {
            Ok(_) => Outcome::Delivered { record_id: None },
            Err(Answer::Failed(f)) => Outcome::Failed(f.context("chat.update")),
            Err(Answer::InvalidBlocks) => {
                Outcome::failed(Reason::InvalidItem, "chat.update: invalid_blocks")
            }
        }
    }

    /// The URL of Web API method `name` and the bot token, or `None` for an incoming webhook.
    fn method(&self, name: &str) -> Option<(String, &Secret)> {
        match &self.mode {
            Mode::Api { base, token, .. } => Some((format!("{base}/{name}"), token)),
            Mode::Webhook { .. } => None,
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
    /// where it goes (`to`, or the channel)
    /// (broadcast to the channel when the render asked for it) and returns `None`; or, when the
    /// lead has no thread yet, returns the scope to keep the new message's `ts` under. Digests
    /// (no thread hint) are left alone.
    fn thread_of(&self, message: &mut Value, visitor: &str, to: Option<&str>) -> Option<String> {
        let hint = message.as_object_mut()?.remove(THREAD_HINT)?;
        let (threads, Mode::Api { channel, .. }) = (self.threads.as_ref()?, &self.mode) else {
            return None;
        };
        let scope = format!("slack:{}", to.unwrap_or(channel));
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

    /// One HTTP call, to `to` (a user id) or the channel; `Ok` with Slack's answer
    /// (`chat.postMessage`'s JSON, null for an incoming webhook) when it accepted the message.
    async fn post(&self, message: &Value, to: Option<&str>) -> Result<Value, Answer> {
        // Link previews would fetch pages a visitor's browser named: never.
        let mut message = message.clone();
        message["unfurl_links"] = json!(false);
        message["unfurl_media"] = json!(false);
        let request = match &self.mode {
            Mode::Webhook { url } => self.client.post(url.expose()).json(&message),
            Mode::Api {
                base,
                token,
                channel,
                thread_ts,
            } => {
                let mut body = message;
                body["channel"] = json!(to.unwrap_or(channel));
                if let Some(ts) = thread_ts {
                    body["thread_ts"] = json!(ts);
                }
                self.client
                    .post(format!("{base}/chat.postMessage"))
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
        let Some((url, token)) = self.method("users.info") else {
            return Ok(None);
        };
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

    fn sends_to_owners(&self) -> bool {
        self.owners.is_some()
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
        let Some((url, token)) = self.method("auth.test") else {
            return Ok("not checked: an incoming webhook has no read call".into());
        };
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
        let trigger = &context.data()["trigger"];
        let account = trigger["kind"]
            .as_str()
            .is_some_and(|k| k.starts_with("account_"));
        let template = if account {
            &self.account_template
        } else {
            &self.template
        };
        let mut message = self.finish(template, self.with_crm_url(context.data()))?;
        if self.threads.is_some() {
            // Kept with the stored message for the send: whether a reply is also shown in the
            // channel (a rise to burning, of a lead or an account).
            let broadcast = (trigger["kind"] == "hot_lead" || trigger["kind"] == "account_hot")
                && trigger["level"] == "burning"
                && trigger["previousLevel"] != "burning";
            message[THREAD_HINT] = json!({"broadcast": broadcast});
        }
        if self.owners.is_some() {
            // The first CRM record of the lead that names an owner (records are newest first).
            let owner = context.data()["crm"]
                .as_array()
                .into_iter()
                .flatten()
                .find_map(|r| r["ownerEmail"].as_str().filter(|e| !e.is_empty()));
            message[OWNER_HINT] = json!(owner);
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
