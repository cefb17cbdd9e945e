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

/// The scope BigQuery calls need.
const SCOPE: &str = "https://www.googleapis.com/auth/bigquery";

/// A service-account key: the JWT → token exchange (yup-oauth2, which caches the token and
/// renews it a minute before it expires), one exchange at a time, so concurrent callers share
/// one token rather than each fetching their own.
#[derive(Clone)]
struct KeyFileToken {
    auth: Arc<gcp_bigquery_client::yup_oauth2::authenticator::DefaultAuthenticator>,
    one_at_a_time: Arc<tokio::sync::Mutex<()>>,
}

#[async_trait]
impl Authenticator for KeyFileToken {
    async fn access_token(&self) -> Result<String, BQError> {
        let _turn = self.one_at_a_time.lock().await;
        let token = self.auth.token(&[SCOPE]).await?;
        token.token().map(str::to_string).ok_or(BQError::NoToken)
    }
}

async fn key_file_token(file: &str) -> anyhow::Result<KeyFileToken> {
    use gcp_bigquery_client::yup_oauth2;
    let key = yup_oauth2::read_service_account_key(file)
        .await
        .context("reading the service-account key")?;
    let auth = yup_oauth2::ServiceAccountAuthenticator::builder(key)
        .build()
        .await
        .context("the service-account key")?;
    Ok(KeyFileToken {
        auth: Arc::new(auth),
        one_at_a_time: Arc::new(tokio::sync::Mutex::new(())),
    })
}

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
        (Some(file), _) => {
            let token = key_file_token(file)
                .await
                .with_context(|| format!("[store] credentials_file {file}"))?;
            builder
                .build_from_authenticator(Arc::new(token))
                .await
                .context("BigQuery client")?
        }
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
