//! `[sources.pubsub]`: hot-lead messages from a Pub/Sub subscription (StreamingPull through
//! `google-cloud-pubsub`), routed and committed to the outbox in batches; a message is acked
//! only after its deliveries are committed. The client extends leases while a batch is being
//! committed and bounds what is held with flow control (messages and bytes). A message that
//! can never be routed (not JSON, wrong version, no lead) becomes an `oie` dead letter with its
//! raw payload, in the same transaction, and is acked; if the commit fails, the batch is nacked
//! for redelivery.

pub mod message;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use google_cloud_pubsub::client::Subscriber;
use google_cloud_pubsub::model::Message;
use oie_connectors::pubsub::auth;
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::clock::now_ms;
use crate::config::PubSubSourceConfig;
use crate::dispatch::ConnectorRuntime;
use crate::outbox::NewDelivery;
use crate::sources::stage::{Arrival, Handed, Progress, Stage};

pub const SOURCE: &str = "pubsub";

/// The connector name dead letters of unroutable messages are filed under.
pub const DEAD_LETTER_CONNECTOR: &str = "sources.pubsub";

pub struct PubSubSource {
    pub stage: Stage,
    pub config: PubSubSourceConfig,
}

impl PubSubSource {
    /// Receives until `stop`; a broken stream is opened again after a pause.
    pub async fn run(
        self: Arc<Self>,
        runtimes: Vec<Arc<ConnectorRuntime>>,
        stop: CancellationToken,
    ) {
        while !stop.is_cancelled() {
            if let Err(e) = self.session(&runtimes, &stop).await {
                tracing::error!(error = %format!("{e:#}"), subscription = %self.config.subscription,
                    "Pub/Sub source failed; reconnecting in 2 s");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                    _ = stop.cancelled() => {}
                }
            }
        }
    }

    async fn client(&self) -> anyhow::Result<Subscriber> {
        let mut builder = Subscriber::builder();
        if let Some(endpoint) = &self.config.endpoint {
            builder = builder.with_endpoint(endpoint.clone());
        }
        let key = self
            .config
            .credentials_file
            .as_deref()
            .map(auth::read_key)
            .transpose()
            .map_err(anyhow::Error::msg)?;
        if let Some(credentials) = auth::credentials(key.as_ref(), self.config.endpoint.as_deref())
            .map_err(anyhow::Error::msg)?
        {
            builder = builder.with_credentials(credentials);
        }
        builder.build().await.context("Pub/Sub client")
    }

    async fn session(
        self: &Arc<Self>,
        runtimes: &[Arc<ConnectorRuntime>],
        stop: &CancellationToken,
    ) -> anyhow::Result<()> {
        let client = self.client().await?;
        let c = &self.config;
        let mut stream = client
            .subscribe(c.subscription.clone())
            .set_max_outstanding_messages(c.max_outstanding_messages)
            .set_max_outstanding_bytes(c.max_outstanding_bytes)
            .set_max_lease(c.max_lease)
            .set_max_lease_extension(c.lease_extension)
            .build();
        tracing::info!(subscription = %c.subscription, "receiving hot-lead messages from Pub/Sub");
        loop {
            let first = tokio::select! {
                next = stream.next() => next,
                _ = stop.cancelled() => return Ok(()),
            };
            let first = first.context("the Pub/Sub stream ended")??;
            let mut batch = vec![first];
            let deadline = tokio::time::Instant::now() + c.batch_wait;
            let mut broken = None;
            while batch.len() < c.batch_size.max(1) {
                match tokio::time::timeout_at(deadline, stream.next()).await {
                    Ok(Some(Ok(m))) => batch.push(m),
                    Ok(Some(Err(e))) => {
                        broken = Some(anyhow::Error::from(e));
                        break;
                    }
                    Ok(None) => {
                        broken = Some(anyhow::anyhow!("the Pub/Sub stream ended"));
                        break;
                    }
                    Err(_) => break,
                }
            }
            let (messages, handlers): (Vec<Message>, Vec<_>) = batch.into_iter().unzip();
            let source = self.clone();
            let committed =
                tokio::task::spawn_blocking(move || source.hand_over(&messages, now_ms())).await;
            match committed {
                Ok(Ok(done)) => {
                    if done.added > 0 {
                        runtimes.iter().for_each(|rt| rt.wake());
                    }
                    tracing::debug!(
                        messages = handlers.len(),
                        routed = done.routed,
                        dead = done.dead,
                        "Pub/Sub messages handed over and acked"
                    );
                    // Acked only now: the deliveries are durable in the outbox.
                    handlers.into_iter().for_each(|h| h.ack());
                }
                Ok(Err(e)) => {
                    // Dropping a handler nacks its message: Pub/Sub redelivers it.
                    drop(handlers);
                    tracing::error!(error = %format!("{e:#}"), "cannot commit Pub/Sub messages; nacked for redelivery");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(e) => {
                    drop(handlers);
                    tracing::error!(error = %e, "Pub/Sub commit task failed; nacked for redelivery");
                }
            }
            if let Some(e) = broken {
                return Err(e);
            }
        }
    }

    /// Parses, routes and commits one batch (blocking: SQLite).
    pub fn hand_over(&self, messages: &[Message], now: i64) -> anyhow::Result<Handed> {
        let mut arrivals = Vec::new();
        let mut progress = Progress::default();
        for m in messages {
            let published = m
                .publish_time
                .as_ref()
                .map(|t| t.seconds() * 1000 + i64::from(t.nanos()) / 1_000_000)
                .unwrap_or(now);
            match message::parse(&m.data, &m.message_id, published) {
                Ok(p) => arrivals.push(Arrival {
                    lead: p.lead,
                    triggers: vec![p.trigger],
                    crm: Vec::new(),
                    account: None,
                }),
                Err(reason) => {
                    tracing::warn!(message_id = %m.message_id, %reason,
                        "Pub/Sub message can never be routed: kept as a dead letter and acked");
                    progress.dead.push(dead_letter(m, reason));
                }
            }
        }
        self.stage.hand_over(arrivals, progress, now)
    }
}

/// A dead letter holding the raw message, keyed by its message id (a redelivery is a no-op).
fn dead_letter(m: &Message, reason: String) -> NewDelivery {
    let data = match std::str::from_utf8(&m.data) {
        Ok(text) => json!({"text": text}),
        Err(_) => {
            use base64::Engine;
            json!({"base64": base64::engine::general_purpose::STANDARD.encode(&m.data)})
        }
    };
    let raw = json!({
        "messageId": m.message_id,
        "attributes": m.attributes,
        "orderingKey": m.ordering_key,
        "data": data,
    });
    let key = hex::encode(Sha256::digest(m.message_id.as_bytes()));
    NewDelivery {
        key: format!("pubsub_{}", &key[..32]),
        route: "(pubsub source)".into(),
        connector: DEAD_LETTER_CONNECTOR.into(),
        visitor_id: m.attributes.get("visitorId").cloned().unwrap_or_default(),
        trigger_kind: "hot_lead".into(),
        payload: Err(format!("unroutable Pub/Sub message: {reason}")),
        context: raw.to_string(),
        delay_ms: 0,
        group_key: None,
        supersedes: false,
        origin_ms: None,
    }
}
