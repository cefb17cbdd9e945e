//! Console sessions: the admin token, given once on the sign-in form, buys a random session
//! id kept in an HttpOnly, SameSite=Strict cookie (Secure behind HTTPS), and a CSRF token
//! every form carries. Sessions live in memory for 12 hours (a restart signs everyone out).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use axum::http::{header, HeaderMap};
use tokio::time::Instant;

pub const COOKIE: &str = "oie_console";
const LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// More sessions than anyone needs: the oldest go first.
const MOST: usize = 1000;

#[derive(Default)]
pub struct Sessions(Mutex<HashMap<String, (String, Instant)>>);

fn random_token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

impl Sessions {
    /// A new session: its id (for the cookie).
    pub fn open(&self) -> String {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, (_, at)| at.elapsed() < LIFETIME);
        if map.len() >= MOST {
            if let Some(oldest) = map
                .iter()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(k, _)| k.clone())
            {
                map.remove(&oldest);
            }
        }
        let id = random_token();
        map.insert(id.clone(), (random_token(), Instant::now()));
        id
    }

    /// The CSRF token of the request's session, if it has a live one.
    pub fn csrf(&self, headers: &HeaderMap) -> Option<String> {
        let id = cookie(headers)?;
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&id)
            .filter(|(_, at)| at.elapsed() < LIFETIME)
            .map(|(csrf, _)| csrf.clone())
    }

    pub fn close(&self, headers: &HeaderMap) {
        if let Some(id) = cookie(headers) {
            self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
        }
    }
}

/// The session id the request's cookie carries.
fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| {
            c.trim()
                .strip_prefix(&format!("{COOKIE}="))
                .map(str::to_string)
        })
        .filter(|id| !id.is_empty())
}

/// The `Set-Cookie` value for session `id` (empty: sign out); `Secure` when the request came
/// over HTTPS (a proxy's `X-Forwarded-Proto`).
pub fn set_cookie(id: &str, headers: &HeaderMap) -> String {
    let secure = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|p| p.eq_ignore_ascii_case("https"));
    let age = if id.is_empty() { 0 } else { LIFETIME.as_secs() };
    format!(
        "{COOKIE}={id}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={age}{}",
        if secure { "; Secure" } else { "" }
    )
}
