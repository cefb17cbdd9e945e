use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;

use crate::store::{
    import_file, import_identities as load_identities, BigQueryStore, IdentityTarget, ImportReport,
    SqliteStore,
};

pub fn import(config: &Path, file: &Path) -> anyhow::Result<ExitCode> {
    let (_, store) = embedded(config)?;
    let report = import_file(&store, file)?;
    Ok(print(file, &report, "lead"))
}

pub fn import_identities(
    config: &Path,
    file: &Path,
    out: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let loaded = super::load(config)?;
    let target: Box<dyn IdentityTarget> = match loaded.config.store.kind {
        crate::config::StoreKind::Bigquery => Box::new(Warehouse::connect(&loaded)?),
        _ => Box::new(SqliteStore::open(&loaded.data_dir.join("oie.db"))?),
    };
    let now = crate::clock::now_ms();
    let done = load_identities(target.as_ref(), file, now)?;
    if let Some(first) = done.guessable.first() {
        eprintln!(
            "warning: {} id(s) can be guessed (\"{first}\" carries about {:.0} bits; fewer than {:.0}): anyone can try every value against /identify and list your prospects. Leave shortId empty to let oie generate ids, or use at least 8 random letters and digits",
            done.guessable.len(),
            crate::store::ids::entropy_bits(first),
            crate::store::ids::MIN_BITS
        );
    }
    if let Some(out) = out {
        write_ids(out, &done.ids)?;
        println!("wrote {} id(s) to {}", done.ids.len(), out.display());
    } else if done.generated > 0 {
        eprintln!(
            "generated {} id(s); run again with --out FILE to write every e-mail and id for your e-mail tool (the same ids come back)",
            done.generated
        );
    }
    let handed = hand_over_identities(loaded, &done.rows, now)?;
    if handed > 0 {
        println!("{handed} identity write(s) handed to the outbox");
    }
    Ok(print(file, &done.report, "identity"))
}

/// BigQuery's `identity_map`, from this synchronous command.
struct Warehouse {
    runtime: tokio::runtime::Runtime,
    store: BigQueryStore,
}

impl Warehouse {
    fn connect(loaded: &crate::config::Loaded) -> anyhow::Result<Warehouse> {
        let runtime = tokio::runtime::Runtime::new()?;
        let store = runtime.block_on(BigQueryStore::connect(&loaded.config.store))?;
        Ok(Warehouse { runtime, store })
    }
}

impl IdentityTarget for Warehouse {
    fn ids_of(
        &self,
        emails: &[String],
    ) -> anyhow::Result<std::collections::HashMap<String, String>> {
        self.runtime.block_on(self.store.ids_of(emails))
    }

    fn write(
        &self,
        rows: &[(serde_json::Map<String, serde_json::Value>, i64)],
    ) -> anyhow::Result<()> {
        self.runtime.block_on(self.store.insert_identities(rows))
    }
}

/// `identity` triggers for the connectors that hold identities (a `cloudflare_kv` connector
/// with `holds = "identities"`), committed to the outbox; a running `oie run` sends them. An
/// identity imported again unchanged adds nothing (its trigger is named by its values).
fn hand_over_identities(
    loaded: crate::config::Loaded,
    rows: &[serde_json::Map<String, serde_json::Value>],
    now: i64,
) -> anyhow::Result<usize> {
    use sha2::{Digest, Sha256};
    if !loaded
        .connectors
        .values()
        .any(|h| h.connector.takes("identity"))
    {
        return Ok(0);
    }
    let pipeline = crate::pipeline::Pipeline {
        router: loaded.router,
        connectors: loaded.connectors,
    };
    let leads: Vec<(crate::lead::Lead, String)> = rows
        .iter()
        .map(|row| {
            let mut lead = row.clone();
            lead.insert("visitorId".into(), row["shortId"].clone());
            let digest = hex::encode(Sha256::digest(
                serde_json::Value::Object(row.clone()).to_string(),
            ));
            (
                crate::lead::Lead::from_json(&lead),
                digest[..32].to_string(),
            )
        })
        .collect();
    let work: Vec<crate::pipeline::Work> = leads
        .iter()
        .map(|(lead, digest)| crate::pipeline::Work {
            lead,
            triggers: vec![crate::routing::Trigger::identity(digest, now)],
            fires: Default::default(),
            crm: Vec::new(),
            snoozed: Default::default(),
            account: None,
        })
        .collect();
    let out = pipeline.route_all(&work, now);
    let outbox = crate::outbox::Outbox::open(&loaded.data_dir.join("outbox.db"))?;
    Ok(outbox.hand_over(&out, now)?.added)
}

/// `email,shortId` for each identity, readable by the owner only (it lists prospects).
fn write_ids(out: &Path, ids: &[(String, String)]) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(out)
        .with_context(|| format!("writing {}", out.display()))?;
    let mut csv = csv::Writer::from_writer(file);
    csv.write_record(["email", "shortId"])?;
    for (email, id) in ids {
        csv.write_record([email, id])?;
    }
    csv.flush()?;
    Ok(())
}

/// The embedded store; a lead import makes no sense on a BigQuery store, whose leads BigQuery
/// scores.
fn embedded(config: &Path) -> anyhow::Result<(crate::config::Loaded, SqliteStore)> {
    let loaded = super::load(config)?;
    if loaded.config.store.kind == crate::config::StoreKind::Bigquery {
        anyhow::bail!(
            "[store] kind = \"bigquery\": leads live in BigQuery, where the scheduled scoring queries build lead_profiles from events; \
             import identities with `oie identities import` (it writes identity_map)"
        );
    }
    let store = SqliteStore::open(&loaded.data_dir.join("oie.db"))?;
    Ok((loaded, store))
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
