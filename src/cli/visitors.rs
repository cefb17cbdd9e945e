use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::clock::now_ms;
use crate::config::StoreKind;
use crate::erasure::Eraser;
use crate::lead::is_id;
use crate::outbox::Outbox;
use crate::pipeline::Pipeline;

/// How long the command waits for a running daemon to answer.
const ANSWER_WITHIN: Duration = Duration::from_secs(30);

/// `oie visitors erase ID`: the same erasure as `DELETE /visitors/{id}`. With a running daemon
/// it asks the daemon (which can drop the visitor's events still queued and deliveries in
/// flight); without one it erases here, and CRM erasures wait in the outbox for `oie run`.
pub fn erase(path: &Path, visitor: &str) -> anyhow::Result<ExitCode> {
    if !is_id(visitor) {
        anyhow::bail!("`{visitor}` is not a visitor id (letters, digits, _ . : -, at most 64)");
    }
    let loaded = super::load(path)?;
    if loaded.config.store.kind == StoreKind::Bigquery {
        return erase_in_bigquery(loaded, visitor);
    }
    let data_dir = loaded.data_dir.clone();
    let report = if crate::daemon::running(&data_dir) {
        ask_daemon(&data_dir, visitor)?
    } else {
        let (store, outbox) = crate::daemon::open(&data_dir)?;
        let eraser = Eraser {
            store,
            outbox,
            pipeline: Arc::new(Pipeline {
                router: loaded.router,
                connectors: loaded.connectors,
            }),
            wake: Arc::new(|| {}),
        };
        eraser.erase(visitor, now_ms())?
    };
    if let Some(error) = report["error"].as_str() {
        anyhow::bail!("the erasure failed: {error}");
    }
    println!("erased {visitor}: {report}");
    Ok(ExitCode::SUCCESS)
}

fn ask_daemon(data_dir: &Path, visitor: &str) -> anyhow::Result<serde_json::Value> {
    let outbox = Outbox::open(&data_dir.join("outbox.db"))?;
    let request = outbox.request_erasure(visitor, now_ms())?;
    let asked = Instant::now();
    loop {
        if let Some(answer) = outbox.take_erasure_answer(&request)? {
            return Ok(serde_json::from_str(&answer)?);
        }
        if asked.elapsed() > ANSWER_WITHIN {
            anyhow::bail!(
                "the running `oie run` did not answer within {}s; the request stays queued and is done when it does",
                ANSWER_WITHIN.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Cloud mode: the request goes to `erasure_requests`, where `oie run` finds it. Without a
/// running daemon this command does one pass itself.
fn erase_in_bigquery(loaded: crate::config::Loaded, visitor: &str) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let store = Arc::new(crate::store::BigQueryStore::connect(&loaded.config.store).await?);
        let hash = crate::erasure::visitor_hash(visitor);
        store.request_erasure(&hash, now_ms()).await?;
        if crate::daemon::running(&loaded.data_dir) {
            println!("asked for the erasure of {visitor}: the running `oie run` does it within a minute (rows BigQuery streamed in the last ~30–90 minutes are deleted once it allows)");
            return Ok(ExitCode::SUCCESS);
        }
        let outbox = Arc::new(Outbox::open(&loaded.data_dir.join("outbox.db"))?);
        let eraser = crate::erasure::CloudEraser {
            store,
            outbox,
            pipeline: Arc::new(Pipeline {
                router: loaded.router,
                connectors: loaded.connectors,
            }),
            wake: Arc::new(|| {}),
        };
        match eraser.erase(&hash).await? {
            crate::erasure::Progress::Done => println!("erased {visitor} from every BigQuery table"),
            crate::erasure::Progress::Waiting => println!(
                "erased {visitor} where BigQuery allows; rows it streamed in the last ~30–90 minutes remain until `oie run` (or this command, later) deletes them"
            ),
        }
        Ok(ExitCode::SUCCESS)
    })
}
