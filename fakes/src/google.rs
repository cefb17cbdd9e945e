//! Google's OAuth token endpoint for service accounts (VENDORS.md, Google Cloud): a form POST
//! with `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer` and an RS256 assertion whose
//! `iss` is the service account's e-mail, `aud` this endpoint's URL, `scope` the APIs asked for
//! and `exp` at most an hour after `iat`. The signature is checked with the throwaway test key
//! pair (`keys/`); [`GoogleTokenFake::key_file`] writes a service-account key file that points
//! here.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Form, Json, Router};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use serde_json::json;

use crate::salesforce::{TEST_PRIVATE_KEY, TEST_PUBLIC_KEY};

pub const CLIENT_EMAIL: &str = "oie-test@test-proj.iam.gserviceaccount.com";

#[derive(Deserialize)]
struct Claims {
    iss: String,
    aud: String,
    scope: String,
    exp: u64,
    iat: u64,
}

struct Inner {
    audience: String,
    public_key: DecodingKey,
    /// The `scope` of every token handed out, in order.
    granted: Vec<String>,
    refused: Vec<String>,
}

#[derive(Clone)]
pub struct GoogleTokenFake {
    /// The token URL (`token_uri` of the key file).
    pub token_url: String,
    inner: Arc<Mutex<Inner>>,
}

impl GoogleTokenFake {
    pub async fn start() -> GoogleTokenFake {
        let inner = Arc::new(Mutex::new(Inner {
            audience: String::new(),
            public_key: DecodingKey::from_rsa_pem(TEST_PUBLIC_KEY.as_bytes()).expect("test key"),
            granted: Vec::new(),
            refused: Vec::new(),
        }));
        let app = Router::new()
            .route("/token", post(token))
            .with_state(inner.clone());
        let token_url = format!("{}/token", crate::serve(app).await);
        inner.lock().unwrap().audience = token_url.clone();
        GoogleTokenFake { token_url, inner }
    }

    /// Writes a service-account key file (the test private key) whose `token_uri` is this fake.
    pub fn key_file(&self, path: &Path) {
        let key = json!({
            "type": "service_account",
            "project_id": "test-proj",
            "private_key_id": "test-key-1",
            "private_key": TEST_PRIVATE_KEY,
            "client_email": CLIENT_EMAIL,
            "client_id": "1234567890",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": self.token_url,
        });
        std::fs::write(path, key.to_string()).expect("write the key file");
    }

    /// The scope of each token handed out.
    pub fn granted(&self) -> Vec<String> {
        self.inner.lock().unwrap().granted.clone()
    }

    /// Why each refused request was refused.
    pub fn refused(&self) -> Vec<String> {
        self.inner.lock().unwrap().refused.clone()
    }
}

async fn token(
    State(inner): State<Arc<Mutex<Inner>>>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let mut s = inner.lock().unwrap();
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
    let checked = (|| {
        if field("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
            return Err(("unsupported_grant_type", "Invalid grant_type".to_string()));
        }
        let claims = verified(field("assertion"), &s.public_key).map_err(|e| {
            (
                "invalid_grant",
                format!("Invalid JWT Signature or claims: {e}"),
            )
        })?;
        if claims.aud != s.audience {
            return Err((
                "invalid_grant",
                "Invalid JWT: audience is not the token URL".into(),
            ));
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        if claims.exp <= now {
            return Err((
                "invalid_grant",
                "Invalid JWT: Token must be a short-lived token and in a reasonable timeframe"
                    .into(),
            ));
        }
        if claims.exp > claims.iat + 3600 {
            return Err(("invalid_grant", "Invalid JWT: exp too far after iat".into()));
        }
        if claims.iss != CLIENT_EMAIL {
            return Err((
                "invalid_grant",
                "Invalid JWT: unknown service account".into(),
            ));
        }
        if claims.scope.is_empty() {
            return Err(("invalid_scope", "Empty or missing scope not allowed".into()));
        }
        Ok(claims.scope)
    })();
    match checked {
        Ok(scope) => {
            s.granted.push(scope);
            let access = format!("ya29.fake-{}", s.granted.len());
            Json(json!({"access_token": access, "expires_in": 3599, "token_type": "Bearer"}))
                .into_response()
        }
        Err((error, description)) => {
            s.refused.push(description.clone());
            (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": error, "error_description": description})),
            )
                .into_response()
        }
    }
}

/// The claims of an RS256 assertion whose signature holds. Google takes base64url segments with
/// or without padding (yup-oauth2 pads them), and the signature covers them as sent.
fn verified(assertion: &str, key: &DecodingKey) -> Result<Claims, String> {
    let parts: Vec<&str> = assertion.split('.').collect();
    let [header, payload, signature] = parts[..] else {
        return Err("not a JWT".into());
    };
    let b64 = |text: &str| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text.trim_end_matches('='))
            .map_err(|e| format!("base64: {e}"))
    };
    let header: serde_json::Value =
        serde_json::from_slice(&b64(header)?).map_err(|e| format!("header: {e}"))?;
    if header["alg"] != "RS256" {
        return Err(format!("alg {} is not RS256", header["alg"]));
    }
    let message = &assertion[..assertion.len() - signature.len() - 1];
    let valid = jsonwebtoken::crypto::verify(
        signature.trim_end_matches('='),
        message.as_bytes(),
        key,
        Algorithm::RS256,
    )
    .map_err(|e| e.to_string())?;
    if !valid {
        return Err("InvalidSignature".into());
    }
    serde_json::from_slice(&b64(payload)?).map_err(|e| format!("claims: {e}"))
}
