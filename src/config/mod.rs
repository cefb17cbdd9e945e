//! The config model (`config.toml`), `${ENV}` resolution, and validation.
//!
//! Loading never stops at the first mistake: [`load`] returns every problem it can find, each
//! with its file and line, which is what `oie check` prints.

mod model;
mod problem;
mod server;
mod spanned;
mod validate;
mod warnings;

pub use model::{
    Config, ConnectorDelivery, ConnectorEntry, ConnectorSettings, DeliveryConfig, EngineConfig,
    LeadsSourceConfig, LogFormat, PubSubSourceConfig, RouteConfig, ScoringConfig, ServerConfig,
    SourcesConfig, StoreConfig, StoreKind,
};
pub use problem::Problem;
pub use server::RateLimits;
pub use validate::{ConnectorHandle, Loaded};
pub use warnings::shared_mode;

use std::path::Path;

/// Reads, parses and validates the config at `path`, and builds what `oie run` would build
/// from it (templates, routes, connectors). Returns every problem found.
pub fn load(path: &Path) -> Result<Loaded, Vec<Problem>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![Problem::new(
            path,
            0,
            format!("cannot read the config: {e}"),
        )]
    })?;
    load_str(path, &text)
}

/// [`load`] for config text already in memory; `path` is used in messages and to resolve
/// relative paths.
pub fn load_str(path: &Path, text: &str) -> Result<Loaded, Vec<Problem>> {
    let mut problems = Vec::new();
    let config = spanned::parse(path, text, &mut problems);
    let loaded = config.and_then(|c| validate::validate(path, text, c, &mut problems));
    match loaded {
        Some(loaded) if problems.is_empty() => Ok(loaded),
        _ => {
            problems.sort_by_key(|p| (p.file.clone(), p.line));
            Err(problems)
        }
    }
}
