//! What a connector may remember about a visitor between deliveries — the Slack thread a lead's
//! alerts go to, say. oie keeps it beside the outbox (`visitor_state` in `outbox.db`) and
//! forgets it when the visitor is erased; [`MemoryState`] serves tests and `oie check`.

use std::collections::HashMap;
use std::sync::Mutex;

pub trait VisitorState: Send + Sync {
    /// The value kept under `scope` (a connector's own namespace, e.g. `slack:C0123`) for
    /// `visitor`.
    fn get(&self, scope: &str, visitor: &str) -> Option<String>;
    /// Keeps `value` (the last one wins). A failure to keep it is logged by the implementation:
    /// the delivery it follows has been made either way.
    fn put(&self, scope: &str, visitor: &str, value: &str);
}

/// Kept in memory only (lost on restart).
#[derive(Default)]
pub struct MemoryState(Mutex<HashMap<(String, String), String>>);

impl VisitorState for MemoryState {
    fn get(&self, scope: &str, visitor: &str) -> Option<String> {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&(scope.to_string(), visitor.to_string())).cloned()
    }

    fn put(&self, scope: &str, visitor: &str, value: &str) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.insert((scope.to_string(), visitor.to_string()), value.to_string());
    }
}
