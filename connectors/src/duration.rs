//! Durations written as text in config: `"500ms"`, `"30s"`, `"24h"`, `"7d"`.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// Parses a human duration, with an error that shows the expected form.
pub fn parse(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim()).map_err(|e| {
        format!("invalid duration \"{text}\" ({e}); write a number and a unit, like \"500ms\", \"30s\", \"5m\", \"24h\" or \"7d\"")
    })
}

/// `#[serde(deserialize_with = "duration::deserialize")]`.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    parse(&text).map_err(serde::de::Error::custom)
}

/// The same for `Option<Duration>`.
pub fn deserialize_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    deserialize(d).map(Some)
}

#[cfg(test)]
mod tests {
    #[test]
    fn forms() {
        assert_eq!(super::parse("30s").unwrap().as_secs(), 30);
        assert_eq!(super::parse("24h").unwrap().as_secs(), 86_400);
        assert_eq!(super::parse("7d").unwrap().as_secs(), 604_800);
        assert!(super::parse("5x")
            .unwrap_err()
            .contains("invalid duration \"5x\""));
    }
}
