//! HubSpot credentials: a static bearer token, or an OAuth app's refresh token exchanged for
//! 30-minute access tokens (renewed a minute before they expire).

use std::sync::Arc;
use std::time::{Duration, Instant};

use oauth2::basic::BasicClient;
use oauth2::{ClientId, ClientSecret, EndpointNotSet, EndpointSet, RefreshToken, TokenResponse};

use super::HubSpotConfig;
use crate::oauth::{self, Token, TokenCache, RENEW_BEFORE};
use crate::{Failure, Secret};

type OAuthClient =
    BasicClient<EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

pub enum Auth {
    Static(Arc<Token>),
    Refresh {
        client: Box<OAuthClient>,
        refresh_token: Secret,
        cache: TokenCache,
    },
}

impl Auth {
    pub fn from_config(config: &HubSpotConfig) -> Result<Auth, String> {
        let oauth = (
            &config.client_id,
            &config.client_secret,
            &config.refresh_token,
        );
        match (&config.token, oauth) {
            (Some(token), (None, None, None)) => Ok(Auth::Static(Arc::new(Token {
                access: token.clone(),
                instance_url: None,
                renew_at: None,
            }))),
            (None, (Some(id), Some(secret), Some(refresh))) => {
                let url = format!(
                    "{}{}",
                    config.base_url.trim_end_matches('/'),
                    config.token_path
                );
                let token_url = oauth2::TokenUrl::new(url)
                    .map_err(|e| format!("base_url/token_path is not a valid URL: {e}"))?;
                let client = BasicClient::new(ClientId::new(id.clone()))
                    .set_client_secret(ClientSecret::new(secret.expose().to_string()))
                    .set_auth_type(oauth2::AuthType::RequestBody)
                    .set_token_uri(token_url);
                Ok(Auth::Refresh {
                    client: Box::new(client),
                    refresh_token: refresh.clone(),
                    cache: TokenCache::default(),
                })
            }
            (Some(_), _) => Err(
                "set either `token` or the OAuth keys (client_id, client_secret, refresh_token), not both"
                    .into(),
            ),
            (None, _) => Err(
                "set `token` (a private-app token or Service Key), or all of client_id, client_secret and refresh_token"
                    .into(),
            ),
        }
    }

    /// The bearer token to send now.
    pub async fn token(
        &self,
        http: &reqwest::Client,
        timeout: Duration,
    ) -> Result<Arc<Token>, Failure> {
        match self {
            Auth::Static(token) => Ok(token.clone()),
            Auth::Refresh {
                client,
                refresh_token,
                cache,
            } => {
                cache
                    .get(|| async {
                        let send = oauth::Http {
                            client: http,
                            timeout,
                        };
                        let response = client
                            .exchange_refresh_token(&RefreshToken::new(
                                refresh_token.expose().to_string(),
                            ))
                            .request_async(&send)
                            .await
                            .map_err(|e| oauth::classify("HubSpot", e))?;
                        let lives = response.expires_in().unwrap_or(Duration::from_secs(1800));
                        Ok(Token {
                            access: Secret::new(response.access_token().secret().clone()),
                            instance_url: None,
                            renew_at: Some(Instant::now() + lives.saturating_sub(RENEW_BEFORE)),
                        })
                    })
                    .await
            }
        }
    }

    /// After a 401: forget a refreshed token so the next call mints another. A static token
    /// cannot be renewed, so the 401 is final.
    pub async fn rejected(&self, token: &Arc<Token>) -> bool {
        match self {
            Auth::Static(_) => false,
            Auth::Refresh { cache, .. } => {
                cache.invalidate(token).await;
                true
            }
        }
    }

    pub fn mints(&self) -> u64 {
        match self {
            Auth::Static(_) => 0,
            Auth::Refresh { cache, .. } => cache.mints(),
        }
    }
}
