//! Sources turn changes into triggers and hand them to the outbox.

pub mod bigquery;
pub mod leads;
pub mod pubsub;
