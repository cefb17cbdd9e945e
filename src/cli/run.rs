use std::path::Path;
use std::process::ExitCode;

use crate::daemon;

pub fn run(
    config: &Path,
    log_format: Option<crate::config::LogFormat>,
) -> anyhow::Result<ExitCode> {
    let loaded = super::load(config)?;
    super::logging::init(
        log_format.unwrap_or(loaded.config.engine.log_format),
        &loaded.config.engine.log_level,
    );
    for warning in loaded.warnings() {
        tracing::warn!("{warning}");
    }
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(daemon::run(loaded, shutdown_signal()))?;
    Ok(ExitCode::SUCCESS)
}

/// SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
