//! Sources turn changes into triggers and hand them to the outbox.

pub mod leads;
pub mod pubsub;
