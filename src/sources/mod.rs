//! Sources turn changes into triggers and hand them to the outbox through one [`stage`].

pub mod accounts;
pub mod bigquery;
pub mod leads;
pub mod pubsub;
pub mod stage;

use std::sync::Arc;

use crate::lead::Level;
use crate::outbox::Seen;

use tokio_util::sync::CancellationToken;

/// A lead store's changes, turned into triggers and handed over.
#[async_trait::async_trait]
pub trait Source: Send + Sync {
    /// Hands over everything new since the last poll, calling `handed` with the outbox rows
    /// each commit added; stops between pages once `stop` is cancelled.
    async fn poll(
        self: Arc<Self>,
        stop: CancellationToken,
        handed: Arc<dyn Fn(usize) + Send + Sync>,
    ) -> anyhow::Result<()>;
}

/// What a change of a lead or an account at `level` and `version` is, given what was seen of
/// it before: (a rise to hot or burning — first seen at hot counts —, a change of its row).
pub fn rise_and_change(level: Level, version: i64, previous: Option<Seen>) -> (bool, bool) {
    let rose = previous.is_none_or(|p| level > p.level);
    (
        level.is_hot() && rose,
        previous.is_none_or(|p| version > p.version),
    )
}
