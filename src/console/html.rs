//! The console's HTML: one layout, escaping, and small pieces shared by its pages. No inline
//! script or style: the Content-Security-Policy allows only this server's files.

use axum::http::{header, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// Every console answer's security headers.
pub const HEADERS: [(HeaderName, &str); 4] = [
    (
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::REFERRER_POLICY, "no-referrer"),
    (header::CACHE_CONTROL, "no-store"),
];

/// Text for HTML content and attribute values.
pub fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// A JSON value as text (null as "–").
pub fn text(v: &Value) -> String {
    match v {
        Value::Null => "–".into(),
        Value::String(s) => esc(s),
        other => esc(&other.to_string()),
    }
}

/// A time (ms) the browser shows in its own time zone (console.js), UTC without script.
pub fn time(ms: &Value) -> String {
    let Some(ms) = ms.as_i64() else {
        return "–".into();
    };
    let iso = crate::routing::trigger_rfc3339(ms);
    format!(
        "<time datetime=\"{iso}\">{} UTC</time>",
        &iso[..16].replace('T', " ")
    )
}

/// A whole page: navigation (when signed in), the title, the body.
pub fn page(status: StatusCode, title: &str, signed_in: Option<&str>, body: &str) -> Response {
    let nav = match signed_in {
        Some(csrf) => format!(
            "<nav><a href=\"/console\">Now</a> <a href=\"/console/deliveries\">Deliveries</a> <a href=\"/console/connectors\">Connectors</a>\
             <form method=\"post\" action=\"/console/signout\" class=\"inline\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"><button>Sign out</button></form></nav>",
            esc(csrf)
        ),
        None => String::new(),
    };
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>{} · oie</title><link rel=\"icon\" href=\"/console/assets/icon.svg\"><link rel=\"stylesheet\" href=\"/console/assets/console.css\">\
         <script src=\"/console/assets/console.js\" defer></script></head>\
         <body><header><strong>oie</strong> {nav}</header><main><h1>{}</h1>{body}</main></body></html>",
        esc(title),
        esc(title)
    );
    (
        status,
        HEADERS,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        html,
    )
        .into_response()
}

/// A hidden CSRF field.
pub fn csrf_field(csrf: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        esc(csrf)
    )
}
