//! Visitors erased while this process runs. The outbox deletes their deliveries at once, but a
//! delivery may already be claimed (in memory, about to be sent) or on the wire, and events of
//! theirs may still wait in the ingest queue: the dispatcher, the recorder and the event writer
//! ask this set before they send, write back or store anything of a visitor. A restart needs
//! no set: the rows are gone, and the ingest queue with them.

use std::collections::HashMap;
use std::sync::{Arc, RwLock, RwLockReadGuard};

/// Visitor id → when it was erased (ms).
#[derive(Clone, Default)]
pub struct Forgotten(Arc<RwLock<HashMap<String, i64>>>);

impl Forgotten {
    /// Marks `visitor` erased at `at_ms`. Waits for anyone holding [`Forgotten::hold`]: a write
    /// that checked the set before this call finishes first, and is undone by the erasure that
    /// follows.
    pub fn forget(&self, visitor: &str, at_ms: i64) {
        let mut set = self.0.write().unwrap_or_else(|p| p.into_inner());
        set.insert(visitor.to_string(), at_ms);
    }

    /// When `visitor` was erased, if it was.
    pub fn since(&self, visitor: &str) -> Option<i64> {
        self.hold().get(visitor).copied()
    }

    /// The set, held: no erasure starts until it is dropped. For a check and the write it
    /// guards, done together.
    pub fn hold(&self) -> RwLockReadGuard<'_, HashMap<String, i64>> {
        // Plain data: a panic elsewhere cannot leave it inconsistent.
        self.0.read().unwrap_or_else(|p| p.into_inner())
    }
}
