//! The Outbound Intent Engine daemon and CLI.
//!
//! # Layout
//! - `config`: the `config.toml` model, `${ENV}` resolution, and validation (`oie check`).
//! - `lead`: a lead profile as routes and templates see it; engagement levels.
//! - `store`: the lead store (`LeadStore`: SQLite or BigQuery) — its source, CRM writeback,
//!   chores; import, events, identities, retention of the embedded one.
//! - `sources`: turn lead changes into `hot_lead` and `sync` triggers; `stage` hands them over.
//! - `routing`: CEL routes, first match wins, repeat suppression (pure).
//! - `scoring`: runs `sql/sqlite/` scoring steps (embedded mode).
//! - `pipeline`: route → render → idempotency key, for sources and `oie routes test`.
//! - `outbox`: the durable queue — hand-over, claim, record, dead letters.
//! - `dispatch`: per-connector loops — batching, rate limit, retries, circuit breaker, recorder.
//! - `ingest`: the ingest API of embedded mode (`/track`, `/health`, `/oie.js`, `/demo`).
//! - `server`: health and metrics endpoints; `metrics`: the Prometheus registry.
//! - `simulate`: synthetic visitor journeys with known scores (`oie simulate`).
//! - `daemon`: `oie run` — the HTTP front (ingest, health, writer, scoring) and the delivery back
//!   (source, dispatch, recorder); start-up and graceful shutdown.
//! - `cli`: one file per subcommand.
//! - `clock`, `sqlite`, `redact`: milliseconds since epoch; shared SQLite settings; keeping
//!   e-mail addresses out of logs.
//!
//! Public are only the modules the binary, the black-box tests and the benchmarks use; the
//! daemon's wiring, the sources, the warehouse client, the servers and the simulator are
//! private to the crate, so the boundaries above are the compiler's to hold.

pub mod account;
pub mod api;
pub mod backup;
mod bigquery;
pub mod cli;
pub mod clock;
pub mod config;
pub mod console;
mod daemon;
pub mod dispatch;
pub mod erasure;
pub mod ingest;
pub mod lead;
pub mod metrics;
pub mod outbox;
pub mod pipeline;
mod redact;
pub mod routing;
pub mod scoring;
mod server;
mod simulate;
pub mod slack;
mod sources;
mod sqlite;
pub mod store;
