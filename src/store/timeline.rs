//! A lead's story for the operator: its sessions of the 90-day window (newest first, at most
//! 50), each with its events (type, time, path, what it carried), and every change of its
//! level (`level_changes`: from, to, the score then, when). The same shape from both stores.

use serde_json::{json, Value};

/// Sessions shown per lead.
pub const SESSIONS: usize = 50;
/// Events shown per lead (the newest).
pub const EVENTS: usize = 500;
/// The window looked back over.
pub const WINDOW_MS: i64 = 7_776_000_000;

/// `{"sessions": [{…, "events": [...]}], "levels": [...]}` from rows: sessions newest first,
/// events in time order within their session, level changes oldest first.
pub fn assemble(mut sessions: Vec<Value>, events: Vec<Value>, levels: Vec<Value>) -> Value {
    for e in events {
        let id = e["sessionId"].clone();
        if let Some(s) = sessions.iter_mut().find(|s| s["sessionId"] == id) {
            if let Some(list) = s["events"].as_array_mut() {
                list.push(e);
            }
        }
    }
    for s in &mut sessions {
        if let Some(list) = s["events"].as_array_mut() {
            list.sort_by_key(|e| e["at"].as_i64().unwrap_or(0));
        }
    }
    json!({ "sessions": sessions, "levels": levels })
}
