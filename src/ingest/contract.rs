//! The ingest contract (`contract/ingest.schema.json`), the same one the Worker and the pixel
//! use: a body is accepted only if it validates, and a refusal says why.

use std::sync::OnceLock;

use serde_json::Value;

/// Bodies larger than this are refused before parsing (413).
pub const MAX_BODY: usize = 64 * 1024;

const SCHEMA: &str = include_str!("../../contract/ingest.schema.json");

fn validator() -> &'static jsonschema::Validator {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        // The schema ships in the binary and is checked by tests, so it always compiles.
        let schema: Value = serde_json::from_str(SCHEMA).expect("contract schema is JSON");
        jsonschema::validator_for(&schema).expect("contract schema compiles")
    })
}

/// Parses and validates a `/track` body; the error is a reason a pixel developer can act on.
pub fn parse(body: &[u8]) -> Result<Vec<Value>, String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("body is not JSON: {e}"))?;
    let reasons: Vec<String> = validator()
        .iter_errors(&value)
        .take(5)
        .map(|e| {
            let at = e.instance_path().to_string();
            format!("{}: {e}", if at.is_empty() { "/" } else { &at })
        })
        .collect();
    if !reasons.is_empty() {
        return Err(format!(
            "body does not match the ingest contract: {}",
            reasons.join("; ")
        ));
    }
    Ok(value["events"].as_array().cloned().unwrap_or_default())
}
