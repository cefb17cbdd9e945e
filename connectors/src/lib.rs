//! Vendor connectors of the Outbound Intent Engine.
//!
//! A connector turns a rendered payload into a vendor call and answers with a classified
//! [`Outcome`] per item. It knows nothing about routes, storage or sources: the `oie` daemon
//! owns delivery state and asks connectors only to render and to send.
//!
//! # Layout
//! - `connector`: the [`Connector`] trait and the [`Delivery`] it sends.
//! - `kind`: what makes a connector kind ([`Kind`]: name, config, how it is built, digests);
//!   every connector folder implements it in its `kind.rs`.
//! - `reason`: why an attempt failed (a closed set) and what that does; [`Failure`].
//! - `outcome`: [`Outcome`] and the shared HTTP status table.
//! - `secret`: a string that never prints.
//! - `templates`: handlebars templates, strict, with per-destination escaping.
//! - `webhook/`: signed JSON POSTs (Standard Webhooks).
//! - `file/`: JSON lines to a file or stdout.
//! - `slack/`: incoming webhooks and `chat.postMessage`, Block Kit, digests.
//! - `hubspot/`: contacts batch upsert by e-mail, notes, rate-limit window, OAuth refresh.
//! - `salesforce/`: sObject Collections upsert by external id, JWT bearer and client credentials.
//! - `cloudflare_kv/`: Workers KV bulk writes and deletes through the Cloudflare API.
//! - `pubsub/`: routed leads published to a Pub/Sub topic (version-1 hot-lead messages).
//! - `oauth`: token minting through our HTTP client, and a token cache.
//! - `cache`: a map whose entries expire (owner ids, Slack users by e-mail).

mod batch;
pub mod cache;
pub mod cloudflare_kv;
mod connector;
pub mod duration;
pub mod erasure;
pub mod file;
mod http;
pub mod hubspot;
pub mod kind;
pub mod oauth;
mod outcome;
pub mod owner;
pub mod pubsub;
mod reason;
pub mod salesforce;
pub mod secret;
pub mod slack;
pub mod state;
pub mod templates;
pub mod webhook;

pub use connector::{check_record_url, is_account_kind, record_link, Connector, Delivery};
pub use kind::{Build, Kind};
pub use outcome::{classify_status, parse_retry_after, Outcome};
pub use reason::{Effect, Failure, Reason};
pub use secret::Secret;
pub use state::{MemoryState, VisitorState};
pub use templates::{RenderContext, RenderError, TemplateSet};
