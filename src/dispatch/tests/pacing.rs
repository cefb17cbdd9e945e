//! Writeback, rate limit, concurrency and the send deadline.

use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;
use std::time::Duration;

use oie_connectors::{Outcome, Reason};

use super::*;

const FAST_RETRIES: &str = "backoff_base = \"5ms\"\nbackoff_max = \"10ms\"";

#[tokio::test(start_paused = true)]
async fn crm_outcomes_are_written_back_per_lead() {
    let crm = Arc::new(
        Scripted::new(|ask| match ask.delivery.visitor_id.as_str() {
            v if v.starts_with("bad") => failed(Reason::InvalidItem),
            v if v.starts_with("flaky") && ask.nth == 0 => failed(Reason::ServerError),
            v => Outcome::Delivered {
                record_id: Some(format!("crm-{v}")),
            },
        })
        .crm(3),
    );
    let h = Harness::start(crm.clone(), "", FAST_RETRIES).await;
    let names = ["good-1", "good-2", "bad-1", "flaky-1", "good-3"].map(String::from);
    h.queue_visitors(&names);
    assert_eq!(
        h.queue(names.iter().map(|v| delivery(v)).collect()),
        0,
        "same keys: no-op"
    );
    h.until(Duration::from_secs(5), |h| {
        h.count("queued") + h.count("inflight") == 0
    })
    .await;
    let done = h.stop().await;
    for v in ["good-1", "good-2", "good-3", "flaky-1"] {
        let s = done.store.sync_state(v, "crm").unwrap().unwrap();
        assert!(s.synced, "{v}");
        assert_eq!(s.crm_contact_id, Some(format!("crm-{v}")));
        assert!(s.last_synced_at.is_some());
        assert_eq!(s.last_error, None);
    }
    let bad = done.store.sync_state("bad-1", "crm").unwrap().unwrap();
    assert!(!bad.synced, "a failure never marks a lead as synced");
    assert_eq!(bad.crm_contact_id, None);
    assert_eq!(bad.last_error.as_deref(), Some("scripted invalid_item"));
    let letters = done.outbox.dead_letters().unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].reason.as_deref(), Some("invalid_item"));
    let sizes: Vec<usize> = crm.calls().iter().map(|c| c.visitors.len()).collect();
    assert_eq!(
        sizes.iter().sum::<usize>(),
        6,
        "five deliveries and one retry: {sizes:?}"
    );
    assert!(
        sizes.iter().all(|n| *n <= 3),
        "batches respect max_batch: {sizes:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn the_rate_limit_spaces_requests_exactly() {
    let probe = Arc::new(Scripted::new(|_| delivered()));
    let h = Harness::start(probe.clone(), "rate_limit = 10", "").await;
    h.queue_visitors(&visitors(30));
    h.until(Duration::from_secs(10), |h| h.count("delivered") == 30)
        .await;
    let expected: Vec<i64> = (0..30).map(|i| i * 100).collect();
    assert_eq!(probe.call_times(), expected, "one every 100 ms, no burst");
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn concurrency_is_capped() {
    let probe = Arc::new(Scripted::new(|_| delivered()).taking(Duration::from_millis(50)));
    let h = Harness::start(probe.clone(), "concurrency = 3", "").await;
    h.queue_visitors(&visitors(30));
    let took = h
        .until(Duration::from_secs(10), |h| h.count("delivered") == 30)
        .await;
    assert_eq!(probe.most_in_flight.load(SeqCst), 3);
    let times = probe.call_times();
    assert_eq!(times.len(), 30);
    for t in (0..500).step_by(50) {
        assert_eq!(
            times.iter().filter(|x| **x == t).count(),
            3,
            "at {t} ms: {times:?}"
        );
    }
    assert!(took >= Duration::from_millis(500), "{took:?}");
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_send_that_never_answers_counts_as_timed_out_at_its_deadline() {
    let hang = Arc::new(Scripted::new(|_| delivered()).taking(Duration::from_secs(3600)));
    let h = Harness::start(hang.clone(), "max_attempts = 2", FAST_RETRIES).await;
    h.queue_visitors(&visitors(1));
    h.until(Duration::from_secs(60), |h| h.count("dead") == 1)
        .await;
    let done = h.stop().await;
    let letter = &done.outbox.dead_letters().unwrap()[0];
    assert_eq!(letter.reason.as_deref(), Some("timeout"));
    assert_eq!(
        letter.error.as_deref(),
        Some("gave up after 2 attempts: no outcome within 13s"),
        "3 × the connector's 1 s timeout + 10 s"
    );
    let times = hang.call_times();
    assert_eq!(times.len(), 2);
    assert_eq!(times[0], 0);
    assert!((13_000..=13_010).contains(&times[1]), "{times:?}");
}

#[tokio::test(start_paused = true)]
async fn owners_are_read_after_crm_deliveries_and_a_read_that_hangs_holds_nothing() {
    let crm = Arc::new(
        Scripted::new(|ask| match ask.delivery.visitor_id.as_str() {
            v if v.starts_with("bad") => failed(Reason::InvalidItem),
            v => Outcome::Delivered {
                record_id: Some(format!("crm-{v}")),
            },
        })
        .crm(10)
        .owners(|id| match id {
            "crm-owned" => Some(Some("rep@acme.example".into())),
            "crm-unowned" => Some(None),
            _ => None,
        }),
    );
    let h = Harness::start_with(crm.clone(), "batch_wait = \"1s\"", FAST_RETRIES, true).await;
    h.queue_visitors(&["owned", "unowned", "unread", "bad"].map(String::from));
    // A Claim's owner assignment knows its owner: it is not read.
    h.queue(vec![NewDelivery {
        key: "k-claimed".into(),
        trigger_kind: "claim".into(),
        payload: Ok(oie_connectors::owner::payload(
            "Ada@Acme.example",
            "crm-claimed",
        )),
        ..delivery("claimed")
    }]);
    h.until(Duration::from_secs(10), |h| {
        h.count("queued") + h.count("inflight") == 0
    })
    .await;
    // A read that never answers ends at the send's deadline; its deliveries are made.
    h.queue_visitors(&["hang".to_string()]);
    let took = h
        .until(Duration::from_secs(120), |h| {
            h.count("queued") + h.count("inflight") == 0
        })
        .await;
    assert!(took <= h.rt.deadline + Duration::from_secs(2), "{took:?}");
    let done = h.stop().await;
    let reads = crm.owner_reads();
    assert_eq!(
        reads[0],
        ["crm-owned", "crm-unowned", "crm-unread"],
        "one read for the batch's delivered records: {reads:?}"
    );
    let owner = |v: &str| {
        done.store
            .sync_state(v, "crm")
            .unwrap()
            .unwrap()
            .owner_email
    };
    assert_eq!(owner("owned").as_deref(), Some("rep@acme.example"));
    assert_eq!(owner("claimed").as_deref(), Some("ada@acme.example"));
    assert_eq!(owner("unowned"), None);
    assert_eq!(owner("unread"), None);
    let hung = done.store.sync_state("hang", "crm").unwrap().unwrap();
    assert!(hung.synced, "delivered, though its owner was never read");
}
