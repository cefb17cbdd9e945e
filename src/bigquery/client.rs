//! A BigQuery client for `[store]`: an emulator endpoint (no credentials), a service-account key
//! file, or Application Default Credentials.

use std::sync::Arc;

use anyhow::Context;
use async_trait::async_trait;
use gcp_bigquery_client::auth::Authenticator;
use gcp_bigquery_client::client_builder::ClientBuilder;
use gcp_bigquery_client::error::BQError;
use gcp_bigquery_client::Client;

use crate::config::StoreConfig;

/// Emulators accept any bearer token.
#[derive(Clone)]
struct EmulatorToken;

#[async_trait]
impl Authenticator for EmulatorToken {
    async fn access_token(&self) -> Result<String, BQError> {
        Ok("emulator".to_string())
    }
}

pub async fn connect(store: &StoreConfig) -> anyhow::Result<Client> {
    let mut builder = ClientBuilder::new();
    if let Some(endpoint) = &store.endpoint {
        builder.with_v2_base_url(format!("{}/bigquery/v2", endpoint.trim_end_matches('/')));
    }
    let client = match (&store.credentials_file, &store.endpoint) {
        (Some(file), _) => builder
            .build_from_service_account_key_file(file)
            .await
            .with_context(|| format!("[store] credentials_file {file}"))?,
        (None, Some(_)) => builder
            .build_from_authenticator(Arc::new(EmulatorToken))
            .await
            .context("BigQuery client")?,
        (None, None) => builder
            .build_from_application_default_credentials()
            .await
            .context("BigQuery client with Application Default Credentials")?,
    };
    Ok(client)
}

/// Whether a BigQuery error says "not found".
pub fn not_found(error: &BQError) -> bool {
    matches!(error, BQError::ResponseError { error } if error.error.code == 404)
}
