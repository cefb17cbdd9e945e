//! The ingest contract (`contract/ingest.schema.json`), the same one the Worker and the pixel
//! use: a body is accepted only if it validates, and a refusal says why.

use std::borrow::Cow;
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
    let value: Value = serde_json::from_slice(&mend_surrogates(body))
        .map_err(|e| format!("body is not JSON: {e}"))?;
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

/// The body with every `\uXXXX` escape of half a surrogate pair replaced by `\ufffd`. JavaScript
/// strings may hold one (a text cut through an emoji, a page's broken string) and
/// `JSON.stringify` writes it so; JSON parsers in JavaScript, the Worker's included, take it, but
/// Rust strings cannot hold it and serde_json refuses the whole body. Mended, the body reads as
/// the Worker reads it, with U+FFFD where the half pair was. Borrowed when there is none.
fn mend_surrogates(body: &[u8]) -> Cow<'_, [u8]> {
    // The pixel's bodies have no `\uD…` escape at all (JSON.stringify writes characters as they
    // are): one vectorised search, 0.5 µs for 25 KB where parsing takes 90 µs.
    let maybe = memchr::memmem::find_iter(body, b"\\u")
        .any(|i| matches!(body.get(i + 2), Some(b'd' | b'D')));
    if !maybe {
        return Cow::Borrowed(body);
    }
    let surrogate_at = |i: usize| -> Option<u16> {
        let hex = body.get(i..i + 6)?;
        if &hex[..2] != b"\\u" {
            return None;
        }
        let unit = u16::from_str_radix(std::str::from_utf8(&hex[2..]).ok()?, 16).ok()?;
        (0xD800..=0xDFFF).contains(&unit).then_some(unit)
    };
    let mut mended: Option<Vec<u8>> = None;
    let (mut i, mut in_string, mut copied) = (0, false, 0);
    while i < body.len() {
        match (in_string, body[i]) {
            (false, b'"') => in_string = true,
            (true, b'"') => in_string = false,
            (true, b'\\') => {
                let Some(unit) = surrogate_at(i) else {
                    // Any other escape goes whole: `\"` never ends the string, `\\u` never starts one.
                    i += 2;
                    continue;
                };
                let paired =
                    unit < 0xDC00 && surrogate_at(i + 6).is_some_and(|next| next >= 0xDC00);
                if paired {
                    i += 12;
                    continue;
                }
                let out = mended.get_or_insert_with(|| Vec::with_capacity(body.len()));
                out.extend_from_slice(&body[copied..i]);
                out.extend_from_slice(b"\\ufffd");
                i += 6;
                copied = i;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    match mended {
        None => Cow::Borrowed(body),
        Some(mut out) => {
            out.extend_from_slice(&body[copied..]);
            Cow::Owned(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::mend_surrogates;

    /// A JavaScript string (any UTF-16 units) as `JSON.stringify` writes it: half pairs escaped.
    fn stringify(units: &[u16]) -> String {
        let mut out = String::from("\"");
        for c in char::decode_utf16(units.iter().copied()) {
            match c {
                Ok(c) => {
                    let quoted = serde_json::to_string(&c.to_string()).unwrap();
                    out.push_str(&quoted[1..quoted.len() - 1]);
                }
                Err(half) => out.push_str(&format!("\\u{:04x}", half.unpaired_surrogate())),
            }
        }
        out + "\""
    }

    proptest! {
        /// Whatever a JavaScript string holds, the daemon reads what `toWellFormed()` (the
        /// Worker's reading) gives: each half pair as U+FFFD, everything else as it was.
        #[test]
        fn reads_any_javascript_string_as_the_worker_does(
            units in proptest::collection::vec(
                prop_oneof![0xD800u16..0xE000, 0x20u16..0x80, any::<u16>(), Just(b'"' as u16), Just(b'\\' as u16)],
                0..40,
            )
        ) {
            let json = stringify(&units);
            let read: String = serde_json::from_slice(&mend_surrogates(json.as_bytes())).unwrap();
            prop_assert_eq!(read, String::from_utf16_lossy(&units));
        }
    }

    fn mended(body: &str) -> String {
        String::from_utf8(mend_surrogates(body.as_bytes()).into_owned()).unwrap()
    }

    #[test]
    fn half_surrogate_pairs_become_replacement_characters() {
        // What JSON.stringify writes for "x🚀".slice(0, 2) and for the rocket's other half.
        assert_eq!(mended(r#"{"t":"x\ud83d"}"#), r#"{"t":"x\ufffd"}"#);
        assert_eq!(mended(r#"{"t":"\ude80x"}"#), r#"{"t":"\ufffdx"}"#);
        assert_eq!(
            mended(r#"["\uD83D\uD83D\uDE80"]"#),
            r#"["\ufffd\uD83D\uDE80"]"#
        );
        assert_eq!(mended(r#"["\ud83d\u0041"]"#), r#"["\ufffd\u0041"]"#);
        let v: serde_json::Value =
            serde_json::from_slice(&mend_surrogates(br#"{"t":"Go \ud83d"}"#)).unwrap();
        assert_eq!(v["t"], "Go \u{FFFD}");
    }

    #[test]
    fn well_formed_bodies_are_borrowed_untouched() {
        for body in [
            r#"{"t":"🚀 \ud83d\ude80 \u00e9"}"#,
            // A backslash written out, then "ud83d": text, not an escape.
            r#"{"t":"\\ud83d"}"#,
            r#"{"t":"\"\\"}"#,
            // Outside a string nothing is an escape (and the parser refuses it anyway).
            r#"{"a":1} \ud83d"#,
            // Cut short: the parser says so.
            r#"{"t":"\ud8"#,
        ] {
            assert!(
                matches!(
                    mend_surrogates(body.as_bytes()),
                    std::borrow::Cow::Borrowed(_)
                ),
                "{body}"
            );
        }
    }
}
