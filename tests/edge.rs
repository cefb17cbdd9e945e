//! Black-box: the ingest API of `oie run` as an attacker meets it — enumeration, slow clients,
//! oversized and forged headers, unsigned or replayed server-side posts, metrics kept apart.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::{Workspace, FAST};
use serde_json::{json, Value};

fn config(server: &str) -> String {
    format!(
        "{}\n[[routes]]\nname = \"hot\"\nwhen = 'trigger.kind == \"hot_lead\"'\nto = [\"out\"]\n\n[connectors.out]\nkind = \"file\"\npath = \"data/out.jsonl\"\n",
        FAST.replace(
            "listen = \"127.0.0.1:0\"\n",
            &format!("listen = \"127.0.0.1:0\"\n{server}\n")
        )
    )
}

fn body(visitor: &str, event: &str) -> String {
    json!({"v": 1, "events": [{"eventId": event, "type": "pageview", "timestamp": oie::clock::now_ms(),
        "sessionId": "s1", "visitorId": visitor, "url": "https://acme.example/pricing", "path": "/pricing"}]})
    .to_string()
}

fn stored(ws: &Workspace, sql: &str) -> Vec<Vec<Value>> {
    let conn = rusqlite::Connection::open(ws.path("data/oie.db")).unwrap();
    let mut stmt = conn.prepare(sql).unwrap();
    let n = stmt.column_count();
    stmt.query_map([], |r| {
        Ok((0..n)
            .map(|i| match r.get_ref(i).unwrap() {
                rusqlite::types::ValueRef::Text(t) => json!(String::from_utf8_lossy(t)),
                rusqlite::types::ValueRef::Integer(i) => json!(i),
                _ => Value::Null,
            })
            .collect())
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

async fn wait_stored(ws: &Workspace, sql: &str) -> Vec<Vec<Value>> {
    let start = Instant::now();
    loop {
        let rows = stored(ws, sql);
        if !rows.is_empty() {
            return rows;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "nothing for {sql}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One loop over random ids from one address gets the allowance, then 429s with Retry-After.
#[tokio::test(flavor = "multi_thread")]
async fn guessing_ids_is_refused_after_the_allowance() {
    let ws = Workspace::new(&config(
        "personalize_level = true\n[server.rate_limits]\nlookups = 100\nexempt = []",
    ));
    let daemon = ws.start();
    let client = reqwest::Client::new();
    // With `personalize_level = true` the answer has the level (null for an unknown visitor).
    let shown: Value = client
        .get(format!("{}/personalize?v=nobody", daemon.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        shown,
        json!({"firstName": null, "company": null, "campaignName": null, "level": null})
    );
    let start = Instant::now();
    let (mut ok, mut refused) = (0, 0);
    for i in 0..5_000u32 {
        let id = format!("{:05x}", rand_id(i));
        let r = client
            .get(format!("{}/identify?i={id}", daemon.base))
            .send()
            .await
            .unwrap();
        match r.status().as_u16() {
            200 => ok += 1,
            429 => {
                let after: u64 = r.headers()["retry-after"]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!((1..=60).contains(&after), "Retry-After {after}");
                refused += 1;
            }
            other => panic!("status {other}"),
        }
    }
    // The bucket holds 100 (one taken above) and refills one every 0.6 s while the loop runs.
    let refilled = (start.elapsed().as_secs_f64() / 0.6).ceil() as u32;
    assert!(
        ok >= 99 && ok <= 99 + refilled,
        "{ok} answered in {:?}",
        start.elapsed()
    );
    assert_eq!(ok + refused, 5_000);
    // /personalize shares the lookups' allowance; the level shows only when configured. (A
    // token may have refilled since the loop: the second request, right after, finds none.)
    let mut r = None;
    for _ in 0..2 {
        let answer = client
            .get(format!("{}/personalize?v=nobody", daemon.base))
            .send()
            .await
            .unwrap();
        if answer.status().as_u16() == 429 {
            r = Some(answer);
            break;
        }
    }
    let r = r.expect("/personalize refused once the allowance is spent");
    let body: Value = r.json().await.unwrap();
    assert!(body["error"]
        .as_str()
        .unwrap()
        .contains("too many requests"));
}

/// Spreads `i` over the 20 bits of a five-hex-digit id, as a guessing loop would.
fn rand_id(i: u32) -> u32 {
    i.wrapping_mul(2_654_435_761) & 0xf_ffff
}

/// A client that sends its headers one byte a second is cut off at `header_timeout`.
#[tokio::test(flavor = "multi_thread")]
async fn a_slow_client_is_disconnected() {
    let ws = Workspace::new(&config("header_timeout = \"2s\""));
    let daemon = ws.start();
    let addr = daemon.base.trim_start_matches("http://").to_string();
    let closed = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let start = Instant::now();
        for byte in b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaa"
            .iter()
            .cycle()
        {
            if stream.write_all(&[*byte]).is_err() {
                return start.elapsed();
            }
            let mut buf = [0u8; 256];
            match stream.read(&mut buf) {
                Ok(0) => return start.elapsed(),
                Ok(_) => return start.elapsed(), // a 408 or similar, then the close
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) => return start.elapsed(),
            }
            std::thread::sleep(Duration::from_millis(800));
            assert!(start.elapsed() < Duration::from_secs(20), "still connected");
        }
        unreachable!()
    })
    .await
    .unwrap();
    assert!(
        closed >= Duration::from_secs(1) && closed < Duration::from_secs(6),
        "closed after {closed:?}"
    );
}

/// A 300 KB user agent is stored as 512 characters; `X-Forwarded-For` counts only from a
/// trusted proxy.
#[tokio::test(flavor = "multi_thread")]
async fn headers_are_bounded_and_forwarding_is_believed_from_proxies_only() {
    let ws = Workspace::new(&config(""));
    let daemon = ws.start();
    let client = reqwest::Client::new();
    let post = |event: &str, agent: String, xff: &str| {
        client
            .post(format!("{}/track", daemon.base))
            .header("user-agent", agent)
            .header("x-forwarded-for", xff)
            .body(body("v1", event))
            .send()
    };
    let r = post("e1", "A".repeat(300_000), "203.0.113.9")
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let rows = wait_stored(
        &ws,
        "SELECT length(userAgent), ip FROM events WHERE eventId = 'e1'",
    )
    .await;
    assert_eq!(rows[0][0], 512);
    assert_eq!(
        rows[0][1], "127.0.0.1",
        "X-Forwarded-For from an untrusted peer is ignored"
    );
    drop(daemon);

    let ws = Workspace::new(&config("trusted_proxies = [\"127.0.0.1\"]"));
    let daemon = ws.start();
    let client = reqwest::Client::new();
    for (event, xff, expected) in [
        ("e2", "6.6.6.6, 203.0.113.9", "203.0.113.9"),
        ("e3", "not-an-address", "127.0.0.1"),
    ] {
        let r = client
            .post(format!("{}/track", daemon.base))
            .header("x-forwarded-for", xff)
            .body(body("v1", event))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 202);
        let rows = wait_stored(
            &ws,
            &format!("SELECT ip FROM events WHERE eventId = '{event}'"),
        )
        .await;
        assert_eq!(rows[0][0], expected, "{xff}");
    }
}

/// With a signing secret, server-side posts must be signed, recently.
#[tokio::test(flavor = "multi_thread")]
async fn server_side_posts_are_signed_and_cannot_be_replayed() {
    let ws = Workspace::new(&config("event_signing_secret = \"${OIE_TEST_SIGNING}\""));
    ws.env("OIE_TEST_SIGNING", "sign-me");
    let daemon = ws.start();
    let client = reqwest::Client::new();
    let send = |payload: String, signature: Option<String>, origin: Option<&str>| {
        let mut r = client.post(format!("{}/track", daemon.base)).body(payload);
        if let Some(s) = signature {
            r = r.header("x-oie-signature", s);
        }
        if let Some(o) = origin {
            r = r.header("origin", o);
        }
        async move {
            let r = r.send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap())
        }
    };
    let now = oie::clock::now_ms() / 1000;
    let payload = body("v1", "s1");
    let sign = |t: i64| oie::ingest::sign(b"sign-me", t, payload.as_bytes());
    let (status, answer) = send(payload.clone(), None, None).await;
    assert_eq!(status, 401);
    assert!(
        answer["error"].as_str().unwrap().contains("must sign"),
        "{answer}"
    );
    assert_eq!(send(payload.clone(), Some(sign(now)), None).await.0, 202);
    let (status, answer) = send(payload.clone(), Some(sign(now - 600)), None).await;
    assert_eq!(status, 401, "a captured request replayed ten minutes later");
    assert!(answer["error"]
        .as_str()
        .unwrap()
        .contains("more than 300 seconds"));
    let (status, answer) = send(body("v1", "s2"), Some(sign(now)), None).await;
    assert_eq!(status, 401, "another body under the same signature");
    assert!(answer["error"].as_str().unwrap().contains("does not match"));
    let (status, answer) = send(payload.clone(), Some("sha256=00".into()), None).await;
    assert_eq!(status, 401);
    assert!(answer["error"]
        .as_str()
        .unwrap()
        .contains("old `sha256=<hex>` form"));
    // Pages served by oie itself post with their own origin and need no signature.
    let own = daemon.base.clone();
    assert_eq!(send(body("v1", "s3"), None, Some(&own)).await.0, 202);
}

/// `/metrics` on its own address leaves the ingest API; a malformed erasure path is a 400.
#[tokio::test(flavor = "multi_thread")]
async fn metrics_listen_apart_and_bad_paths_are_client_errors() {
    let ws = Workspace::new(&config(
        "metrics_listen = \"127.0.0.1:0\"\nadmin_token = \"${OIE_TEST_EDGE_ADMIN}\"",
    ));
    ws.env("OIE_TEST_EDGE_ADMIN", "admin-token");
    let daemon = ws.start();
    let metrics = common::read(&ws.path("data/metrics.addr"));
    let get = |url: String| async move { reqwest::get(url).await.unwrap().status().as_u16() };
    assert_eq!(get(format!("http://{metrics}/metrics")).await, 200);
    assert_eq!(get(format!("http://{metrics}/readyz")).await, 200);
    assert_eq!(get(format!("{}/metrics", daemon.base)).await, 404);
    assert_eq!(get(format!("{}/health", daemon.base)).await, 200);
    let client = reqwest::Client::new();
    for path in ["%E0", "%FF%FE", "a%2Fb"] {
        let r = client
            .delete(format!("{}/visitors/{path}", daemon.base))
            .bearer_auth("admin-token")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 400, "{path}");
    }
}
