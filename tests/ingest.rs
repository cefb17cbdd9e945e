//! Black-box: `oie run` as the ingest API (embedded mode), with the contract's own fixtures.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Behaviour, Receiver, Workspace, FAST};
use serde_json::{json, Value};

fn contract(path: &str) -> Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("contract")
        .join(path);
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn config(extra: &str) -> String {
    format!(
        "{FAST}\n[scoring]\ndebounce = \"100ms\"\n\n[[routes]]\nname = \"hot\"\nwhen = 'trigger.kind == \"hot_lead\"'\nto = [\"out\"]\n\n[connectors.out]\nkind = \"file\"\npath = \"data/out.jsonl\"\n{extra}"
    )
}

async fn post(
    base: &str,
    body: &str,
    origin: Option<&str>,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut req = reqwest::Client::new()
        .post(format!("{base}/track"))
        .header("content-type", "text/plain")
        .body(body.to_string());
    if let Some(o) = origin {
        req = req.header("origin", o);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, r.json().await.unwrap_or(Value::Null), headers)
}

fn event_count(ws: &Workspace) -> i64 {
    let c = rusqlite::Connection::open(ws.path("data/oie.db")).unwrap();
    c.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_contract_fixtures_pass_as_they_do_against_the_worker() {
    let ws = Workspace::new(&config(""));
    let daemon = ws.start();
    let mut accepted = 0;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("contract/examples/valid");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|f| f.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert!(names.len() >= 3, "{names:?}");
    for name in names {
        // As written (half-surrogates.json is JSON text serde_json alone would refuse).
        let body = std::fs::read_to_string(dir.join(&name)).unwrap();
        let (status, answer, _) = post(&daemon.base, &body, None).await;
        assert_eq!(status, 202, "{name}: {answer}");
        let n = body.matches("\"eventId\"").count();
        assert_eq!(answer, json!({"success": true, "eventsReceived": n}));
        accepted += n as i64;
    }
    for case in contract("examples/invalid/cases.json").as_array().unwrap() {
        let (status, answer, _) = post(&daemon.base, &case["body"].to_string(), None).await;
        assert_eq!(status, 400, "{}: {answer}", case["why"]);
        assert_eq!(answer["success"], false);
        assert!(
            answer["error"]
                .as_str()
                .unwrap()
                .starts_with("body does not match the ingest contract: "),
            "{answer}"
        );
    }
    let (status, answer, _) = post(&daemon.base, "{not json", None).await;
    assert_eq!(
        (
            status,
            answer["error"]
                .as_str()
                .unwrap()
                .starts_with("body is not JSON")
        ),
        (400, true)
    );
    let big = format!(r#"{{"v":1,"events":[],"pad":"{}"}}"#, "x".repeat(70_000));
    assert_eq!(post(&daemon.base, &big, None).await.0, 413);
    let one = contract("examples/valid/anonymous.json")["events"][0].clone();
    let many: Vec<Value> = (0..51)
        .map(|i| {
            let mut e = one.clone();
            e["eventId"] = json!(format!("m{i}"));
            e
        })
        .collect();
    assert_eq!(
        post(
            &daemon.base,
            &json!({"v": 1, "events": many}).to_string(),
            None
        )
        .await
        .0,
        400,
        "at most 50 events"
    );

    // Embedded pixel and demo page.
    let pixel = reqwest::get(format!("{}/oie.js", daemon.base))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(
        &pixel[..],
        &std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("pixel/dist/oie.js")).unwrap()[..]
    );
    assert!(daemon.get("/demo").await.1.contains("src=\"/oie.js\""));
    assert_eq!(
        daemon.get("/health").await,
        (200, r#"{"status":"ok"}"#.to_string())
    );
    assert!(daemon.terminate().success());
    assert_eq!(event_count(&ws), accepted, "every accepted event is stored");
    // Half a surrogate pair is stored as U+FFFD, as the Worker reads it; a whole pair as itself.
    let c = rusqlite::Connection::open(ws.path("data/oie.db")).unwrap();
    let title = |id: &str| -> String {
        c.query_row("SELECT title FROM events WHERE eventId = ?1", [id], |r| {
            r.get(0)
        })
        .unwrap()
    };
    assert_eq!(title("h1"), "Pricing \u{FFFD}");
    assert_eq!(title("h2"), "\u{FFFD} Pricing 🚀");
}

#[tokio::test(flavor = "multi_thread")]
async fn cors_allows_listed_origins_and_the_own_one_only() {
    let ws = Workspace::new(&config("").replace(
        "[server]\nlisten = \"127.0.0.1:0\"",
        "[server]\nlisten = \"127.0.0.1:0\"\nallowed_origins = [\"https://www.acme.example\"]",
    ));
    let daemon = ws.start();
    let body = contract("examples/valid/anonymous.json").to_string();
    let (status, _, headers) = post(&daemon.base, &body, Some("https://www.acme.example")).await;
    assert_eq!(status, 202);
    assert_eq!(
        headers["access-control-allow-origin"],
        "https://www.acme.example"
    );
    let (status, answer, _) = post(&daemon.base, &body, Some("https://evil.example")).await;
    assert_eq!(status, 403);
    assert!(answer["error"]
        .as_str()
        .unwrap()
        .contains("https://evil.example is not allowed"));
    assert_eq!(
        post(&daemon.base, &body, Some(&daemon.base)).await.0,
        202,
        "pages served by oie itself"
    );
    let pre = reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, format!("{}/track", daemon.base))
        .header("origin", "https://www.acme.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(pre.status().as_u16(), 204);
    assert_eq!(
        pre.headers()["access-control-allow-methods"],
        "POST, OPTIONS"
    );
    drop(daemon);
}

/// A visitor's events, as the pixel would send them, worth `burning` with a form.
fn stored_id(ws: &Workspace, email: &str) -> String {
    rusqlite::Connection::open(ws.path("data/oie.db"))
        .unwrap()
        .query_row(
            "SELECT shortId FROM identity_map WHERE email = ?1",
            [email],
            |r| r.get(0),
        )
        .unwrap()
}

fn hot_journey(visitor: &str, now: i64) -> Value {
    let e = |i: usize, t: &str, path: &str, data: Value| {
        json!({"eventId": format!("{visitor}-{i}"), "type": t, "timestamp": now - 60_000 + i as i64,
        "sessionId": format!("{visitor}-s"), "visitorId": visitor, "url": format!("https://acme.example{path}"), "path": path, "data": data})
    };
    json!({"v": 1, "events": [
        e(0, "pageview", "/pricing", json!({})), e(1, "pageview", "/pricing", json!({})), e(2, "pageview", "/pricing", json!({})),
        e(3, "page_exit", "/pricing", json!({"activeMs": 300000, "maxScrollDepth": 90})),
        e(4, "form_submit", "/demo", json!({"formId": "demo", "fields": ["email"]})),
    ]})
}

#[tokio::test(flavor = "multi_thread")]
async fn events_become_a_hot_lead_alert_within_seconds() {
    let rx = Receiver::start(&[("alerts", Behaviour::Ok)]).await;
    let hook = format!(
        "\n[connectors.hook]\nkind = \"webhook\"\nurl = \"{}\"\n",
        rx.url("alerts")
    );
    let ws = Workspace::new(&(config("").replace("to = [\"out\"]", "to = [\"hook\"]") + &hook));
    let daemon = ws.start();
    let sent = Instant::now();
    let (status, _, _) = post(
        &daemon.base,
        &hot_journey("ab3f9", oie::clock::now_ms()).to_string(),
        None,
    )
    .await;
    assert_eq!(status, 202);
    rx.wait_for("the alert", Duration::from_secs(10), |r| {
        !r.accepted("alerts").is_empty()
    })
    .await;
    let latency = sent.elapsed();
    let alert = &rx.accepted("alerts")[0].body;
    // 30 + 4 + engagement 4.5 + 5 (300 s) + high intent 24 + conversions 15 = 82.5 → 83, burning
    assert_eq!(alert["data"]["lead"]["intentScore"], 83);
    assert_eq!(alert["data"]["trigger"]["level"], "burning");
    println!("event to alert: {latency:?}");
    drop(daemon);
}

#[tokio::test(flavor = "multi_thread")]
async fn accepted_events_survive_sigterm_and_a_stalled_writer_answers_503() {
    let ws = Workspace::new(&config("").replace(
        "[server]\nlisten = \"127.0.0.1:0\"",
        "[server]\nlisten = \"127.0.0.1:0\"\nmax_queued_requests = 4",
    ));
    let daemon = ws.start();
    let one = contract("examples/valid/anonymous.json")["events"][0].clone();
    let body = |i: usize| {
        let events: Vec<Value> = (0..5)
            .map(|k| {
                let mut e = one.clone();
                e["eventId"] = json!(format!("b{i}-{k}"));
                e
            })
            .collect();
        json!({"v": 1, "events": events}).to_string()
    };
    // Hold SQLite's write lock: the writer stalls, the queue fills, /track says 503 + Retry-After.
    let lock = rusqlite::Connection::open(ws.path("data/oie.db")).unwrap();
    lock.execute_batch("BEGIN IMMEDIATE").unwrap();
    let (mut accepted, mut busy) = (0, 0);
    for i in 0..40 {
        let (status, _, headers) = post(&daemon.base, &body(i), None).await;
        match status {
            202 => accepted += 5,
            503 => {
                busy += 1;
                assert_eq!(headers["retry-after"], "1");
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(busy > 0, "a full queue answers 503");
    assert!(
        accepted <= 5 * (4 + 2),
        "memory stays bounded: {accepted} events accepted"
    );
    let start = Instant::now();
    let terminated = std::thread::spawn(move || daemon.terminate());
    std::thread::sleep(Duration::from_millis(500));
    lock.execute_batch("COMMIT").unwrap();
    assert!(terminated.join().unwrap().success());
    assert!(start.elapsed() < Duration::from_secs(15));
    assert_eq!(
        event_count(&ws),
        accepted as i64,
        "every accepted event was written before exit"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn identities_pages_links_and_erasure() {
    let ws = Workspace::new(&config("").replace(
        "[server]\nlisten = \"127.0.0.1:0\"",
        "[server]\nlisten = \"127.0.0.1:0\"\nredirect_hosts = [\"www.acme.example\", \"bücher.example\"]\nadmin_token = \"${OIE_TEST_ADMIN_TOKEN}\"",
    ));
    ws.env("OIE_TEST_ADMIN_TOKEN", "s3cret-admin");
    std::fs::write(
        ws.path("ids.csv"),
        "shortId,email,firstName,lastName,company,campaignName\nab3f9,jane@acme.example,Jane,Doe,Acme,Q4 Outbound\n,x@y.example,No,Id,Nope,\n",
    )
    .unwrap();
    let import = |out: Option<&str>| {
        let file = ws.path("ids.csv").to_str().unwrap().to_string();
        let mut args: Vec<String> = vec!["identities".into(), "import".into(), file];
        if let Some(o) = out {
            args.extend([
                "--out".to_string(),
                ws.path(o).to_str().unwrap().to_string(),
            ]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        ws.oie(&args)
    };
    let out = import(None);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("1 id(s) can be guessed (\"ab3f9\" carries about 20 bits"),
        "{stderr}"
    );
    assert!(
        stderr.contains("generated 1 id(s); run again with --out FILE"),
        "{stderr}"
    );
    // Again with --out: the row without an id keeps the one it got, and both are written.
    let out = import(Some("ids-out.csv"));
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).contains("generated"));
    let written = common::read(&ws.path("ids-out.csv"));
    let lines: Vec<&str> = written.lines().collect();
    assert_eq!(lines[0], "email,shortId");
    assert_eq!(lines[1], "jane@acme.example,ab3f9");
    let (email, id) = lines[2].split_once(',').unwrap();
    assert_eq!(email, "x@y.example");
    assert_eq!(id.len(), 13, "a generated id: {id}");
    let generated = stored_id(&ws, "x@y.example");
    assert_eq!(id, generated);
    let daemon = ws.start();
    let get = |path: &str| {
        let url = format!("{}{path}", daemon.base);
        async move {
            reqwest::get(url)
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let known = get("/identify?i=ab3f9").await;
    assert_eq!(
        known,
        json!({"firstName": "Jane", "company": "Acme", "campaignName": "Q4 Outbound"}),
        "never e-mail or last name"
    );
    let unknown = get("/identify?i=nobody").await;
    assert_eq!(
        unknown,
        json!({"firstName": null, "company": null, "campaignName": null}),
        "same shape for unknown ids"
    );
    assert_eq!(get("/identify?i=%3Cscript%3E").await, unknown);

    // Events for the identified visitor: the alert carries the person's name and company.
    assert_eq!(
        post(
            &daemon.base,
            &hot_journey("ab3f9", oie::clock::now_ms()).to_string(),
            None
        )
        .await
        .0,
        202
    );
    let start = Instant::now();
    while !common::read(&ws.path("data/out.jsonl")).contains("\"ab3f9\"") {
        assert!(start.elapsed() < Duration::from_secs(10), "no alert");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let line: Value = serde_json::from_str(
        common::read(&ws.path("data/out.jsonl"))
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(line["payload"]["data"]["lead"]["firstName"], "Jane");
    assert_eq!(line["payload"]["data"]["lead"]["company"], "Acme");
    // The level only with `personalize_level = true` (see the limits test).
    assert_eq!(
        get("/personalize?v=ab3f9").await,
        json!({"firstName": "Jane", "company": "Acme", "campaignName": "Q4 Outbound"})
    );
    assert_eq!(
        get("/personalize?v=nobody").await,
        json!({"firstName": null, "company": null, "campaignName": null})
    );

    // Tracked links: recorded, redirected only where allowed.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let go = |q: &str| {
        let (c, url) = (client.clone(), format!("{}/go?{q}", daemon.base));
        async move {
            c.get(url).send().await.unwrap().headers()["location"]
                .to_str()
                .unwrap()
                .to_string()
        }
    };
    assert_eq!(go("i=ab3f9&to=%2Fpricing").await, "/pricing?i=ab3f9");
    assert_eq!(
        go("i=ab3f9&to=https%3A%2F%2Fwww.acme.example%2Fdemo").await,
        "https://www.acme.example/demo?i=ab3f9"
    );
    // Every case of the contract's redirect vectors, through the real handler.
    let vectors: Value = serde_json::from_str(include_str!("../contract/redirects.json")).unwrap();
    let cases = vectors["cases"].as_array().unwrap();
    for case in cases {
        let query = case["query"].as_str().unwrap();
        assert_eq!(go(query).await, case["location"], "{}", case["name"]);
    }
    let first_i_is_ours = |q: &str| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "i")
            .is_some_and(|(_, v)| v == "ab3f9")
    };
    let ours = cases
        .iter()
        .filter(|c| first_i_is_ours(c["query"].as_str().unwrap()))
        .count() as i64;
    let clicks = |ws: &Workspace| -> i64 {
        rusqlite::Connection::open(ws.path("data/oie.db"))
            .unwrap()
            .query_row(
                "SELECT COUNT(*) FROM email_clicks WHERE visitorId = 'ab3f9'",
                [],
                |r| r.get(0),
            )
            .unwrap()
    };
    // Clicks are written by the event writer, a moment after the redirect.
    common::wait_until("every click recorded", 10, || clicks(&ws) == 2 + ours).await;

    // Erasure needs the admin token, and leaves nothing behind.
    let del = |token: Option<&str>| {
        let mut r = client.delete(format!("{}/visitors/ab3f9", daemon.base));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        async move { r.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(del(None).await, 401);
    assert_eq!(del(Some("wrong")).await, 401);
    assert_eq!(del(Some("s3cret-admin")).await, 200);
    assert_eq!(get("/identify?i=ab3f9").await, unknown);
    assert_eq!(get("/personalize?v=ab3f9").await["firstName"], Value::Null);
    let left: i64 = rusqlite::Connection::open(ws.path("data/oie.db"))
        .unwrap()
        .query_row(
            "SELECT (SELECT COUNT(*) FROM events WHERE visitorId = 'ab3f9') + (SELECT COUNT(*) FROM sessions WHERE visitorId = 'ab3f9')
                  + (SELECT COUNT(*) FROM lead_profiles WHERE visitorId = 'ab3f9') + (SELECT COUNT(*) FROM identity_map WHERE shortId = 'ab3f9')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(left, 0);
    assert_eq!(clicks(&ws), 0);
    drop(daemon);
}

#[tokio::test(flavor = "multi_thread")]
async fn page_classes_from_the_config_replace_the_defaults() {
    let ws = Workspace::new(&config("").replace(
        "[scoring]\ndebounce = \"100ms\"",
        "[scoring]\ndebounce = \"100ms\"\n[scoring.page_classes]\npricing = [\"/tarifs%\"]\nproduct = [\"/produit%\"]",
    ));
    let daemon = ws.start();
    let now = oie::clock::now_ms();
    let page = |visitor: &str, path: &str| {
        json!({"v": 1, "events": [{"eventId": format!("{visitor}-1"), "type": "pageview", "timestamp": now - 1000,
            "sessionId": format!("{visitor}-s"), "visitorId": visitor, "url": format!("https://acme.example{path}"), "path": path}]})
    };
    assert_eq!(
        post(&daemon.base, &page("fr", "/tarifs/pro").to_string(), None)
            .await
            .0,
        202
    );
    assert_eq!(
        post(&daemon.base, &page("en", "/pricing").to_string(), None)
            .await
            .0,
        202
    );
    let db = rusqlite::Connection::open(ws.path("data/oie.db")).unwrap();
    let visits = |v: &str| -> Option<i64> {
        db.query_row(
            "SELECT pricingPageVisits FROM lead_profiles WHERE visitorId = ?1",
            [v],
            |r| r.get(0),
        )
        .ok()
    };
    let start = Instant::now();
    while visits("fr").is_none() || visits("en").is_none() {
        assert!(start.elapsed() < Duration::from_secs(10), "not scored");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let classes: Vec<(String, String)> = db
        .prepare("SELECT pageClass, pattern FROM page_classes ORDER BY 1, 2")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        classes,
        [("pricing", "/tarifs%"), ("product", "/produit%")]
            .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    assert_eq!(visits("fr"), Some(1), "/tarifs is pricing now");
    assert_eq!(
        visits("en"),
        Some(0),
        "the default /pricing% pattern was replaced"
    );
    drop(daemon);

    let bad = Workspace::new(&config("").replace(
        "[scoring]\ndebounce = \"100ms\"",
        "[scoring]\n[scoring.page_classes]\npricing = [\"\"]",
    ));
    let out = String::from_utf8(bad.oie(&["check"]).stdout).unwrap();
    assert!(
        out.contains("[scoring.page_classes]: a pattern is empty"),
        "{out}"
    );
}

/// The databases (with their WAL and shared-memory files) and the file connector's output hold
/// personal data: only their owner may read them.
#[tokio::test(flavor = "multi_thread")]
async fn files_holding_personal_data_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let ws = Workspace::new(&config(""));
    let daemon = ws.start();
    let (status, _, _) = post(
        &daemon.base,
        &hot_journey("ab3f9", oie::clock::now_ms()).to_string(),
        None,
    )
    .await;
    assert_eq!(status, 202);
    let out = ws.path("data/out.jsonl");
    common::wait_until("the alert", 10, || common::read(&out).contains("ab3f9")).await;
    for name in [
        "oie.db",
        "oie.db-wal",
        "oie.db-shm",
        "outbox.db",
        "outbox.db-wal",
        "outbox.db-shm",
        "out.jsonl",
    ] {
        let mode = std::fs::metadata(ws.path(&format!("data/{name}")))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{name}: {mode:o}");
    }
}
