//! Salesforce access tokens: the JWT bearer flow (an RS256 assertion signed with the app's
//! private key) or the client-credentials flow (through the `oauth2` crate). Salesforce's
//! answer carries no lifetime, so a token is kept until a call is refused with 401.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
    BasicTokenType,
};
use oauth2::{
    ClientId, ClientSecret, EndpointNotSet, EndpointSet, ExtraTokenFields, StandardRevocableToken,
    StandardTokenResponse, TokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};

use super::SalesforceConfig;
use crate::oauth::{self, Token, TokenCache};
use crate::{Failure, Reason, Secret};

/// The assertion's lifetime: Salesforce accepts at most 3 minutes.
const ASSERTION_LIFETIME: Duration = Duration::from_secs(170);

/// What Salesforce adds to a token response.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SalesforceFields {
    pub instance_url: String,
}

impl ExtraTokenFields for SalesforceFields {}

type SfTokenResponse = StandardTokenResponse<SalesforceFields, BasicTokenType>;

type CredentialsClient = oauth2::Client<
    BasicErrorResponse,
    SfTokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

enum Flow {
    Jwt {
        token_url: String,
        client_id: String,
        username: String,
        audience: String,
        key: Box<EncodingKey>,
    },
    ClientCredentials(Box<CredentialsClient>),
}

pub struct Auth {
    flow: Flow,
    cache: TokenCache,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: u64,
}

impl Auth {
    /// `private_key_pem` is the key read from `private_key_file` or `private_key`.
    pub fn from_config(
        config: &SalesforceConfig,
        private_key_pem: Option<&Secret>,
    ) -> Result<Auth, String> {
        let flow = match (
            &config.username,
            private_key_pem,
            &config.client_secret,
            &config.token_url,
        ) {
            (Some(username), Some(pem), None, None) => {
                let key = EncodingKey::from_rsa_pem(pem.expose().as_bytes()).map_err(|e| {
                    format!("the private key is not an RSA key in PEM form ({e})")
                })?;
                let login = config.login_url.trim_end_matches('/');
                reqwest::Url::parse(login)
                    .map_err(|e| format!("login_url is not a valid URL: {e}"))?;
                Flow::Jwt {
                    token_url: format!("{login}/services/oauth2/token"),
                    client_id: config.client_id.clone(),
                    username: username.clone(),
                    audience: config.audience.clone().unwrap_or_else(|| login.to_string()),
                    key: Box::new(key),
                }
            }
            (None, None, Some(secret), Some(url)) => {
                let token_url = TokenUrl::new(url.clone())
                    .map_err(|e| format!("token_url is not a valid URL: {e}"))?;
                let client = oauth2::Client::new(ClientId::new(config.client_id.clone()))
                    .set_client_secret(ClientSecret::new(secret.expose().to_string()))
                    .set_auth_type(oauth2::AuthType::RequestBody)
                    .set_token_uri(token_url);
                Flow::ClientCredentials(Box::new(client))
            }
            (Some(_), None, _, _) => {
                return Err("the JWT bearer flow needs `private_key_file` or `private_key`".into())
            }
            (None, Some(_), _, _) => {
                return Err("the JWT bearer flow needs `username` (the integration user)".into())
            }
            (None, None, Some(_), None) => {
                return Err("the client-credentials flow needs `token_url` (https://MyDomain.my.salesforce.com/services/oauth2/token)".into())
            }
            (None, None, None, Some(_)) => {
                return Err("the client-credentials flow needs `client_secret`".into())
            }
            (None, None, None, None) => {
                return Err("set the JWT bearer keys (username, private_key_file or private_key) or the client-credentials keys (client_secret, token_url)".into())
            }
            _ => {
                return Err("set the keys of one flow only: JWT bearer (username, private key) or client credentials (client_secret, token_url)".into())
            }
        };
        Ok(Auth {
            flow,
            cache: TokenCache::default(),
        })
    }

    /// The cached token, or a new one.
    pub async fn token(
        &self,
        http: &reqwest::Client,
        timeout: Duration,
    ) -> Result<Arc<Token>, Failure> {
        self.cache.get(|| self.mint(http, timeout)).await
    }

    /// After a 401: the next call mints a new token.
    pub async fn rejected(&self, token: &Arc<Token>) {
        self.cache.invalidate(token).await;
    }

    /// Tokens minted so far.
    pub fn mints(&self) -> u64 {
        self.cache.mints()
    }

    async fn mint(&self, http: &reqwest::Client, timeout: Duration) -> Result<Token, Failure> {
        let response = match &self.flow {
            Flow::Jwt {
                token_url,
                client_id,
                username,
                audience,
                key,
            } => jwt_bearer(http, timeout, token_url, client_id, username, audience, key).await?,
            Flow::ClientCredentials(client) => client
                .exchange_client_credentials()
                .request_async(&oauth::Http {
                    client: http,
                    timeout,
                })
                .await
                .map_err(|e| oauth::classify("Salesforce", e))?,
        };
        Ok(Token {
            access: Secret::new(response.access_token().secret().clone()),
            instance_url: Some(
                response
                    .extra_fields()
                    .instance_url
                    .trim_end_matches('/')
                    .to_string(),
            ),
            renew_at: None,
        })
    }
}

/// `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`, which the `oauth2` crate does not
/// offer: the assertion is signed here and the answer parsed as the same token response.
async fn jwt_bearer(
    http: &reqwest::Client,
    timeout: Duration,
    token_url: &str,
    client_id: &str,
    username: &str,
    audience: &str,
    key: &EncodingKey,
) -> Result<SfTokenResponse, Failure> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let claims = Claims {
        iss: client_id,
        sub: username,
        aud: audience,
        exp: (now + ASSERTION_LIFETIME).as_secs(),
    };
    let assertion = jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, key)
        .map_err(|e| Failure::new(Reason::Auth, format!("cannot sign the JWT: {e}")))?;
    let response = http
        .post(token_url)
        .form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", assertion.as_str()),
        ])
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| crate::http::transport_failure(e, timeout))?;
    let status = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    if status == 200 {
        return serde_json::from_str(&body).map_err(|e| {
            Failure::new(
                Reason::ServerError,
                format!("unreadable token response: {e}"),
            )
        });
    }
    let refusal: Option<BasicErrorResponse> = serde_json::from_str(&body).ok();
    Err(match (status, refusal) {
        (400..=499, Some(e)) => Failure::new(Reason::Auth, format!(
            "Salesforce refused the JWT bearer token request: {e}; check client_id, username, the uploaded certificate and that the user is pre-authorized for the app"
        )),
        _ => match crate::classify_status(status, None, &body) {
            crate::Outcome::Failed(f) => f.context("token request"),
            crate::Outcome::Delivered { .. } => {
                Failure::new(Reason::ServerError, format!("token request: HTTP {status}"))
            }
        },
    })
}
