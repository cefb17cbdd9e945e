use std::path::Path;
use std::process::ExitCode;

use crate::config;

/// Prints every problem with file:line and exits 1, or a one-line summary and exits 0.
pub fn check(path: &Path) -> anyhow::Result<ExitCode> {
    match config::load(path) {
        Ok(loaded) => {
            for warning in loaded.warnings() {
                println!("warning: {warning}");
            }
            let names: Vec<String> = loaded
                .connectors
                .values()
                .map(|h| format!("{} ({})", h.name, h.connector.kind()))
                .collect();
            let store = &loaded.config.store;
            let store = match store.kind {
                config::StoreKind::Sqlite => {
                    format!("store sqlite in {}", loaded.data_dir.display())
                }
                config::StoreKind::Bigquery => format!(
                    "store bigquery {}.{}{} (outbox in {})",
                    store.project.as_deref().unwrap_or("?"),
                    store.dataset,
                    store
                        .endpoint
                        .as_deref()
                        .map(|e| format!(" at {e}"))
                        .unwrap_or_default(),
                    loaded.data_dir.display()
                ),
            };
            println!(
                "{}: OK — {} route(s), {} connector(s): {}; {store}",
                path.display(),
                loaded.router.routes().len(),
                names.len(),
                names.join(", "),
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(problems) => {
            for p in &problems {
                println!("{p}");
            }
            println!("{} problem(s) found", problems.len());
            Ok(ExitCode::FAILURE)
        }
    }
}
