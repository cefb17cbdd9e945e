//! The circuit breaker through the real dispatcher: it judges requests, probes on a growing
//! cool-down, spends nothing while open, and lets flaky endpoints through.

use std::sync::Arc;
use std::time::Duration;

use oie_connectors::Reason;

use super::*;

#[tokio::test(start_paused = true)]
async fn it_opens_on_the_failure_rate_and_probes_on_a_growing_cool_down() {
    let down = Arc::new(Scripted::new(|_| failed(Reason::Transport)));
    let h = Harness::start(down.clone(), "concurrency = 5", "").await;
    h.queue_visitors(&visitors(20));
    h.run_for(Duration::from_secs(60)).await;
    // Five requests fail at once (5 of 5 ≥ 80 %): open. Then one probe after 1, 2, 4, 8, 16 s.
    assert_eq!(
        down.call_times(),
        vec![0, 0, 0, 0, 0, 1_000, 3_000, 7_000, 15_000, 31_000]
    );
    assert_eq!(h.state(), "open");
    assert_eq!(h.metrics.circuit.with_label_values(&["crm"]).get(), 2);
    let spent: u32 = visitors(20).iter().map(|v| h.spent(v).0).sum();
    assert_eq!(spent, 5, "probes that got no answer spend no attempt");
    assert_eq!(h.count("dead"), 0);
    assert_eq!(h.counted("held", "transport"), 5);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_probe_answered_with_a_throttle_closes_it_and_retry_after_holds_the_connector() {
    // Down for 10 s, then one 429 with Retry-After: 1, then healthy.
    let answered = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let first = answered.clone();
    let endpoint = Arc::new(Scripted::new(move |ask| {
        if ask.at < 10_000 {
            failed(Reason::Transport)
        } else if !first.swap(true, std::sync::atomic::Ordering::SeqCst) {
            failed_after(Reason::Throttled, 1)
        } else {
            delivered()
        }
    }));
    let h = Harness::start(endpoint.clone(), "concurrency = 5", "").await;
    h.queue_visitors(&visitors(20));
    let took = h
        .until(Duration::from_secs(120), |h| h.count("delivered") == 20)
        .await;
    let times = endpoint.call_times();
    // Probes at 1, 3, 7 s find it down; the one at 15 s is throttled for 1 s; at 16 s all go.
    assert_eq!(&times[..9], &[0, 0, 0, 0, 0, 1_000, 3_000, 7_000, 15_000]);
    assert!(times[9..].iter().all(|t| *t == 16_000), "{times:?}");
    assert_eq!(
        times.len(),
        29,
        "20 deliveries, 5 failures, 3 lost probes, 1 throttle"
    );
    assert!(took < Duration::from_millis(16_100), "{took:?}");
    assert_eq!(h.count("dead"), 0);
    assert_eq!(h.state(), "ok");
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn an_endpoint_failing_two_requests_in_three_delivers_everything_once() {
    // Every delivery fails its first two requests with a server error, as the receiver.
    let flaky = Arc::new(Scripted::new(|ask| {
        if ask.nth < 2 {
            failed(Reason::ServerError)
        } else {
            delivered()
        }
    }));
    let h = Harness::start(flaky.clone(), "", "").await;
    let all = visitors(200);
    h.queue_visitors(&all);
    let took = h
        .until(Duration::from_secs(120), |h| h.count("delivered") == 200)
        .await;
    eprintln!("2-of-3 server errors: 200 delivered in {took:?} of virtual time");
    assert!(took <= Duration::from_secs(60), "{took:?}");
    assert!(
        all.iter().all(|v| flaky.requests_for(v) == 3),
        "each exactly three requests"
    );
    assert_eq!(h.count("dead"), 0);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn throttles_two_requests_in_three_never_open_it() {
    // 503s (throttles) say the endpoint is alive: the breaker stays closed.
    let busy = Arc::new(Scripted::new(|ask| {
        if ask.nth < 2 {
            failed(Reason::Throttled)
        } else {
            delivered()
        }
    }));
    let h = Harness::start(busy.clone(), "", "").await;
    h.queue_visitors(&visitors(200));
    let took = h
        .until(Duration::from_secs(30), |h| h.count("delivered") == 200)
        .await;
    eprintln!("2-of-3 throttles: 200 delivered in {took:?} of virtual time");
    assert!(took <= Duration::from_secs(5), "{took:?}");
    assert_eq!(h.metrics.circuit.with_label_values(&["crm"]).get(), 0);
    assert_eq!(busy.calls().len(), 600);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_probe_that_never_answers_does_not_hold_the_breaker() {
    let hang = Arc::new(Scripted::new(|_| delivered()).taking(Duration::from_secs(86_400)));
    let h = Harness::start(hang.clone(), "concurrency = 5", "").await;
    h.queue_visitors(&visitors(20));
    h.run_for(Duration::from_secs(600)).await;
    let times = hang.call_times();
    // Five time out at 13 s and open it; each probe times out 13 s after it went, and the
    // next follows after the doubled cool-down: 14, 29 (+2), 46 (+4), 67 (+8), 96 (+16),
    // then every 43 s (13 + 30).
    assert_eq!(
        &times[..10],
        &[0, 0, 0, 0, 0, 14_000, 29_000, 46_000, 67_000, 96_000]
    );
    assert!(times.len() >= 20, "probes keep going: {times:?}");
    let spent: u32 = visitors(20).iter().map(|v| h.spent(v).0).sum();
    assert_eq!(spent, 5, "lost probes spend nothing");
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn deliveries_failing_for_their_own_reasons_cannot_keep_it_open() {
    // Down for 30 s; afterwards the three oldest deliveries fail with a server error every
    // time (their payload breaks the receiver); the rest are fine.
    let endpoint = Arc::new(Scripted::new(|ask| {
        let poison = matches!(ask.delivery.visitor_id.as_str(), "v0" | "v1" | "v2");
        match (ask.at < 30_000, poison) {
            (true, _) => failed(Reason::Transport),
            (false, true) => failed(Reason::ServerError),
            (false, false) => delivered(),
        }
    }));
    let h = Harness::start(endpoint.clone(), "concurrency = 5", "").await;
    h.queue_visitors(&visitors(20));
    let took = h
        .until(Duration::from_secs(600), |h| h.count("delivered") == 17)
        .await;
    eprintln!("three poison deliveries at the head: the rest delivered after {took:?}");
    assert!(took <= Duration::from_secs(240), "{took:?}");
    h.stop().await;
}
