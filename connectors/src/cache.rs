//! A small map whose entries expire: who a CRM owner id is, which Slack user has an e-mail.
//! Read through tokio's clock, so paused time in tests ages it like the rest of the daemon.
//! (Cache crates keep their own clock, which paused time cannot move.)

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Above this many entries, a `put` first drops the expired ones.
const SWEEP_FROM: usize = 4096;

pub struct TtlCache<V> {
    ttl: Duration,
    entries: Mutex<HashMap<String, (V, Instant)>>,
}

impl<V: Clone> TtlCache<V> {
    pub fn new(ttl: Duration) -> Self {
        TtlCache {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The value kept under `key`, unless it is older than the TTL.
    pub fn get(&self, key: &str) -> Option<V> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(key)
            .filter(|(_, at)| at.elapsed() < self.ttl)
            .map(|(v, _)| v.clone())
    }

    pub fn put(&self, key: &str, value: V) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= SWEEP_FROM {
            let ttl = self.ttl;
            entries.retain(|_, (_, at)| at.elapsed() < ttl);
        }
        entries.insert(key.to_string(), (value, Instant::now()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn entries_expire_after_the_ttl() {
        let cache = TtlCache::new(Duration::from_secs(60));
        cache.put("a", Some("U1".to_string()));
        cache.put("b", None::<String>);
        tokio::time::advance(Duration::from_secs(59)).await;
        assert_eq!(cache.get("a"), Some(Some("U1".to_string())));
        assert_eq!(cache.get("b"), Some(None), "a known absence is kept too");
        assert_eq!(cache.get("c"), None);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(cache.get("a"), None);
        cache.put("a", Some("U2".to_string()));
        assert_eq!(cache.get("a"), Some(Some("U2".to_string())));
    }

    #[tokio::test(start_paused = true)]
    async fn expired_entries_are_swept_when_it_grows() {
        let cache = TtlCache::new(Duration::from_secs(1));
        for i in 0..SWEEP_FROM {
            cache.put(&i.to_string(), i);
        }
        tokio::time::advance(Duration::from_secs(2)).await;
        cache.put("new", 0);
        assert_eq!(cache.entries.lock().unwrap().len(), 1);
    }
}
