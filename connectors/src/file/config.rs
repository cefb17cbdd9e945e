use serde::Deserialize;

/// `[connectors.NAME] kind = "file"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// File to append JSON lines to (folders are created), or `-` for stdout.
    pub path: String,
    /// Template for each line's `payload`; default `webhook/default`.
    #[serde(default = "default_template")]
    pub template: String,
}

fn default_template() -> String {
    "webhook/default".to_string()
}
