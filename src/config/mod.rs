//! The config model (`config.toml`), `${ENV}` resolution, and validation.
//!
//! Loading never stops at the first mistake: [`load`] returns every problem it can find, each
//! with its file and line, which is what `oie check` prints.

mod kinds;
mod model;
mod problem;
mod server;
mod spanned;
mod validate;
mod warnings;

pub use kinds::{Registered, KINDS};
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

/// [`load`] with `${VAR}` references read from `env` instead of the process environment (tests
/// and benchmarks: changing the environment of a process with threads is not safe).
pub fn load_with_env(
    path: &Path,
    env: &std::collections::HashMap<String, String>,
) -> Result<Loaded, Vec<Problem>> {
    oie_connectors::secret::with_env(env, || load(path))
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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    /// A `${VAR}` comes from the environment given, and a missing one is reported by name.
    #[test]
    fn secrets_come_from_the_environment_given() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(
            &path,
            "[[routes]]\nname = \"r\"\nwhen = 'true'\nto = [\"hook\"]\n\n[connectors.hook]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:9/h\"\nsecret = \"${OIE_UNIT_HOOK_SECRET}\"\n",
        )
        .unwrap();
        let env = HashMap::from([(
            "OIE_UNIT_HOOK_SECRET".to_string(),
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_string(),
        )]);
        assert!(super::load_with_env(&path, &env).is_ok());
        let problems = match super::load_with_env(&path, &HashMap::new()) {
            Ok(_) => panic!("a missing variable is a problem"),
            Err(p) => p,
        };
        let text = format!("{problems:?}");
        assert!(text.contains("OIE_UNIT_HOOK_SECRET is not set"), "{text}");
    }
}
