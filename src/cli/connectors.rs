use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use crate::redact;

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
                .unwrap_or_else(|_| Err(format!("no answer within {CHECK_TIMEOUT:?}")))
        });
        match result {
            Ok(detail) => println!("{} ({kind}): ok — {detail}", handle.name),
            Err(error) => {
                failed += 1;
                println!(
                    "{} ({kind}): FAILED — {}",
                    handle.name,
                    redact::emails(&error)
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
