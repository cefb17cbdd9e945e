//! `POST /slack/actions`: the buttons of Slack alerts. Slack posts each click here
//! (form-encoded `payload=`, `type: block_actions`), signed with the app's signing secret. A
//! click is verified, recorded once (`lead_actions`) and applied in the outbox in one
//! transaction — Claim marks the lead claimed (a second click by someone else is told who has
//! it), Snooze holds the lead's alerts on the message's route, Not a fit marks it disqualified
//! and stops its alerts — and answered at once (Slack waits 3 seconds). The message is then
//! updated through the click's `response_url` (retried with backoff; Slack keeps it valid for 30
//! minutes).

pub mod signature;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use backon::{ExponentialBuilder, Retryable};
use serde_json::{json, Value};

use crate::metrics::Metrics;
use crate::outbox::{Action, ActionApplied, ActionKind, Outbox};
use oie_connectors::Secret;

/// The `action_id`s of the default alert's buttons.
pub const CLAIM: &str = "oie_claim";
pub const SNOOZE: &str = "oie_snooze";
pub const NOT_A_FIT: &str = "oie_not_a_fit";

/// Slack's interaction payloads are small; a message's blocks come with them.
const MAX_BODY: usize = 1 << 20;

#[derive(Clone)]
pub struct SlackActions {
    pub signing_secret: Secret,
    pub snooze: Duration,
    pub outbox: Arc<Outbox>,
    pub metrics: Arc<Metrics>,
    pub client: reqwest::Client,
    /// Wakes the delivery loops after a hand-over.
    pub wake: Arc<dyn Fn() + Send + Sync>,
    /// The connectors: the Slack one that posts to a click's channel with a bot token (it
    /// updates the message and tells who clicked), the CRMs a claimed lead's owner is set in.
    pub pipeline: Arc<crate::pipeline::Pipeline>,
    /// The lead store (the CRM records of a claimed lead).
    pub store: Arc<dyn crate::store::LeadStore>,
}

pub fn router(state: SlackActions) -> Router {
    Router::new()
        .route("/slack/actions", post(actions))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

fn refuse(status: StatusCode, why: &str) -> Response {
    (status, format!("{why}\n")).into_response()
}

async fn actions(State(s): State<SlackActions>, headers: HeaderMap, body: Bytes) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let now = crate::clock::now_ms();
    if let Err(why) = signature::verify(
        s.signing_secret.expose().as_bytes(),
        header(signature::TIMESTAMP),
        header(signature::SIGNATURE),
        &body,
        now / 1000,
    ) {
        s.metrics
            .slack_actions
            .with_label_values(&["unknown", "refused"])
            .inc();
        return refuse(StatusCode::UNAUTHORIZED, why);
    }
    let payload = match parse(&body) {
        Ok(p) => p,
        Err(why) => return refuse(StatusCode::BAD_REQUEST, &why),
    };
    let Some(click) = Click::of(&payload, s.snooze, now) else {
        // Another kind of interaction, or a button that is not ours: nothing to do.
        return StatusCode::OK.into_response();
    };
    let outbox = s.outbox.clone();
    let action = click.action.clone();
    let applied = tokio::task::spawn_blocking(move || outbox.apply_action(&action)).await;
    let applied = match applied {
        Ok(Ok(applied)) => applied,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "recording a Slack action");
            // Slack shows the user an error; the click can be made again.
            return refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "could not record the action",
            );
        }
        Err(e) => return refuse(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let outcome = match &applied {
        ActionApplied::Done => "done",
        ActionApplied::AlreadyClaimed { .. } => "already_claimed",
        ActionApplied::Repeated => "repeated",
    };
    s.metrics
        .slack_actions
        .with_label_values(&[click.action.kind.as_str(), outcome])
        .inc();
    tracing::info!(action = click.action.kind.as_str(), visitor = %click.action.visitor_id,
        route = %click.action.route, user = %click.action.user_id, outcome, "slack action");
    if applied == ActionApplied::Done && click.action.kind == ActionKind::Claim {
        tokio::spawn(hand_over_owner(s.clone(), click.action.clone()));
    }
    if applied == ActionApplied::Done && click.action.kind == ActionKind::NotAFit {
        // Into the lead store too (routing already sees the outbox's mark).
        let (store, a) = (s.store.clone(), click.action.clone());
        tokio::spawn(async move {
            if let Err(e) = store.disqualify(&a.visitor_id, &a.user_id, a.at_ms).await {
                tracing::warn!(visitor = %a.visitor_id, error = %e, "writing Not a fit to the lead store");
            }
        });
    }
    let Some(reply) = click.reply(&applied) else {
        return StatusCode::OK.into_response();
    };
    // The message is updated through the outbox by the connector that posted it (retried,
    // paced and kept across restarts like any delivery); else, and for what only the clicker
    // sees, through the click's response_url.
    match (s.poster(&click.action), &click.action.message_ts) {
        (Some(connector), Some(ts)) if reply["replace_original"] == true => {
            let delivery = click.update(connector.to_string(), ts, reply);
            s.hand_over(vec![delivery], "a Slack message update").await;
        }
        _ => {
            if let Some(url) = click.response_url.clone() {
                tokio::spawn(respond(s.client.clone(), url, reply));
            }
        }
    }
    StatusCode::OK.into_response()
}

/// Claim: the clicker becomes the lead's owner in every CRM where oie synced a record of it.
/// Their e-mail comes from Slack (`users.info`, through the connector that posts to the
/// channel); one owner assignment per record is handed to the outbox, sent and written back
/// like any CRM delivery.
async fn hand_over_owner(s: SlackActions, a: Action) {
    let connectors = &s.pipeline.connectors;
    let Some(slack) = s.poster(&a) else {
        tracing::info!(visitor = %a.visitor_id, "claimed in a channel no connector posts to with a bot token: no CRM owner set");
        return;
    };
    let email = match connectors[slack].connector.user_email(&a.user_id).await {
        Ok(Some(email)) => email,
        Ok(None) => {
            tracing::warn!(user = %a.user_id, "Slack did not tell the claimer's e-mail (scope users:read.email?): no CRM owner set");
            return;
        }
        Err(e) => {
            tracing::warn!(user = %a.user_id, error = %e, "users.info failed: no CRM owner set");
            return;
        }
    };
    let records = match s.store.clone().crm_records(&a.visitor_id).await {
        Ok(records) => records,
        Err(e) => {
            tracing::warn!(error = %e, "reading the claimed lead's CRM records");
            return;
        }
    };
    let deliveries: Vec<crate::outbox::NewDelivery> = records
        .into_iter()
        .filter(|r| {
            connectors
                .get(&r.connector)
                .is_some_and(|h| h.connector.is_crm())
        })
        .map(
            |crate::store::CrmRecord {
                 connector,
                 id: record,
                 ..
             }| crate::outbox::NewDelivery {
                key: format!("owner:{}:{connector}", a.id),
                route: a.route.clone(),
                visitor_id: a.visitor_id.clone(),
                trigger_kind: "claim".into(),
                payload: Ok(oie_connectors::owner::payload(&email, &record)),
                context: json!({"sentAsIs": true, "owner": {"email": email, "record": record}})
                    .to_string(),
                connector,
                delay_ms: 0,
                group_key: None,
                supersedes: false,
                origin_ms: None,
            },
        )
        .collect();
    if !deliveries.is_empty() {
        s.hand_over(deliveries, "a CRM owner assignment").await;
    }
}

impl SlackActions {
    /// The Slack connector that posts to the click's channel with a bot token, if any.
    fn poster(&self, a: &Action) -> Option<&str> {
        let channel = a.channel.as_deref()?;
        self.pipeline
            .connectors
            .values()
            .find(|h| h.connector.updates_messages_in() == Some(channel))
            .map(|h| h.name.as_str())
    }

    /// Commits deliveries to the outbox and wakes the delivery loops (a failure is logged:
    /// the click itself is recorded either way).
    async fn hand_over(&self, deliveries: Vec<crate::outbox::NewDelivery>, what: &str) {
        let outbox = self.outbox.clone();
        let handed = tokio::task::spawn_blocking(move || {
            let h = crate::outbox::HandOver {
                deliveries,
                ..Default::default()
            };
            outbox.hand_over(&h, crate::clock::now_ms())
        })
        .await
        .map_err(anyhow::Error::from)
        .and_then(|r| r);
        match handed {
            Ok(_) => (self.wake)(),
            Err(e) => tracing::error!(error = %e, "handing over {what}"),
        }
    }
}

/// The `payload` field of Slack's form-encoded post, as JSON.
fn parse(body: &[u8]) -> Result<Value, String> {
    let payload = url::form_urlencoded::parse(body)
        .find(|(k, _)| k == "payload")
        .map(|(_, v)| v.into_owned())
        .ok_or("no `payload` field (Slack posts payload=<JSON>)")?;
    serde_json::from_str(&payload).map_err(|e| format!("`payload` is not JSON: {e}"))
}

/// One click on one of our buttons.
struct Click {
    action: Action,
    response_url: Option<String>,
    /// The message's blocks, to update it.
    blocks: Vec<Value>,
    text: String,
}

impl Click {
    fn of(p: &Value, snooze: Duration, now: i64) -> Option<Click> {
        if p["type"] != "block_actions" {
            return None;
        }
        let a = &p["actions"][0];
        // `visitorId|route`, as the default template writes it (an id has no `|`).
        let (visitor, route) = a["value"].as_str()?.split_once('|')?;
        let visitor = Some(visitor).filter(|v| crate::lead::is_id(v))?;
        let kind = match a["action_id"].as_str()? {
            CLAIM => ActionKind::Claim,
            SNOOZE => ActionKind::Snooze {
                until_ms: now + snooze.as_millis() as i64,
            },
            NOT_A_FIT => ActionKind::NotAFit,
            _ => return None,
        };
        let user = p["user"]["id"].as_str()?;
        let text = |v: &Value| v.as_str().map(str::to_string);
        Some(Click {
            action: Action {
                id: format!("{}:{user}", a["action_ts"].as_str().unwrap_or_default()),
                visitor_id: visitor.to_string(),
                route: route.to_string(),
                kind,
                user_id: user.to_string(),
                user_name: text(&p["user"]["username"]).or(text(&p["user"]["name"])),
                channel: text(&p["container"]["channel_id"]).or(text(&p["channel"]["id"])),
                message_ts: text(&p["container"]["message_ts"]),
                at_ms: now,
            },
            response_url: text(&p["response_url"]),
            blocks: p["message"]["blocks"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
            text: text(&p["message"]["text"]).unwrap_or_default(),
        })
    }

    /// What to post to `response_url`: the message updated in place, or (to the clicker only)
    /// who has the lead already.
    fn reply(&self, applied: &ActionApplied) -> Option<Value> {
        let a = &self.action;
        let when = |ms: i64| crate::routing::trigger_rfc3339(ms)[..16].replace('T', " ") + " UTC";
        let line = match (applied, a.kind) {
            (ActionApplied::Repeated, _) => return None,
            (ActionApplied::AlreadyClaimed { by, at_ms }, _) => {
                return Some(json!({
                    "response_type": "ephemeral",
                    "replace_original": false,
                    "text": format!("Already claimed by <@{by}> at {}.", when(*at_ms)),
                }))
            }
            (_, ActionKind::Claim) => {
                format!("✋ Claimed by <@{}> at {}", a.user_id, when(a.at_ms))
            }
            (_, ActionKind::Snooze { until_ms }) => format!(
                "😴 Snoozed by <@{}>: no alerts for this lead on this route until {}",
                a.user_id,
                when(until_ms)
            ),
            (_, ActionKind::NotAFit) => format!(
                "🚫 Not a fit, said <@{}> at {}: no more alerts for this lead",
                a.user_id,
                when(a.at_ms)
            ),
        };
        // Our buttons leave the message once it is claimed or ruled out (a link to the CRM
        // stays); a snoozed lead can still be claimed. A line says who did what.
        let keep_buttons = matches!(a.kind, ActionKind::Snooze { .. });
        let mut blocks: Vec<Value> = self
            .blocks
            .iter()
            .filter(|b| b["block_id"] != "oie_status")
            .filter_map(|b| {
                if keep_buttons || b["type"] != "actions" {
                    return Some(b.clone());
                }
                let mut b = b.clone();
                let left: Vec<Value> = b["elements"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|e| !is_ours(e))
                    .cloned()
                    .collect();
                b["elements"] = Value::Array(left);
                (!b["elements"].as_array().is_some_and(Vec::is_empty)).then_some(b)
            })
            .collect();
        blocks.push(json!({"type": "context", "block_id": "oie_status",
            "elements": [{"type": "mrkdwn", "text": line}]}));
        Some(json!({"replace_original": true, "text": self.text, "blocks": blocks}))
    }
}

impl Click {
    /// The outbox delivery that updates the clicked message in place with `reply`.
    fn update(&self, connector: String, ts: &str, reply: Value) -> crate::outbox::NewDelivery {
        let a = &self.action;
        let mut payload = json!({"text": reply["text"], "blocks": reply["blocks"]});
        payload[oie_connectors::slack::UPDATE] = json!({"channel": a.channel, "ts": ts});
        crate::outbox::NewDelivery {
            key: format!("slack_update:{}", a.id),
            route: a.route.clone(),
            connector,
            visitor_id: a.visitor_id.clone(),
            trigger_kind: "slack_update".into(),
            payload: Ok(payload.to_string()),
            // No template made it: a replay sends it again as it is.
            context: json!({"sentAsIs": true, "slackUpdate": a.kind.as_str()}).to_string(),
            delay_ms: 0,
            group_key: None,
            supersedes: false,
            origin_ms: None,
        }
    }
}

/// Whether a block element is one of our buttons.
fn is_ours(element: &Value) -> bool {
    element["action_id"]
        .as_str()
        .is_some_and(|id| [CLAIM, SNOOZE, NOT_A_FIT].contains(&id))
}

/// Posts the reply to `response_url`, retrying a failure a few times with backoff.
async fn respond(client: reqwest::Client, url: String, reply: Value) {
    let policy = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(500))
        .with_max_delay(Duration::from_secs(60))
        .with_max_times(6)
        .with_jitter();
    let sent = (|| async {
        let r = client
            .post(&url)
            .json(&reply)
            .timeout(Duration::from_secs(10))
            .send()
            .await?;
        r.error_for_status().map(|_| ())
    })
    .retry(policy)
    .await;
    if let Err(e) = sent {
        tracing::warn!(error = %e, "updating the Slack message of an action failed");
    }
}
