//! Accepted events wait in a bounded in-memory queue and are written to SQLite in batches. When
//! the queue is full, `/track` answers 503 with Retry-After instead of growing without bound.
//! On shutdown the queue is drained: an accepted event is never lost.

use std::sync::Arc;

use tokio::sync::{mpsc, Notify};

use crate::store::{EventRow, SqliteStore};

/// Events per SQLite transaction at most.
const WRITE_BATCH: usize = 2_000;

/// The sending side, held by the HTTP handlers.
#[derive(Clone)]
pub struct Events {
    tx: mpsc::Sender<Vec<EventRow>>,
}

/// Why an event batch was not queued.
#[derive(Debug, PartialEq, Eq)]
pub enum Full {
    Busy,
    Closed,
}

impl Events {
    /// Queues one request's events; never waits.
    pub fn offer(&self, rows: Vec<EventRow>) -> Result<(), Full> {
        self.tx.try_send(rows).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => Full::Busy,
            mpsc::error::TrySendError::Closed(_) => Full::Closed,
        })
    }
}

/// Who hears about written events: `written` after every commit, `urgent` also when a batch held
/// a form submission (scoring runs for those at once).
#[derive(Clone, Default)]
pub struct Written {
    pub written: Arc<Notify>,
    pub urgent: Arc<Notify>,
}

/// A queue holding up to `capacity` requests, and the writer that drains it.
pub fn start(
    store: Arc<SqliteStore>,
    capacity: usize,
    notify: Written,
) -> (Events, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let task = tokio::spawn(run(rx, store, notify));
    (Events { tx }, task)
}

async fn run(mut rx: mpsc::Receiver<Vec<EventRow>>, store: Arc<SqliteStore>, notify: Written) {
    while let Some(first) = rx.recv().await {
        let mut batch = first;
        while batch.len() < WRITE_BATCH {
            match rx.try_recv() {
                Ok(more) => batch.extend(more),
                Err(_) => break,
            }
        }
        let urgent = batch.iter().any(|e| e.event_type == "form_submit");
        write(&store, batch).await;
        notify.written.notify_one();
        if urgent {
            notify.urgent.notify_one();
        }
    }
}

/// Writes a batch, retrying until SQLite takes it: these events were acknowledged already.
async fn write(store: &Arc<SqliteStore>, batch: Vec<EventRow>) {
    let batch = Arc::new(batch);
    let mut wait = std::time::Duration::from_millis(50);
    loop {
        let (s, b) = (store.clone(), batch.clone());
        match tokio::task::spawn_blocking(move || s.insert_events(&b)).await {
            Ok(Ok(_)) => return,
            Ok(Err(e)) => {
                tracing::error!(error = %e, events = batch.len(), "cannot write events; retrying")
            }
            Err(e) => tracing::error!(error = %e, "event writer task failed; retrying"),
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(std::time::Duration::from_secs(5));
    }
}
