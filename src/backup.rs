//! Online backup and restore of the embedded data dir (`oie backup DIR`, `oie restore DIR`).
//!
//! Each database is copied with SQLite's online backup API in one step, inside one read
//! transaction: a consistent copy even while `oie run` writes (WAL readers never block the
//! writer), never restarted by those writes. The outbox is copied first and the store second,
//! so the store is never older than the outbox: the lead source's position in the outbox never
//! points past what the store holds, and a restore can repeat deliveries (under the same
//! idempotency keys, as at-least-once allows) but never lose one.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;
use rusqlite::{Connection, OpenFlags};

/// The databases of a data dir, in the order they are copied.
pub const FILES: [&str; 2] = ["outbox.db", "oie.db"];

/// What a backup wrote.
#[derive(Debug)]
pub struct Taken {
    pub files: Vec<(PathBuf, u64)>,
    pub seconds: f64,
}

/// Copies the data dir's databases into `dir` (created if needed; existing copies replaced)
/// and checks each copy with `PRAGMA integrity_check`.
pub fn backup(data_dir: &Path, dir: &Path) -> anyhow::Result<Taken> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let started = Instant::now();
    let mut files = Vec::new();
    for name in FILES {
        let from = data_dir.join(name);
        if !from.exists() {
            continue;
        }
        let to = dir.join(name);
        let partial = dir.join(format!("{name}.partial"));
        let _ = std::fs::remove_file(&partial);
        copy(&from, &partial).with_context(|| format!("copying {}", from.display()))?;
        check(&partial)?;
        std::fs::rename(&partial, &to)?;
        files.push((to.clone(), std::fs::metadata(&to)?.len()));
    }
    anyhow::ensure!(
        !files.is_empty(),
        "{} holds no oie databases",
        data_dir.display()
    );
    Ok(Taken {
        files,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// One database, in one backup step (one read transaction on the source).
fn copy(from: &Path, to: &Path) -> anyhow::Result<()> {
    let source = Connection::open(from)?;
    source.busy_timeout(std::time::Duration::from_secs(10))?;
    crate::sqlite::create_private(to)?;
    let mut target = Connection::open(to)?;
    let backup = rusqlite::backup::Backup::new(&source, &mut target)?;
    // -1: every page in one step, so writes meanwhile cannot restart the copy.
    loop {
        match backup.step(-1)? {
            rusqlite::backup::StepResult::Done => break,
            rusqlite::backup::StepResult::Busy | rusqlite::backup::StepResult::Locked => {
                std::thread::sleep(std::time::Duration::from_millis(50))
            }
            _ => {}
        }
    }
    drop(backup);
    // A copy is one self-contained file: no WAL beside it.
    target.execute_batch("PRAGMA journal_mode = DELETE;")?;
    Ok(())
}

/// `PRAGMA integrity_check` must say `ok`.
pub fn check(path: &Path) -> anyhow::Result<()> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let result: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    anyhow::ensure!(
        result == "ok",
        "{} failed its integrity check: {result}",
        path.display()
    );
    Ok(())
}

/// Puts the copies in `dir` in place of the data dir's databases. The caller makes sure no
/// `oie run` holds the data dir. Databases that were there are kept beside, renamed
/// `<name>.replaced-<ms>`; each copy is checked before anything moves.
pub fn restore(dir: &Path, data_dir: &Path, now_ms: i64) -> anyhow::Result<Vec<PathBuf>> {
    let copies: Vec<&str> = FILES
        .iter()
        .copied()
        .filter(|n| dir.join(n).exists())
        .collect();
    anyhow::ensure!(
        !copies.is_empty(),
        "{} is not an oie backup: it holds neither {}",
        dir.display(),
        FILES.join(" nor ")
    );
    for name in &copies {
        check(&dir.join(name))?;
    }
    std::fs::create_dir_all(data_dir)?;
    let mut replaced = Vec::new();
    // Every database goes aside, even one the backup lacks (a store whose daemon never ran
    // has no outbox yet): the data dir becomes what was backed up.
    for name in FILES {
        let live = data_dir.join(name);
        if live.exists() {
            let aside = data_dir.join(format!("{name}.replaced-{now_ms}"));
            std::fs::rename(&live, &aside)?;
            replaced.push(aside);
        }
        for suffix in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(data_dir.join(format!("{name}{suffix}")));
        }
    }
    for name in copies {
        let partial = data_dir.join(format!("{name}.restoring"));
        std::fs::copy(dir.join(name), &partial)?;
        std::fs::rename(&partial, data_dir.join(name))?;
    }
    Ok(replaced)
}
