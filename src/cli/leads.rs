use std::path::Path;
use std::process::ExitCode;

use crate::store::{import_file, SqliteStore};

pub fn import(config: &Path, file: &Path) -> anyhow::Result<ExitCode> {
    let loaded = super::load(config)?;
    let store = SqliteStore::open(&loaded.data_dir.join("oie.db"))?;
    let report = import_file(&store, file)?;
    if !report.ignored_columns.is_empty() {
        eprintln!(
            "ignored columns that are not lead fields: {}",
            report.ignored_columns.join(", ")
        );
    }
    for r in &report.rejected {
        eprintln!("{}: {r}", file.display());
    }
    println!(
        "imported {} lead(s), rejected {} row(s)",
        report.loaded,
        report.rejected.len()
    );
    Ok(if report.rejected.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
