//! Connectors held back as a whole: parks, throttles, outages longer than a retry schedule,
//! `max_age`, `oie connectors resume`, and syncs that supersede each other.

use std::sync::Arc;
use std::time::Duration;

use oie_connectors::Reason;

use super::*;

#[tokio::test(start_paused = true)]
async fn an_auth_failure_parks_the_connector_and_keeps_its_queue() {
    // The token is refused for 20 s (a rotation), then accepted.
    let crm = Arc::new(Scripted::new(|ask| {
        if ask.at < 20_000 {
            failed(Reason::Auth)
        } else {
            delivered()
        }
    }));
    let h = Harness::start(crm.clone(), "", "").await;
    let all = visitors(50);
    h.queue_visitors(&all);
    h.run_for(Duration::from_secs(10)).await;
    assert_eq!(h.state(), "parked");
    let state = h.outbox.connector_states().unwrap().remove("crm").unwrap();
    assert_eq!(state.reason.as_deref(), Some("auth"));
    assert_eq!(state.next_try, Some(state.since + 15_000));
    assert_eq!(
        h.metrics
            .connector_state
            .with_label_values(&["crm", "parked"])
            .get(),
        1
    );
    h.until(Duration::from_secs(60), |h| h.count("delivered") == 50)
        .await;
    let times = crm.call_times();
    // The first wave (8 in flight), then one probe after 1, 2, 4, 8 s; the one at 31 s gets
    // through and the other 49 follow at once.
    assert_eq!(
        &times[..12],
        &[0, 0, 0, 0, 0, 0, 0, 0, 1_000, 3_000, 7_000, 15_000]
    );
    assert!(times[12..].iter().all(|t| *t == 31_000), "{times:?}");
    assert_eq!(times.len(), 62);
    assert_eq!(
        h.count("dead"),
        0,
        "a connector-wide failure dead-letters nothing"
    );
    assert!(
        all.iter().all(|v| h.spent(v) == (1, 0)),
        "one counted attempt each: the delivery"
    );
    assert_eq!(h.counted("held", "auth"), 12);
    assert_eq!(h.state(), "ok");
    let done = h.stop().await;
    assert!(done
        .store
        .sync_state("v0", "crm")
        .unwrap()
        .is_none_or(|s| s.last_error.is_none()));
}

#[tokio::test(start_paused = true)]
async fn a_two_hour_outage_spends_no_attempts_and_dead_letters_nothing() {
    let down = Arc::new(Scripted::new(|ask| {
        if ask.at < 7_200_000 {
            failed(Reason::Transport)
        } else {
            delivered()
        }
    }));
    // max_attempts = 10 and max_age = 24h (the defaults); only three deliveries, so the
    // breaker needs a few retries to have its five requests.
    let h = Harness::start(
        down.clone(),
        "concurrency = 1",
        "max_attempts = 10\nmax_age = \"24h\"",
    )
    .await;
    let all = visitors(3);
    h.queue_visitors(&all);
    let took = h
        .until(Duration::from_secs(3 * 3600), |h| h.count("delivered") == 3)
        .await;
    assert!(
        took >= Duration::from_secs(7_200) && took <= Duration::from_secs(7_231),
        "delivered within one cool-down of the recovery: {took:?}"
    );
    assert_eq!(h.count("dead"), 0);
    let spent: Vec<u32> = all.iter().map(|v| h.spent(v).0).collect();
    // However the five failures before it opened fall on the three, none is spent further.
    assert!(spent.iter().all(|s| *s <= 5 + 1), "{spent:?}");
    assert_eq!(
        spent.iter().sum::<u32>(),
        5 + 3,
        "five failures before it opened, three deliveries"
    );
    let probes = down.calls().len() - 5 - 3;
    assert!(
        (230..=250).contains(&probes),
        "one probe per 30 s at most: {probes}"
    );
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn an_outage_longer_than_max_age_dead_letters_by_max_age() {
    let down = Arc::new(Scripted::new(|_| failed(Reason::Transport)));
    let h = Harness::start(down, "max_age = \"1h\"", "").await;
    h.queue_visitors(&visitors(6));
    h.run_for(Duration::from_secs(3_540)).await;
    assert_eq!(h.count("dead"), 0, "not before max_age");
    h.run_for(Duration::from_secs(3 * 60)).await;
    let done = h.stop().await;
    let letters = done.outbox.dead_letters().unwrap();
    assert_eq!(letters.len(), 6);
    for l in &letters {
        assert_eq!(l.reason.as_deref(), Some("transport"), "{l:?}");
        let error = l.error.as_deref().unwrap();
        assert!(error.starts_with("gave up: max_age 1h reached"), "{error}");
    }
}

#[tokio::test(start_paused = true)]
async fn resume_probes_a_parked_connector_at_once() {
    let crm = Arc::new(Scripted::new(|ask| {
        if ask.at < 7_500 {
            failed(Reason::NotFound)
        } else {
            delivered()
        }
    }));
    let h = Harness::start(crm.clone(), "", "").await;
    h.queue_visitors(&visitors(10));
    // Probes at 1, 3, 7 s; at 8 s the next one is 8 s away. The operator asks now.
    h.run_for(Duration::from_secs(8)).await;
    assert_eq!(h.count("delivered"), 0);
    h.outbox.request_resume("crm", h.clock.now_ms()).unwrap();
    let took = h
        .until(Duration::from_secs(5), |h| h.count("delivered") == 10)
        .await;
    assert!(took <= Duration::from_millis(600), "{took:?}");
    assert_eq!(h.state(), "ok");
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn retry_after_holds_the_whole_connector() {
    let crm = Arc::new(Scripted::new(|ask| {
        if ask.at == 0 {
            failed_after(Reason::Throttled, 2)
        } else {
            delivered()
        }
    }));
    let h = Harness::start(crm.clone(), "concurrency = 1", "").await;
    h.queue_visitors(&visitors(10));
    h.until(Duration::from_secs(10), |h| h.count("delivered") == 10)
        .await;
    let times = crm.call_times();
    assert_eq!(times[0], 0);
    assert!(times[1..].iter().all(|t| *t == 2_000), "{times:?}");
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn throttles_spend_no_attempts() {
    let busy = Arc::new(Scripted::new(|ask| {
        if ask.nth < 20 {
            failed(Reason::Throttled)
        } else {
            delivered()
        }
    }));
    let h = Harness::start(
        busy,
        "max_attempts = 3",
        "backoff_base = \"1ms\"\nbackoff_max = \"10ms\"",
    )
    .await;
    h.queue_visitors(&visitors(2));
    h.until(Duration::from_secs(10), |h| h.count("delivered") == 2)
        .await;
    assert_eq!(
        h.spent("v0"),
        (1, 20),
        "twenty throttles, one counted attempt"
    );
    assert_eq!(h.counted("retry", "throttled"), 40);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_newer_sync_supersedes_the_queued_one() {
    let crm = Arc::new(Scripted::new(|_| delivered()).crm(100));
    let h = Harness::start(crm.clone(), "batch_wait = \"1s\"", "").await;
    let mut superseded = 0;
    for version in 1..=5 {
        let mut d = delivery("lead");
        d.key = format!("k-lead-{version}");
        d.payload = Ok(format!("{{\"version\":{version}}}"));
        d.delay_ms = 1_000;
        d.supersedes = true;
        let handover = HandOver {
            deliveries: vec![d],
            ..HandOver::default()
        };
        let committed = h.outbox.hand_over(&handover, h.clock.now_ms()).unwrap();
        superseded += committed.superseded.len();
        h.run_for(Duration::from_millis(200)).await;
    }
    h.until(Duration::from_secs(5), |h| h.count("delivered") == 1)
        .await;
    assert_eq!(superseded, 4);
    assert_eq!(h.count("superseded"), 4);
    let calls = crm.calls();
    assert_eq!(calls.len(), 1, "five changes, one write");
    assert_eq!(calls[0].at, 1_800, "the newest waited its batch_wait");
    h.stop().await;
}
