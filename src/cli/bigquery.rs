use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

use crate::bigquery::{apply, client};
use crate::config::StoreKind;

/// Creates or updates the dataset and tables of `sql/bigquery/schema.sql`; prints what changed
/// (or, with `dry_run`, what would) and the scheduled queries to install. Exit 1 when something
/// differs that cannot be changed in place.
pub fn apply(path: &Path, dry_run: bool) -> anyhow::Result<ExitCode> {
    let loaded = super::load(path)?;
    let store = &loaded.config.store;
    if store.kind != StoreKind::Bigquery {
        anyhow::bail!(
            "[store] kind is not \"bigquery\"; set kind = \"bigquery\", project and dataset in {}",
            path.display()
        );
    }
    let project = store
        .project
        .as_deref()
        .context("[store] project is not set (the Google Cloud project of the dataset)")?;
    let runtime = tokio::runtime::Runtime::new()?;
    let report = runtime.block_on(async {
        let client = client::connect(store).await?;
        apply::apply(&client, project, &store.dataset, &store.location, dry_run).await
    })?;
    print!("{}", report.render(dry_run));
    println!();
    print!(
        "{}",
        apply::scheduled_queries(project, &store.dataset, &store.location)
    );
    Ok(if report.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
