//! Test harness: a local receiver that misbehaves like real endpoints do, and a real `oie`
//! process started on port 0 in a temporary folder.
#![allow(dead_code)]

pub mod pubsub;
pub mod scoring;
pub mod slack_fake;
pub mod warehouse;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;

/// What a receiver path does, by the number of the request on that path (0-based).
#[derive(Clone)]
pub enum Behaviour {
    Ok,
    /// `n` times 503, then 200.
    FailThenOk(usize),
    /// 429 with `Retry-After: secs` once, then 200.
    ThrottleOnce(u64),
    Status(u16),
    /// Sleep, then 200.
    Slow(Duration),
    Redirect,
    /// 422 until the switch is turned on, then 200.
    Switch(Arc<std::sync::atomic::AtomicBool>),
    /// `status` to the first `n` requests of every message (by `webhook-id`), then 200.
    FailEachThenOk(u16, usize),
    /// `status` until the switch is turned on, then 200.
    StatusUntil(u16, Arc<std::sync::atomic::AtomicBool>),
}

#[derive(Debug, Clone)]
pub struct Hit {
    pub at: Instant,
    pub path: String,
    pub headers: HeaderMap,
    pub body: serde_json::Value,
}

impl Hit {
    pub fn id(&self) -> String {
        self.headers["webhook-id"].to_str().unwrap().to_string()
    }
    pub fn visitor(&self) -> String {
        self.body["data"]["lead"]["visitorId"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

#[derive(Clone, Default)]
struct Shared {
    behaviours: Arc<Mutex<HashMap<String, Behaviour>>>,
    counts: Arc<Mutex<HashMap<String, usize>>>,
    hits: Arc<Mutex<Vec<Hit>>>,
}

impl Shared {
    /// Requests seen before this one on `path` carrying this `webhook-id`.
    fn seen_message(&self, path: &str, headers: &HeaderMap) -> usize {
        let id = headers
            .get("webhook-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        self.hits
            .lock()
            .unwrap()
            .iter()
            .filter(|h| {
                h.path == path
                    && h.headers.get("webhook-id").and_then(|v| v.to_str().ok()) == Some(id)
            })
            .count()
    }
}

pub struct Receiver {
    pub base: String,
    shared: Shared,
}

impl Receiver {
    pub async fn start(behaviours: &[(&str, Behaviour)]) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Receiver::serve(listener, behaviours)
    }

    /// A receiver on `addr` (a port reserved earlier with [`free_addr`]): one that was down and
    /// comes up.
    pub async fn start_at(addr: &str, behaviours: &[(&str, Behaviour)]) -> Receiver {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        Receiver::serve(listener, behaviours)
    }

    fn serve(listener: tokio::net::TcpListener, behaviours: &[(&str, Behaviour)]) -> Receiver {
        let shared = Shared::default();
        for (path, b) in behaviours {
            shared
                .behaviours
                .lock()
                .unwrap()
                .insert(path.to_string(), b.clone());
        }
        let app = Router::new()
            .route("/{path}", post(handle))
            .with_state(shared.clone());
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver {
            base: format!("http://{addr}"),
            shared,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.base)
    }

    pub fn hits(&self, path: &str) -> Vec<Hit> {
        self.shared
            .hits
            .lock()
            .unwrap()
            .iter()
            .filter(|h| h.path == path)
            .cloned()
            .collect()
    }

    /// Requests answered with a 2xx.
    pub fn accepted(&self, path: &str) -> Vec<Hit> {
        self.hits(path)
            .into_iter()
            .filter(|h| h.headers.contains_key("x-accepted"))
            .collect()
    }

    pub async fn wait_for(&self, what: &str, timeout: Duration, done: impl Fn(&Receiver) -> bool) {
        let start = Instant::now();
        while !done(self) {
            assert!(start.elapsed() < timeout, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn handle(
    State(s): State<Shared>,
    UrlPath(path): UrlPath<String>,
    mut headers: HeaderMap,
    body: Bytes,
) -> Response {
    let n = {
        let mut counts = s.counts.lock().unwrap();
        let c = counts.entry(path.clone()).or_default();
        *c += 1;
        *c - 1
    };
    let behaviour = s
        .behaviours
        .lock()
        .unwrap()
        .get(&path)
        .cloned()
        .unwrap_or(Behaviour::Ok);
    let at = Instant::now();
    let response = match behaviour {
        Behaviour::Ok => StatusCode::OK.into_response(),
        Behaviour::FailThenOk(k) if n < k => StatusCode::SERVICE_UNAVAILABLE.into_response(),
        Behaviour::FailThenOk(_) => StatusCode::OK.into_response(),
        Behaviour::ThrottleOnce(secs) if n == 0 => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", secs.to_string())],
            "slow down",
        )
            .into_response(),
        Behaviour::ThrottleOnce(_) => StatusCode::OK.into_response(),
        Behaviour::Status(code) => (StatusCode::from_u16(code).unwrap(), "no").into_response(),
        Behaviour::Slow(d) => {
            tokio::time::sleep(d).await;
            StatusCode::OK.into_response()
        }
        Behaviour::Redirect => (StatusCode::FOUND, [("location", "/elsewhere")]).into_response(),
        Behaviour::Switch(on) if on.load(Ordering::SeqCst) => StatusCode::OK.into_response(),
        Behaviour::Switch(_) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "{\"error\":\"missing field\"}",
        )
            .into_response(),
        Behaviour::FailEachThenOk(status, k) if s.seen_message(&path, &headers) < k => {
            (StatusCode::from_u16(status).unwrap(), "busy").into_response()
        }
        Behaviour::FailEachThenOk(..) => StatusCode::OK.into_response(),
        Behaviour::StatusUntil(_, on) if on.load(Ordering::SeqCst) => {
            StatusCode::OK.into_response()
        }
        Behaviour::StatusUntil(status, _) => {
            (StatusCode::from_u16(status).unwrap(), "not here").into_response()
        }
    };
    if response.status().is_success() {
        headers.insert("x-accepted", "1".parse().unwrap());
    }
    let body = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    s.hits.lock().unwrap().push(Hit {
        at,
        path,
        headers,
        body,
    });
    response
}

/// A loopback address nothing listens on yet (a receiver can come up there later).
pub fn free_addr() -> String {
    let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    socket.local_addr().unwrap().to_string()
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_oie")
}

/// A temporary folder with a config.toml, and the environment its `oie` processes get (tests
/// never change their own process's environment: other tests' threads read it).
pub struct Workspace {
    pub dir: tempfile::TempDir,
    env: std::sync::Mutex<Vec<(String, String)>>,
}

/// Engine and source settings that make tests quick: fast polling, port 0. Ends inside
/// `[sources.leads]`, so a test may add keys of that table.
macro_rules! quick {
    () => {
        r#"
[engine]
log_level = "oie=debug,info"
shutdown_timeout = "5s"

[server]
listen = "127.0.0.1:0"

[sources.leads]
interval = "100ms"
"#
    };
}

/// [`quick!`] with the delivery defaults.
pub const QUICK: &str = quick!();

/// Settings that make tests quick: fast polling, short backoff, port 0.
pub const FAST: &str = concat!(
    quick!(),
    r#"
[delivery]
max_attempts = 5
backoff_base = "100ms"
backoff_max = "400ms"
"#
);

impl Workspace {
    pub fn new(config: &str) -> Workspace {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.toml"), config).unwrap();
        Workspace {
            dir,
            env: Default::default(),
        }
    }

    /// Sets `key` in the environment of every `oie` this workspace starts from now on.
    pub fn env(&self, key: &str, value: impl Into<String>) -> &Workspace {
        self.env
            .lock()
            .unwrap()
            .push((key.to_string(), value.into()));
        self
    }

    /// A command running `oie` with this workspace's environment.
    pub fn command(&self) -> Command {
        let mut command = Command::new(bin());
        command
            .envs(self.env.lock().unwrap().iter().cloned())
            .env_remove("RUST_LOG");
        command
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("config.toml")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs `oie ARGS --config <this config>` to completion.
    pub fn oie(&self, args: &[&str]) -> Output {
        self.command()
            .args(args)
            .arg("--config")
            .arg(self.config())
            .output()
            .unwrap()
    }

    /// Waits until the lead source has seen `visitor` at `level` (so the next import is a new
    /// change, not one folded into this one by the same poll).
    pub async fn seen_at(&self, visitor: &str, level: &str) {
        let path = self.path("data/outbox.db");
        wait_until(&format!("{visitor} seen at {level}"), 20, || {
            rusqlite::Connection::open(&path)
                .and_then(|c| {
                    c.query_row(
                        "SELECT level FROM lead_seen WHERE visitor_id = ?1",
                        [visitor],
                        |r| r.get::<_, String>(0),
                    )
                })
                .is_ok_and(|l| l == level)
        })
        .await;
    }

    /// Imports JSON-lines leads.
    pub fn import(&self, leads: &[serde_json::Value]) {
        let file = self.path(&format!(
            "leads-{}.jsonl",
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        let text: String = leads.iter().map(|l| format!("{l}\n")).collect();
        std::fs::write(&file, text).unwrap();
        let out = self.oie(&["leads", "import", file.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "import failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts `oie run` and waits until it is ready.
    pub fn start(&self) -> Daemon {
        let addr_file = self.path("data/server.addr");
        let _ = std::fs::remove_file(&addr_file);
        let log = std::fs::File::create(self.path(&format!(
            "oie-{}.log",
            COUNTER.fetch_add(1, Ordering::SeqCst)
        )))
        .unwrap();
        let child = self
            .command()
            .args(["run", "--config"])
            .arg(self.config())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let start = Instant::now();
        let addr = loop {
            if let Ok(a) = std::fs::read_to_string(&addr_file) {
                if !a.is_empty() {
                    break a;
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "oie did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        Daemon {
            child,
            base: format!("http://{addr}"),
        }
    }

    /// Every `oie run` log of this workspace, for failure messages.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for entry in std::fs::read_dir(self.dir.path()).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("oie-") && name.ends_with(".log") {
                out.push_str(&format!("--- {name}\n{}", read(&entry.path())));
            }
        }
        out
    }

    /// `oie connectors status --json` for one connector.
    pub fn connector_status(&self, name: &str) -> serde_json::Value {
        self.json_lines(&["connectors", "status", "--json"])
            .into_iter()
            .find(|c| c["connector"] == name)
            .unwrap_or_else(|| panic!("no connector {name} in the status"))
    }

    pub fn dead_letters(&self) -> Vec<serde_json::Value> {
        self.json_lines(&["deadletters", "list", "--json"])
    }

    /// A command that prints one JSON object per line, which must succeed.
    fn json_lines(&self, args: &[&str]) -> Vec<serde_json::Value> {
        let out = self.oie(args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

pub struct Daemon {
    pub child: Child,
    pub base: String,
}

impl Daemon {
    pub async fn get(&self, path: &str) -> (u16, String) {
        let r = reqwest::get(format!("{}{path}", self.base)).await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, then the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        self.child.wait().unwrap()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `done` every 50 ms; fails the test after `secs` seconds.
pub async fn wait_until(what: &str, secs: u64, done: impl Fn() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A hot lead.
/// The quick config, `server` added to `[server]`, routing hot leads to the receiver's `hook`
/// (one attempt: a refusal is a dead letter).
pub fn hot_leads_to_a_webhook(receiver: &Receiver, server: &str) -> String {
    format!(
        "{}\n[[routes]]\nname = \"hot\"\nwhen = 'trigger.kind == \"hot_lead\"'\nto = [\"hook\"]\n\n[connectors.hook]\nkind = \"webhook\"\nurl = \"{}\"\nmax_attempts = 1\n",
        FAST.replace(
            "listen = \"127.0.0.1:0\"\n",
            &format!("listen = \"127.0.0.1:0\"\n{server}")
        ),
        receiver.url("hook")
    )
}

pub fn hot_lead(id: &str) -> serde_json::Value {
    serde_json::json!({"visitorId": id, "email": format!("{id}@example.com"), "firstName": "Test",
                       "company": "Acme", "intentScore": 70, "engagementLevel": "hot"})
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}
