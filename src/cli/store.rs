use std::path::Path;
use std::process::ExitCode;

use crate::clock::now_ms;
use crate::config::StoreKind;
use crate::outbox::Outbox;

/// `oie backup DIR`: a consistent copy of the data dir's databases, while `oie run` runs.
pub fn backup(config: &Path, dir: &Path) -> anyhow::Result<ExitCode> {
    let loaded = super::load(config)?;
    // Live ingest and delivery go first: the copy takes what CPU is left.
    // SAFETY: setpriority on this process only; a failure leaves the priority as it was.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, 10);
    }
    let taken = crate::backup::backup(&loaded.data_dir, dir)?;
    let bytes: u64 = taken.files.iter().map(|(_, n)| n).sum();
    for (file, size) in &taken.files {
        println!("{}\t{}", file.display(), megabytes(*size));
    }
    println!(
        "backup of {} in {:.1} s: {} in all, integrity checked",
        loaded.data_dir.display(),
        taken.seconds,
        megabytes(bytes)
    );
    // Recorded in the live outbox, for oie_backup_* metrics.
    let outbox = Outbox::open(&loaded.data_dir.join("outbox.db"))?;
    outbox.record_backup(now_ms(), taken.seconds, bytes, &dir.display().to_string())?;
    Ok(ExitCode::SUCCESS)
}

/// `oie restore DIR`: the copies in DIR become the data dir's databases.
pub fn restore(config: &Path, dir: &Path) -> anyhow::Result<ExitCode> {
    let loaded = super::load(config)?;
    if crate::daemon::running(&loaded.data_dir) {
        anyhow::bail!(
            "an `oie run` is using {}; stop it before restoring into it",
            loaded.data_dir.display()
        );
    }
    let replaced = crate::backup::restore(dir, &loaded.data_dir, now_ms())?;
    for r in &replaced {
        println!("kept the replaced database as {}", r.display());
    }
    println!(
        "restored {} into {}; `oie run` delivers what was queued at the backup (deliveries sent after it may be sent again, with the same webhook-id)",
        dir.display(),
        loaded.data_dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `oie store compact`: rebuilds each database file without its free pages, and switches a
/// database made before incremental vacuum to it.
pub fn compact(config: &Path) -> anyhow::Result<ExitCode> {
    let loaded = super::load(config)?;
    if loaded.config.store.kind == StoreKind::Bigquery {
        println!("[store] kind = \"bigquery\": only the outbox is local");
    }
    if crate::daemon::running(&loaded.data_dir) {
        anyhow::bail!(
            "an `oie run` is using {}; compacting rewrites the whole file, so stop it first",
            loaded.data_dir.display()
        );
    }
    for name in crate::backup::FILES {
        let path = loaded.data_dir.join(name);
        if !path.exists() {
            continue;
        }
        let before = std::fs::metadata(&path)?.len();
        let conn = rusqlite::Connection::open(&path)?;
        conn.execute_batch(
            "PRAGMA auto_vacuum = INCREMENTAL; VACUUM; PRAGMA wal_checkpoint(TRUNCATE);",
        )?;
        drop(conn);
        let after = std::fs::metadata(&path)?.len();
        println!(
            "{}: {} → {}",
            path.display(),
            megabytes(before),
            megabytes(after)
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}
