use std::path::Path;
use std::process::ExitCode;

use crate::store::{import_file, import_identities as load_identities, ImportReport, SqliteStore};

pub fn import(config: &Path, file: &Path) -> anyhow::Result<ExitCode> {
    let store = embedded(config)?;
    let report = import_file(&store, file)?;
    Ok(print(file, &report, "lead"))
}

pub fn import_identities(config: &Path, file: &Path) -> anyhow::Result<ExitCode> {
    let store = embedded(config)?;
    let report = load_identities(&store, file, crate::clock::now_ms())?;
    Ok(print(file, &report, "identity"))
}

/// The embedded store; imports make no sense on a BigQuery store, whose leads BigQuery scores.
fn embedded(config: &Path) -> anyhow::Result<SqliteStore> {
    let loaded = super::load(config)?;
    if loaded.config.store.kind == crate::config::StoreKind::Bigquery {
        anyhow::bail!(
            "[store] kind = \"bigquery\": leads and identities live in BigQuery, not in the embedded store; \
             load identities into the identity_map table (e.g. `bq load`) and let the scheduled scoring queries build lead_profiles"
        );
    }
    SqliteStore::open(&loaded.data_dir.join("oie.db"))
}

/// Prints an import's outcome; exit 1 when any row was rejected.
fn print(file: &Path, report: &ImportReport, what: &str) -> ExitCode {
    if !report.ignored_columns.is_empty() {
        eprintln!("ignored columns: {}", report.ignored_columns.join(", "));
    }
    for r in &report.rejected {
        eprintln!("{}: {r}", file.display());
    }
    println!(
        "imported {} {what}(s), rejected {} row(s)",
        report.loaded,
        report.rejected.len()
    );
    if report.rejected.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
