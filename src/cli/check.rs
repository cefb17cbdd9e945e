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
            println!(
                "{}: OK — {} route(s), {} connector(s): {}; store sqlite in {}",
                path.display(),
                loaded.router.routes().len(),
                names.len(),
                names.join(", "),
                loaded.data_dir.display()
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
