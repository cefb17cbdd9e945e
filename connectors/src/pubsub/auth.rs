//! Pub/Sub credentials, shared by the `pubsub` connector and `oie`'s Pub/Sub source: a
//! service-account key file, none for an emulator, or Application Default Credentials.

use google_cloud_auth::credentials::{anonymous, service_account, Credentials};
use serde_json::Value;

/// Reads a service-account key file.
pub fn read_key(file: &str) -> Result<Value, String> {
    let text =
        std::fs::read_to_string(file).map_err(|e| format!("credentials_file {file}: {e}"))?;
    serde_json::from_str(&text)
        .map_err(|e| format!("credentials_file {file} is not a service-account key: {e}"))
}

/// The credentials to build a client with; `None` means Application Default Credentials.
/// With an `endpoint` (an emulator) and no key, requests carry no credentials.
pub fn credentials(
    key: Option<&Value>,
    endpoint: Option<&str>,
) -> Result<Option<Credentials>, String> {
    match (key, endpoint) {
        (Some(key), _) => service_account::Builder::new(key.clone())
            .build()
            .map(Some)
            .map_err(|e| format!("service-account key: {e}")),
        (None, Some(_)) => Ok(Some(anonymous::Builder::new().build())),
        (None, None) => Ok(None),
    }
}
