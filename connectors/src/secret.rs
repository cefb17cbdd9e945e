//! Secrets and `${ENV_VAR}` references.
//!
//! Config never holds a secret literally: it names an environment variable, resolved when the
//! config is loaded, so `oie check` can report a missing one with its line.

use std::fmt;

use serde::{Deserialize, Deserializer};

/// A secret value (token, signing key, a URL with a token in it). `Debug` and `Display`
/// never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A value that may contain `${VAR}` references (a URL, a header): expanded on load.
impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        expand_env(&raw)
            .map(Secret)
            .map_err(serde::de::Error::custom)
    }
}

/// For fields that must never be written literally (tokens, signing keys): the whole value
/// has to be one `${VAR}` reference.
pub fn env_only<'de, D: Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
    let raw = String::deserialize(d)?;
    if !is_single_reference(&raw) {
        return Err(serde::de::Error::custom(
            "secrets must be an environment variable reference like \"${MY_SECRET}\", not a literal value",
        ));
    }
    expand_env(&raw)
        .map(Secret)
        .map_err(serde::de::Error::custom)
}

/// Like [`env_only`], for optional fields.
pub fn env_only_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Secret>, D::Error> {
    env_only(d).map(Some)
}

fn is_single_reference(raw: &str) -> bool {
    raw.starts_with("${") && raw.ends_with('}') && raw[2..raw.len() - 1].chars().all(is_var_char)
}

fn is_var_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

thread_local! {
    /// Variables to read instead of the process environment while [`with_env`] runs.
    static OVERRIDE: std::cell::RefCell<Option<std::collections::HashMap<String, String>>> =
        const { std::cell::RefCell::new(None) };
}

/// Runs `f` (a config load on this thread) with `${VAR}` references read from `vars` instead of
/// the process environment: tests load configs this way, without changing the environment other
/// threads read.
pub fn with_env<T>(vars: &std::collections::HashMap<String, String>, f: impl FnOnce() -> T) -> T {
    let before = OVERRIDE.with(|o| o.replace(Some(vars.clone())));
    let out = f();
    OVERRIDE.with(|o| *o.borrow_mut() = before);
    out
}

fn var(name: &str) -> Option<String> {
    OVERRIDE
        .with(|o| o.borrow().as_ref().map(|vars| vars.get(name).cloned()))
        .unwrap_or_else(|| std::env::var(name).ok())
}

/// Replaces every `${VAR}` with the variable's value; a missing or empty variable is an error
/// that names it (never its value).
pub fn expand_env(raw: &str) -> Result<String, String> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unclosed `${{` in \"{}\"", redact(raw)))?;
        let name = &after[..end];
        if name.is_empty() || !name.chars().all(is_var_char) {
            return Err(format!(
                "`${{{name}}}` is not a valid environment variable name"
            ));
        }
        match var(name) {
            Some(value) if !value.is_empty() => out.push_str(&value),
            _ => return Err(format!("environment variable {name} is not set")),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Shows the shape of a raw config value without any part that could be secret.
fn redact(raw: &str) -> String {
    raw.chars().take(8).collect::<String>() + "…"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints() {
        let s = Secret::new("xoxb-123");
        assert_eq!(format!("{s:?} {s}"), "Secret(***) ***");
    }

    fn vars(pairs: &[(&str, &str)]) -> std::collections::HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn expands_references() {
        let env = vars(&[("OIE_TEST_EXPAND", "abc")]);
        let expanded = with_env(&env, || expand_env("x/${OIE_TEST_EXPAND}/y"));
        assert_eq!(expanded.unwrap(), "x/abc/y");
        assert!(
            expand_env("${OIE_TEST_EXPAND}").is_err(),
            "only inside with_env"
        );
        assert_eq!(expand_env("plain").unwrap(), "plain");
        let err = expand_env("${OIE_TEST_NOT_SET_ANYWHERE}").unwrap_err();
        assert_eq!(
            err,
            "environment variable OIE_TEST_NOT_SET_ANYWHERE is not set"
        );
        assert!(expand_env("${bad name}").is_err());
        assert!(expand_env("${OPEN").is_err());
    }

    #[test]
    fn literal_secrets_are_refused() {
        #[derive(Deserialize, Debug)]
        struct C {
            #[serde(deserialize_with = "env_only")]
            #[allow(dead_code)]
            token: Secret,
        }
        let err = serde_json::from_str::<C>(r#"{"token":"xoxb-literal"}"#).unwrap_err();
        assert!(err.to_string().contains("environment variable reference"));
        assert!(!err.to_string().contains("xoxb-literal"));
        let env = vars(&[("OIE_TEST_TOKEN", "t")]);
        let c: C = with_env(&env, || {
            serde_json::from_str(r#"{"token":"${OIE_TEST_TOKEN}"}"#)
        })
        .unwrap();
        assert_eq!(c.token.expose(), "t");
    }
}
