//! Accepted events and `/go` clicks wait in a bounded in-memory queue and are written to SQLite
//! in batches, by one writer: lookups read on their own connection, so nothing else holds the
//! writer's. The queue is bounded in requests and in bytes; when it is full, `/track` answers
//! 503 with Retry-After instead of growing without bound. On shutdown the queue is drained: an
//! accepted event is never lost.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::{mpsc, Notify};

use crate::outbox::Forgotten;
use crate::store::{ClickRow, EventRow, SqliteStore};

/// Events per SQLite transaction at most.
const WRITE_BATCH: usize = 2_000;

/// What waits to be written.
enum Item {
    Events(Vec<EventRow>),
    Click(ClickRow),
}

/// The sending side, held by the HTTP handlers. The writer holds none: the queue closes when
/// the last handler is gone, and the writer drains it and ends.
#[derive(Clone)]
pub struct Events {
    tx: mpsc::Sender<(Item, usize)>,
    depth: Depth,
    max_bytes: usize,
}

/// What waits in the queue, shared by the handlers and the writer.
#[derive(Clone)]
struct Depth {
    bytes: Arc<AtomicUsize>,
    /// `oie_ingest_queue_requests` and `_bytes`.
    gauges: Option<(prometheus::IntGauge, prometheus::IntGauge)>,
}

impl Depth {
    fn export(&self, requests: usize) {
        if let Some((r, b)) = &self.gauges {
            r.set(requests as i64);
            b.set(self.bytes.load(Ordering::Relaxed) as i64);
        }
    }
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
        let size = rows.iter().map(EventRow::size).sum();
        self.queue(Item::Events(rows), size)
    }

    /// Queues a click; never waits.
    pub fn click(&self, click: ClickRow) -> Result<(), Full> {
        let size = std::mem::size_of::<ClickRow>() + click.target.len();
        self.queue(Item::Click(click), size)
    }

    /// Bytes waiting to be written.
    pub fn queued_bytes(&self) -> usize {
        self.depth.bytes.load(Ordering::Relaxed)
    }

    fn queue(&self, item: Item, size: usize) -> Result<(), Full> {
        let bytes = &self.depth.bytes;
        let before = bytes.fetch_add(size, Ordering::Relaxed);
        if before + size > self.max_bytes && before > 0 {
            bytes.fetch_sub(size, Ordering::Relaxed);
            return Err(Full::Busy);
        }
        self.tx.try_send((item, size)).map_err(|e| {
            bytes.fetch_sub(size, Ordering::Relaxed);
            match e {
                mpsc::error::TrySendError::Full(_) => Full::Busy,
                mpsc::error::TrySendError::Closed(_) => Full::Closed,
            }
        })?;
        self.depth
            .export(self.tx.max_capacity() - self.tx.capacity());
        Ok(())
    }
}

/// Who hears about written events: `written` after every commit, `urgent` also when a batch held
/// a form submission (scoring runs for those at once).
#[derive(Clone, Default)]
pub struct Written {
    pub written: Arc<Notify>,
    pub urgent: Arc<Notify>,
}

/// A queue holding up to `capacity` requests and `max_bytes` bytes, and the writer that drains
/// it.
pub fn start(
    store: Arc<SqliteStore>,
    forgotten: Forgotten,
    capacity: usize,
    max_bytes: usize,
    notify: Written,
    metrics: &crate::metrics::Metrics,
) -> (Events, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let depth = Depth {
        bytes: Arc::new(AtomicUsize::new(0)),
        gauges: Some((
            metrics.ingest_queue_requests.clone(),
            metrics.ingest_queue_bytes.clone(),
        )),
    };
    let events = Events {
        tx,
        depth: depth.clone(),
        max_bytes,
    };
    let task = tokio::spawn(run(rx, store, forgotten, depth, notify));
    (events, task)
}

async fn run(
    mut rx: mpsc::Receiver<(Item, usize)>,
    store: Arc<SqliteStore>,
    forgotten: Forgotten,
    depth: Depth,
    notify: Written,
) {
    while let Some(first) = rx.recv().await {
        let (mut events, mut clicks, mut size) = (Vec::new(), Vec::new(), 0);
        let mut next = Some(first);
        while let Some((item, n)) = next.take() {
            size += n;
            match item {
                Item::Events(rows) => events.extend(rows),
                Item::Click(click) => clicks.push(click),
            }
            if events.len() < WRITE_BATCH {
                next = rx.try_recv().ok();
            }
        }
        let urgent = events.iter().any(|e| e.event_type == "form_submit");
        write(&store, &forgotten, events, clicks).await;
        depth.bytes.fetch_sub(size, Ordering::Relaxed);
        depth.export(rx.len());
        notify.written.notify_one();
        if urgent {
            notify.urgent.notify_one();
        }
    }
}

/// Writes a batch, retrying until SQLite takes it: these events were acknowledged already.
async fn write(
    store: &Arc<SqliteStore>,
    forgotten: &Forgotten,
    events: Vec<EventRow>,
    clicks: Vec<ClickRow>,
) {
    let batch = Arc::new((events, clicks));
    let mut wait = std::time::Duration::from_millis(50);
    loop {
        let (s, b, f) = (store.clone(), batch.clone(), forgotten.clone());
        match tokio::task::spawn_blocking(move || s.insert_batch(&b.0, &b.1, &f)).await {
            Ok(Ok(_)) => return,
            Ok(Err(e)) => {
                tracing::error!(error = %e, events = batch.0.len(), "cannot write events; retrying")
            }
            Err(e) => tracing::error!(error = %e, "event writer task failed; retrying"),
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(std::time::Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(n: usize, agent: usize) -> EventRow {
        EventRow::from_json(
            serde_json::json!({"eventId": format!("e{n}"), "type": "pageview", "sessionId": "s"}),
            0,
            None,
            Some("a".repeat(agent)),
        )
    }

    fn depth() -> Depth {
        Depth {
            bytes: Arc::new(AtomicUsize::new(0)),
            gauges: None,
        }
    }

    /// Shutdown waits for the writer, which ends once the handlers are gone: it must hold no
    /// sender of its own queue, and must write what was queued first.
    #[tokio::test]
    async fn the_writer_drains_and_ends_when_the_handlers_are_gone() {
        let (_dir, store) = crate::store::tests::store();
        let store = Arc::new(store);
        let metrics = crate::metrics::Metrics::new();
        let (events, writer) = start(
            store.clone(),
            Forgotten::default(),
            100,
            1 << 20,
            Written::default(),
            &metrics,
        );
        for n in 0..5 {
            events.offer(vec![row(n, 10)]).unwrap();
        }
        drop(events);
        tokio::time::timeout(std::time::Duration::from_secs(10), writer)
            .await
            .expect("the writer ends once no handler can send")
            .unwrap();
        assert_eq!(metrics.ingest_queue_requests.get(), 0);
        assert_eq!(metrics.ingest_queue_bytes.get(), 0);
        let again: Vec<EventRow> = (0..5).map(|n| row(n, 10)).collect();
        assert_eq!(
            store.insert_events(&again).unwrap(),
            0,
            "all five were written"
        );
    }

    /// The queue refuses once the bytes waiting pass the bound, whatever the request count, and
    /// takes again once the writer has drained them.
    #[tokio::test]
    async fn the_queue_is_bounded_in_bytes() {
        let (tx, mut rx) = mpsc::channel(1_000);
        let events = Events {
            tx,
            depth: depth(),
            max_bytes: 100_000,
        };
        let mut taken = 0;
        while events.offer(vec![row(taken, 10_000)]).is_ok() {
            taken += 1;
        }
        assert!((8..=10).contains(&taken), "{taken} requests of ~10 KB");
        assert!(events.queued_bytes() <= 100_000);
        assert_eq!(events.offer(vec![row(99, 10_000)]), Err(Full::Busy));
        // The writer takes one request off the queue and gives its bytes back.
        let (_, size) = rx.recv().await.unwrap();
        events.depth.bytes.fetch_sub(size, Ordering::Relaxed);
        assert!(events.offer(vec![row(100, 10_000)]).is_ok());
    }

    /// One request larger than the bound still goes through an empty queue.
    #[tokio::test]
    async fn one_large_request_is_not_refused_by_an_empty_queue() {
        let (tx, _rx) = mpsc::channel(10);
        let events = Events {
            tx,
            depth: depth(),
            max_bytes: 1_000,
        };
        assert!(events.offer(vec![row(0, 5_000)]).is_ok());
        assert_eq!(events.offer(vec![row(1, 10)]), Err(Full::Busy));
    }
}
