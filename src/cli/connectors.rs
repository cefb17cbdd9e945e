use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use crate::clock::now_ms;
use crate::config::Loaded;
use crate::outbox::Outbox;
use crate::redact;
use crate::routing::trigger_rfc3339;

/// How long one connector's check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(30);

/// Authenticates with every connector and makes one harmless read call; prints one line per
/// connector and exits 1 if any failed.
pub fn check(path: &Path) -> anyhow::Result<ExitCode> {
    let loaded = super::load(path)?;
    let runtime = tokio::runtime::Runtime::new()?;
    let mut failed = 0;
    for handle in loaded.connectors.values() {
        let kind = handle.connector.kind();
        let result = runtime.block_on(async {
            tokio::time::timeout(CHECK_TIMEOUT, handle.connector.check())
                .await
                .unwrap_or_else(|_| {
                    Err(oie_connectors::Failure::new(
                        oie_connectors::Reason::Timeout,
                        format!("no answer within {CHECK_TIMEOUT:?}"),
                    ))
                })
        });
        match result {
            Ok(detail) => println!("{} ({kind}): ok — {detail}", handle.name),
            Err(error) => {
                failed += 1;
                println!(
                    "{} ({kind}): FAILED — {}",
                    handle.name,
                    redact::emails(&error.to_string())
                );
            }
        }
    }
    if failed > 0 {
        println!("{failed} connector(s) failed");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// Each connector's state, reason, queue, oldest queued delivery and next try, as the running
/// daemon last recorded them.
pub fn status(path: &Path, as_json: bool) -> anyhow::Result<ExitCode> {
    let loaded = super::load(path)?;
    let outbox = Outbox::open(&loaded.data_dir.join("outbox.db"))?;
    let (states, queues) = (outbox.connector_states()?, outbox.queues()?);
    let running = crate::daemon::running(&loaded.data_dir);
    let now = now_ms();
    if as_json {
        for line in crate::api::connectors::report(&loaded.connectors, &outbox, running)? {
            println!("{line}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    if !running {
        eprintln!(
            "no `oie run` is using {}: these are the states it left",
            loaded.data_dir.display()
        );
    }
    println!("CONNECTOR\tKIND\tSTATE\tQUEUED\tOLDEST QUEUED\tNEXT TRY\tDEAD\tREASON");
    for handle in loaded.connectors.values() {
        let name = &handle.name;
        let state = states.get(name);
        let queue = queues.get(name).cloned().unwrap_or_default();
        let label = state.map_or("unknown", |s| s.state.as_str());
        let next_try = state.and_then(|s| s.next_try);
        let reason = match state {
            Some(s) => match (&s.reason, &s.detail) {
                (Some(r), Some(d)) => format!("{r}: {d}"),
                (Some(r), None) => r.clone(),
                _ => "-".into(),
            },
            None => "not started yet".into(),
        };
        println!(
            "{name}\t{}\t{label}\t{}\t{}\t{}\t{}\t{reason}",
            handle.connector.kind(),
            queue.queued,
            queue
                .oldest_queued
                .map(|t| format!("{} ({} ago)", trigger_rfc3339(t), ago(now - t)))
                .unwrap_or_else(|| "-".into()),
            next_try
                .map(|t| format!("in {}", ago(t - now)))
                .unwrap_or_else(|| "-".into()),
            queue.dead,
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Asks the running daemon to probe connector `name` now.
pub fn resume(path: &Path, name: &str) -> anyhow::Result<ExitCode> {
    let loaded: Loaded = super::load(path)?;
    if !loaded.connectors.contains_key(name) {
        let known: Vec<&str> = loaded.connectors.keys().map(String::as_str).collect();
        anyhow::bail!(
            "no connector `{name}` in the config; configured: {}",
            known.join(", ")
        );
    }
    if !crate::daemon::running(&loaded.data_dir) {
        anyhow::bail!(
            "no `oie run` is using {}; a connector is tried afresh when it starts",
            loaded.data_dir.display()
        );
    }
    let outbox = Outbox::open(&loaded.data_dir.join("outbox.db"))?;
    outbox.request_resume(name, now_ms())?;
    let state = outbox.connector_states()?.remove(name);
    match state.filter(|s| s.state != "ok") {
        Some(s) => println!(
            "asked oie to probe `{name}` now (it is {}{})",
            s.state,
            s.reason.map(|r| format!(": {r}")).unwrap_or_default()
        ),
        None => println!("`{name}` is not held; nothing to resume"),
    }
    Ok(ExitCode::SUCCESS)
}

/// `1h 5m`, `40s`, `0s`: a short human duration from milliseconds.
fn ago(ms: i64) -> String {
    let secs = Duration::from_secs((ms.max(0) / 1000) as u64);
    humantime::format_duration(secs).to_string()
}
