//! Sources turn changes into triggers and hand them to the outbox through one [`stage`].

pub mod accounts;
pub mod bigquery;
pub mod leads;
pub mod pubsub;
pub mod stage;

use std::sync::Arc;

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
