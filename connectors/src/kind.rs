//! What makes a connector kind: its name in `config.toml`, its config type, how it is built
//! from what every connector shares, and what it can do. Each connector folder implements
//! [`Kind`] in its `kind.rs`; oie's registry (`src/config/kinds.rs`) lists them, one line each,
//! and `oie check`, `oie connectors check`, the config loader and the docs test read that list.

use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::{Connector, TemplateSet};

/// What a connector is built with. (The HTTP client is shared too: every connector that calls
/// a vendor API gets the process's one client, with one connection pool, from
/// `http::api_client`.)
pub struct Build<'a> {
    /// The connector's name (`[connectors.NAME]`): how oie's records of what it synced name it.
    pub name: &'a str,
    /// The folder of `config.toml`: relative paths in it are relative to this.
    pub base: &'a Path,
    /// The default and custom templates.
    pub templates: Arc<TemplateSet>,
    /// Key files named by connectors, for `oie check`'s permission warnings.
    pub key_files: &'a mut Vec<PathBuf>,
    /// What connectors remember per visitor between deliveries (erased with the visitor).
    pub state: Arc<dyn crate::VisitorState>,
}

impl Build<'_> {
    /// A path from the config, relative to its folder (an absolute one stays as it is).
    pub fn path(&self, path: &str) -> PathBuf {
        self.base.join(path)
    }

    /// A key file the connector reads itself later: see [`resolve_key_file`].
    pub fn key_file(&mut self, key: &str, file: &mut Option<String>) -> Result<(), String> {
        resolve_key_file(self.base, key, file, self.key_files)
    }

    /// A key file read now (a PEM key, say), noted for the permission warnings.
    pub fn read_key_file(&mut self, key: &str, file: &str) -> Result<String, String> {
        let full = self.path(file);
        self.key_files.push(full.clone());
        std::fs::read_to_string(&full).map_err(|e| format!("{key} {}: {e}", full.display()))
    }
}

/// A connector kind.
pub trait Kind: 'static {
    /// `kind = "..."` in `config.toml`.
    const NAME: &'static str;
    /// Whether it sends digests (one message for several deliveries), which routes with
    /// `group_wait` need.
    const DIGESTS: bool = false;
    /// The least config it accepts, as TOML; `${VAR}` references name the variables it reads
    /// (the docs test and the registry's tests build each kind from it).
    const EXAMPLE: &'static str;
    /// Its keys in `[connectors.NAME]`, beside `kind` and the delivery keys every connector
    /// takes.
    type Config: DeserializeOwned + Debug + Send + 'static;

    /// Builds the connector, checking what can be checked without the network.
    fn build(config: Self::Config, with: &mut Build) -> Result<Arc<dyn Connector>, String>;
}

/// An optional key file named by `key` (`credentials_file`, say), resolved in place against
/// `base`, the config's folder, noted in `key_files` for the permission warnings, and checked
/// to exist. Connectors and oie's own sections (`[store]`, `[sources.pubsub]`) share it.
pub fn resolve_key_file(
    base: &Path,
    key: &str,
    file: &mut Option<String>,
    key_files: &mut Vec<PathBuf>,
) -> Result<(), String> {
    let Some(name) = file.as_deref() else {
        return Ok(());
    };
    let full = base.join(name);
    *file = Some(full.to_string_lossy().into_owned());
    key_files.push(full.clone());
    if full.is_file() {
        Ok(())
    } else {
        Err(format!("{key} {} does not exist", full.display()))
    }
}
