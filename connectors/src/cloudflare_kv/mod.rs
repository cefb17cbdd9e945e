//! `cloudflare_kv`: keeps a Workers KV namespace in step with oie through the Cloudflare REST
//! API — the Worker's `PERSONALIZATION` (what `/personalize` answers) from each lead's `sync`,
//! or its `IDENTITY_STORE` (what `/identify` and `/go` read) from `identity` triggers of
//! `oie identities import`, and a bulk delete on the visitor's `erasure`. Writes and deletes batch to the API's maximum of
//! 10,000 keys a request; the API's limit of 1,200 requests per 5 minutes is the default rate;
//! its error envelope (`success: false`, `errors[]`) is read into the shared outcome table.

mod config;
mod kind;
mod sink;
#[cfg(test)]
mod tests;

pub use config::{CloudflareKvConfig, Holds};
pub use sink::CloudflareKv;
