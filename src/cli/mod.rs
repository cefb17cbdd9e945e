//! The command line: one file per subcommand.

mod bigquery;
mod check;
mod connectors;
mod deadletters;
mod leads;
mod logging;
mod routes;
mod run;
mod simulate;
mod store;
mod visitors;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{self, Loaded};

/// Outbound Intent Engine: scores buying intent and routes hot leads to Slack, CRMs and webhooks.
#[derive(Debug, Parser)]
#[command(name = "oie", version, about)]
pub struct Cli {
    /// The config file.
    #[arg(long, global = true, default_value = "config.toml", env = "OIE_CONFIG")]
    pub config: PathBuf,
    /// Log format, overriding `[engine] log_format`.
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<crate::config::LogFormat>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: poll leads, route them, deliver, serve /healthz, /readyz and /metrics.
    Run,
    /// Validate the config and everything it names; print every problem with file:line.
    Check,
    /// Try routes without sending anything.
    #[command(subcommand)]
    Routes(RoutesCommand),
    /// Inspect and re-drive deliveries that failed for good.
    #[command(subcommand)]
    Deadletters(DeadlettersCommand),
    /// Manage lead profiles in the embedded store.
    #[command(subcommand)]
    Leads(LeadsCommand),
    /// Send synthetic visitor journeys through the ingest API (demos, load): 2 in 10 become hot.
    Simulate {
        /// How many visitors.
        #[arg(long, default_value_t = 100)]
        visitors: usize,
        /// Visitors per second at most (default: as fast as the server takes them).
        #[arg(long)]
        rate: Option<f64>,
        /// The ingest API (default: http://<[server] listen>).
        #[arg(long)]
        target: Option<String>,
        /// Prefix of the generated visitor ids.
        #[arg(long, default_value = "sim")]
        prefix: String,
    },
    /// Manage short id → person mappings in the embedded store.
    #[command(subcommand)]
    Identities(IdentitiesCommand),
    /// Work with the configured connectors.
    #[command(subcommand)]
    Connectors(ConnectorsCommand),
    /// Cloud mode's warehouse ([store] kind = "bigquery").
    #[command(subcommand)]
    Bigquery(BigqueryCommand),
    /// Visitors: erasure.
    #[command(subcommand)]
    Visitors(VisitorsCommand),
    /// Copy the data dir's databases to DIR, consistently, while `oie run` runs; each copy is
    /// checked with `PRAGMA integrity_check`.
    Backup { dir: PathBuf },
    /// Replace the data dir's databases with the copies in DIR (refused while `oie run` uses
    /// the data dir; the replaced files are kept beside).
    Restore { dir: PathBuf },
    /// The embedded store's files.
    #[command(subcommand)]
    Store(StoreCommand),
}

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Rewrite the databases without their free pages (and switch databases made by an older
    /// oie to incremental vacuum); needs `oie run` stopped.
    Compact,
}

#[derive(Debug, Subcommand)]
pub enum VisitorsCommand {
    /// Erase a visitor everywhere oie keeps it (the same as `DELETE /visitors/{id}`): events,
    /// sessions, profile, identity, clicks, alerts, sync state, every delivery (one in flight is
    /// not sent), and in cloud mode every BigQuery table; routes with `erasure` triggers tell
    /// CRMs to delete the person.
    Erase { id: String },
}

#[derive(Debug, Subcommand)]
pub enum BigqueryCommand {
    /// Create or update the dataset and tables of sql/bigquery/schema.sql (idempotent) and print
    /// the scheduled queries to install.
    Apply {
        /// Say what would change; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConnectorsCommand {
    /// Authenticate with every connector and make one harmless read call; exit 1 if any fails.
    Check,
    /// Each connector's state (ok, throttled, open, half_open, parked) with its reason, queue,
    /// oldest queued delivery and next probe, as the running `oie run` recorded them.
    Status {
        /// One JSON object per connector instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Ask the running `oie run` to probe a held (parked or open) connector now.
    Resume { name: String },
}

#[derive(Debug, Subcommand)]
pub enum IdentitiesCommand {
    /// Load identities (shortId, email, firstName, lastName, company, title, campaignId,
    /// campaignName) from CSV or JSON lines, so alerts carry the person's name and company. A
    /// row without a shortId gets a random one (65 bits; the same one again for an e-mail
    /// imported before).
    Import {
        file: PathBuf,
        /// Write every imported identity's e-mail and id to this CSV (`email,shortId`), for
        /// the e-mail tool's merge field.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum RoutesCommand {
    /// Show which routes match a lead and the exact payload each connector would receive.
    Test {
        /// A JSON file with one lead profile (lead_profiles columns).
        #[arg(long)]
        lead: PathBuf,
        /// The trigger to simulate.
        #[arg(long, default_value = "hot_lead", value_parser = ["hot_lead", "sync"])]
        trigger: String,
        /// The level before the rise, for hot_lead (default: first seen).
        #[arg(long, value_parser = ["cold", "warm", "hot", "burning"])]
        previous_level: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum DeadlettersCommand {
    /// One line per dead letter.
    List {
        /// Print JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// A dead letter with its payload and every attempt's error, as JSON.
    Show { id: i64 },
    /// Queue dead letters again with a fresh attempt budget.
    Replay {
        /// Dead letter ids.
        ids: Vec<i64>,
        /// Replay every dead letter.
        #[arg(long, conflicts_with = "ids")]
        all: bool,
        /// Say what would be replayed; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Delete dead letters (with their payloads and attempts) older than a duration.
    Purge {
        /// e.g. `30d`: dead letters whose last attempt is older than this go.
        #[arg(long, value_parser = humantime::parse_duration)]
        older_than: std::time::Duration,
        /// Say how many would go; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum LeadsCommand {
    /// Load lead profiles from CSV (with a header) or JSON lines; upsert by visitorId.
    Import { file: PathBuf },
}

/// Runs a parsed command line; prints errors and returns the exit code.
pub fn main(cli: Cli) -> ExitCode {
    let result = match &cli.command {
        Command::Run => run::run(&cli.config, cli.log_format),
        Command::Check => check::check(&cli.config),
        Command::Routes(RoutesCommand::Test {
            lead,
            trigger,
            previous_level,
        }) => routes::test(&cli.config, lead, trigger, previous_level.as_deref()),
        Command::Deadletters(c) => deadletters::run(&cli.config, c),
        Command::Leads(LeadsCommand::Import { file }) => leads::import(&cli.config, file),
        Command::Simulate {
            visitors,
            rate,
            target,
            prefix,
        } => simulate::simulate(&cli.config, *visitors, *rate, target.as_deref(), prefix),
        Command::Connectors(ConnectorsCommand::Check) => connectors::check(&cli.config),
        Command::Connectors(ConnectorsCommand::Status { json }) => {
            connectors::status(&cli.config, *json)
        }
        Command::Connectors(ConnectorsCommand::Resume { name }) => {
            connectors::resume(&cli.config, name)
        }
        Command::Bigquery(BigqueryCommand::Apply { dry_run }) => {
            bigquery::apply(&cli.config, *dry_run)
        }
        Command::Visitors(VisitorsCommand::Erase { id }) => visitors::erase(&cli.config, id),
        Command::Backup { dir } => store::backup(&cli.config, dir),
        Command::Restore { dir } => store::restore(&cli.config, dir),
        Command::Store(StoreCommand::Compact) => store::compact(&cli.config),
        Command::Identities(IdentitiesCommand::Import { file, out }) => {
            leads::import_identities(&cli.config, file, out.as_deref())
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Loads the config for a command other than `check`; problems end the command.
fn load(path: &std::path::Path) -> anyhow::Result<Loaded> {
    config::load(path).map_err(|problems| {
        for p in &problems {
            eprintln!("{p}");
        }
        anyhow::anyhow!(
            "the config has {} problem(s); `oie check` lists them",
            problems.len()
        )
    })
}
