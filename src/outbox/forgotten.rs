//! Visitors erased while this process runs. The outbox deletes their deliveries at once, but a
//! delivery may already be claimed (in memory, about to be sent) or on the wire, and events of
//! theirs may still wait in the ingest queue: the dispatcher, the recorder and the event writer
//! ask this set before they send, write back or store anything of a visitor. A restart needs
//! no set: the rows are gone, and the ingest queue with them.

use std::collections::HashMap;
use std::sync::{Arc, RwLock, RwLockReadGuard};

/// Visitor id → when it was erased (ms), and the gate writebacks hold.
#[derive(Clone, Default)]
pub struct Forgotten {
    set: Arc<RwLock<HashMap<String, i64>>>,
    /// Read-held by each writeback (which awaits the lead store) from its check of the set to
    /// its commit; an erasure takes it to write, so it waits for those in progress.
    writebacks: Arc<tokio::sync::RwLock<()>>,
}

impl Forgotten {
    /// Marks `visitor` erased at `at_ms` (blocking: call it off the runtime). Waits for anyone
    /// holding [`Forgotten::hold`] or [`Forgotten::writeback`]: a write that checked the set
    /// before this call finishes first, and is undone by the erasure that follows.
    pub fn forget(&self, visitor: &str, at_ms: i64) {
        let _writebacks = self.writebacks.blocking_write();
        self.insert(visitor, at_ms);
    }

    /// [`Forgotten::forget`] for async callers.
    pub async fn forget_async(&self, visitor: &str, at_ms: i64) {
        let _writebacks = self.writebacks.write().await;
        self.insert(visitor, at_ms);
    }

    fn insert(&self, visitor: &str, at_ms: i64) {
        let mut set = self.set.write().unwrap_or_else(|p| p.into_inner());
        set.insert(visitor.to_string(), at_ms);
    }

    /// When `visitor` was erased, if it was.
    pub fn since(&self, visitor: &str) -> Option<i64> {
        self.hold().get(visitor).copied()
    }

    /// The set, held: no erasure starts until it is dropped. For a check and the blocking
    /// write it guards, done together.
    pub fn hold(&self) -> RwLockReadGuard<'_, HashMap<String, i64>> {
        // Plain data: a panic elsewhere cannot leave it inconsistent.
        self.set.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Held by a writeback from its check of the set ([`Forgotten::since`]) to its commit: no
    /// erasure starts until it is dropped.
    pub async fn writeback(&self) -> tokio::sync::RwLockReadGuard<'_, ()> {
        self.writebacks.read().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// An erasure waits for a writeback that checked the set before it; one that starts after
    /// the erasure sees the visitor as forgotten.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_erasure_waits_for_the_writeback_in_progress() {
        let forgotten = Forgotten::default();
        let gate = forgotten.writeback().await;
        assert_eq!(forgotten.since("v1"), None);
        let f = forgotten.clone();
        let erasure = tokio::task::spawn_blocking(move || f.forget("v1", 7));
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            !erasure.is_finished(),
            "the erasure went ahead of the writeback"
        );
        assert_eq!(forgotten.since("v1"), None);
        drop(gate);
        erasure.await.unwrap();
        assert_eq!(forgotten.since("v1"), Some(7));
        let gate = forgotten.writeback().await;
        let f = forgotten.clone();
        let cloud = tokio::spawn(async move { f.forget_async("v2", 8).await });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            !cloud.is_finished(),
            "the cloud erasure went ahead of the writeback"
        );
        drop(gate);
        cloud.await.unwrap();
        assert_eq!(forgotten.since("v2"), Some(8));
    }
}
