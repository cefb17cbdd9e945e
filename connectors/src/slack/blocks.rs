//! Block Kit's limits, enforced on every rendered message by truncating with "…".

use serde_json::{json, Value};

const MAX_BLOCKS: usize = 50;
const HEADER_CHARS: usize = 150;
const SECTION_CHARS: usize = 3000;
const MAX_FIELDS: usize = 10;
const FIELD_CHARS: usize = 2000;
const CONTEXT_CHARS: usize = 2000;
/// The notification text; Slack truncates whole messages past 40,000 characters.
const TEXT_CHARS: usize = 3000;

/// How many leads a digest lists before "…and N more" (header + leads + footer ≤ 50 blocks).
pub const DIGEST_SHOWN: usize = 20;

/// Cuts `text` to `max` characters, the last being "…".
fn truncate(text: &mut Value, max: usize) {
    if let Some(s) = text.as_str() {
        if s.chars().count() > max {
            let cut: String = s.chars().take(max - 1).collect();
            *text = Value::String(format!("{cut}…"));
        }
    }
}

/// Makes `message` ({text, blocks}) valid under Block Kit's limits, and makes sure it has a
/// `text` fallback for notifications.
pub fn enforce_limits(message: &mut Value) {
    if let Some(blocks) = message.get_mut("blocks").and_then(Value::as_array_mut) {
        if blocks.len() > MAX_BLOCKS {
            let dropped = blocks.len() - (MAX_BLOCKS - 1);
            blocks.truncate(MAX_BLOCKS - 1);
            blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": format!("…and {dropped} more")}]}));
        }
        blocks.iter_mut().for_each(limit_block);
    }
    let has_text = message
        .get("text")
        .and_then(Value::as_str)
        .is_some_and(|t| !t.trim().is_empty());
    if !has_text {
        let fallback = header_text(message).unwrap_or_else(|| "New hot lead".to_string());
        message["text"] = Value::String(fallback);
    }
    truncate(&mut message["text"], TEXT_CHARS);
}

fn limit_block(block: &mut Value) {
    match block.get("type").and_then(Value::as_str) {
        Some("header") => truncate(&mut block["text"]["text"], HEADER_CHARS),
        Some("section") => {
            if block.get("text").is_some() {
                truncate(&mut block["text"]["text"], SECTION_CHARS);
            }
            if let Some(fields) = block.get_mut("fields").and_then(Value::as_array_mut) {
                fields.truncate(MAX_FIELDS);
                fields
                    .iter_mut()
                    .for_each(|f| truncate(&mut f["text"], FIELD_CHARS));
            }
        }
        Some("context") => {
            if let Some(elements) = block.get_mut("elements").and_then(Value::as_array_mut) {
                elements.iter_mut().for_each(|e| {
                    if e.get("text").is_some() {
                        truncate(&mut e["text"], CONTEXT_CHARS)
                    }
                });
            }
        }
        _ => {}
    }
}

fn header_text(message: &Value) -> Option<String> {
    message["blocks"]
        .as_array()?
        .iter()
        .find(|b| b["type"] == "header")
        .and_then(|b| b["text"]["text"].as_str())
        .map(str::to_string)
}
