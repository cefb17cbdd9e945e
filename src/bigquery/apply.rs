//! `oie bigquery apply`: makes the dataset match `sql/bigquery/schema.sql` — creates what is
//! missing (tables with their partitioning, clustering and expiry, through `tables.insert`,
//! which keeps all three), adds missing columns, corrects clustering and partition expiry,
//! seeds the default page classes and free-mail domains into empty tables — and says what it changed. Run twice,
//! the second run changes nothing. What cannot be changed in place (a column's type, adding
//! partitioning to an existing table) is reported, never forced.

use std::fmt::Write as _;

use gcp_bigquery_client::model::clustering::Clustering;
use gcp_bigquery_client::model::dataset::Dataset;
use gcp_bigquery_client::model::field_type::FieldType;
use gcp_bigquery_client::model::query_request::QueryRequest;
use gcp_bigquery_client::model::query_response::ResultSet;
use gcp_bigquery_client::model::table::Table;
use gcp_bigquery_client::model::table_field_schema::TableFieldSchema;
use gcp_bigquery_client::model::table_schema::TableSchema;
use gcp_bigquery_client::model::time_partitioning::TimePartitioning;
use gcp_bigquery_client::Client;

use super::client::not_found;
use super::schema::{
    rest_type, tables, Column, TableSpec, FREE_MAIL_DOMAINS_SQL, PAGE_CLASSES_SQL, SCHEMA_SQL,
};

const DAY_MS: u64 = 86_400_000;

/// What a run did (or, with `dry_run`, would do).
#[derive(Debug, Default)]
pub struct Report {
    pub changes: Vec<String>,
    /// Differences `apply` cannot fix in place.
    pub problems: Vec<String>,
    pub unchanged: usize,
}

impl Report {
    pub fn render(&self, dry_run: bool) -> String {
        let mut out = String::new();
        let verb = if dry_run { "would " } else { "" };
        for c in &self.changes {
            let _ = writeln!(out, "{verb}{c}");
        }
        for p in &self.problems {
            let _ = writeln!(out, "cannot fix in place: {p}");
        }
        if self.changes.is_empty() && self.problems.is_empty() {
            let _ = writeln!(
                out,
                "nothing to change: the dataset and its {} tables match sql/bigquery/schema.sql",
                self.unchanged
            );
        } else {
            let _ = writeln!(
                out,
                "{} change(s){}, {} table(s) already up to date",
                self.changes.len(),
                if dry_run { " planned" } else { " made" },
                self.unchanged
            );
        }
        out
    }
}

pub async fn apply(
    client: &Client,
    project: &str,
    dataset: &str,
    location: &str,
    dry_run: bool,
) -> anyhow::Result<Report> {
    let specs = tables(SCHEMA_SQL).map_err(anyhow::Error::msg)?;
    let mut report = Report::default();
    let dataset_exists = match client.dataset().get(project, dataset).await {
        Ok(_) => true,
        Err(e) if not_found(&e) => false,
        Err(e) => return Err(e.into()),
    };
    if !dataset_exists {
        report
            .changes
            .push(format!("create dataset {project}:{dataset} in {location}"));
        if !dry_run {
            let mut d = Dataset::new(project, dataset);
            d.location = Some(location.to_string());
            client.dataset().create(d).await?;
        }
    }
    let mut created = Vec::new();
    for spec in &specs {
        let existing = if dataset_exists {
            match client.table().get(project, dataset, &spec.name, None).await {
                Ok(t) => Some(t),
                Err(e) if not_found(&e) => None,
                Err(e) => return Err(e.into()),
            }
        } else {
            None
        };
        match existing {
            None => {
                report
                    .changes
                    .push(format!("create table {}{}", spec.name, describe(spec)));
                if !dry_run {
                    client
                        .table()
                        .create(new_table(project, dataset, spec)?)
                        .await?;
                }
                created.push(spec.name.as_str());
            }
            Some(table) => {
                let before = report.changes.len();
                update(client, project, dataset, spec, table, dry_run, &mut report).await?;
                if report.changes.len() == before {
                    report.unchanged += 1;
                }
            }
        }
    }
    seed(client, project, dataset, &created, dry_run, &mut report).await?;
    Ok(report)
}

fn describe(spec: &TableSpec) -> String {
    let mut parts = Vec::new();
    if let Some(p) = &spec.partition_field {
        parts.push(format!("partitioned by day of {p}"));
    }
    if !spec.clustering.is_empty() {
        parts.push(format!("clustered by {}", spec.clustering.join(", ")));
    }
    if let Some(days) = spec.partition_expiration_days {
        parts.push(format!("partitions expire after {days} days"));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join(", "))
    }
}

fn field(column: &Column, required: bool) -> anyhow::Result<TableFieldSchema> {
    let kind: FieldType = serde_json::from_value(serde_json::Value::String(column.kind.clone()))
        .map_err(|_| anyhow::anyhow!("unknown column type {}", column.kind))?;
    let mut f = TableFieldSchema::new(&column.name, kind);
    f.mode = Some(if required { "REQUIRED" } else { "NULLABLE" }.to_string());
    f.description = column.description.clone();
    Ok(f)
}

fn partitioning(spec: &TableSpec) -> Option<TimePartitioning> {
    spec.partition_field.as_ref().map(|f| TimePartitioning {
        r#type: "DAY".to_string(),
        field: Some(f.clone()),
        expiration_ms: spec
            .partition_expiration_days
            .map(|d| (d * DAY_MS).to_string()),
        ..Default::default()
    })
}

fn new_table(project: &str, dataset: &str, spec: &TableSpec) -> anyhow::Result<Table> {
    let fields = spec
        .columns
        .iter()
        .map(|c| field(c, c.required))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut table = Table::new(project, dataset, &spec.name, TableSchema::new(fields));
    table.time_partitioning = partitioning(spec);
    if !spec.clustering.is_empty() {
        table.clustering = Some(Clustering {
            fields: Some(spec.clustering.clone()),
        });
    }
    Ok(table)
}

fn type_name(kind: &FieldType) -> String {
    let text = serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    rest_type(&text)
}

async fn update(
    client: &Client,
    project: &str,
    dataset: &str,
    spec: &TableSpec,
    mut table: Table,
    dry_run: bool,
    report: &mut Report,
) -> anyhow::Result<()> {
    let mut changed = false;
    let mut fields = table.schema.fields().clone().unwrap_or_default();
    let mut added = Vec::new();
    for column in &spec.columns {
        match fields.iter().find(|f| f.name == column.name) {
            Some(f) if type_name(&f.r#type) != column.kind => {
                report.problems.push(format!(
                    "{}.{} is {} in BigQuery but {} in schema.sql",
                    spec.name,
                    column.name,
                    type_name(&f.r#type),
                    column.kind
                ));
            }
            Some(_) => {}
            None => {
                // BigQuery only lets new columns in as NULLABLE.
                fields.push(field(column, false)?);
                added.push(column.name.clone());
            }
        }
    }
    if !added.is_empty() {
        report.changes.push(format!(
            "add column(s) {} to {}",
            added.join(", "),
            spec.name
        ));
        table.schema = TableSchema::new(fields);
        changed = true;
    }
    let clustering = table
        .clustering
        .as_ref()
        .and_then(|c| c.fields.clone())
        .unwrap_or_default();
    if clustering != spec.clustering {
        report.changes.push(format!(
            "cluster {} by {} (was: {})",
            spec.name,
            if spec.clustering.is_empty() {
                "nothing".to_string()
            } else {
                spec.clustering.join(", ")
            },
            if clustering.is_empty() {
                "none".to_string()
            } else {
                clustering.join(", ")
            }
        ));
        table.clustering = (!spec.clustering.is_empty()).then(|| Clustering {
            fields: Some(spec.clustering.clone()),
        });
        changed = true;
    }
    match (&table.time_partitioning, &spec.partition_field) {
        (None, Some(field)) => report.problems.push(format!(
            "{} is not partitioned; schema.sql partitions it by {field} (recreate the table to partition it)",
            spec.name
        )),
        (Some(current), Some(_)) => {
            let want = spec.partition_expiration_days.map(|d| (d * DAY_MS).to_string());
            let have = current.expiration_ms.clone().filter(|v| v != "0");
            if have != want {
                report.changes.push(format!(
                    "set the partition expiry of {} to {}",
                    spec.name,
                    spec.partition_expiration_days
                        .map(|d| format!("{d} days"))
                        .unwrap_or_else(|| "never".into())
                ));
                let mut p = current.clone();
                p.expiration_ms = want;
                table.time_partitioning = Some(p);
                changed = true;
            }
        }
        _ => {}
    }
    if changed && !dry_run {
        client
            .table()
            .patch(project, dataset, &spec.name, table)
            .await?;
    }
    Ok(())
}

/// A table whose default rows are seeded while it is empty, and the file that seeds it.
const SEEDED: [(&str, &str, &str); 2] = [
    (
        "page_classes",
        PAGE_CLASSES_SQL,
        "the default patterns (sql/bigquery/page_classes.sql)",
    ),
    (
        "free_mail_domains",
        FREE_MAIL_DOMAINS_SQL,
        "the common free-mail providers (sql/bigquery/free_mail_domains.sql)",
    ),
];

/// Seeds each of [`SEEDED`] that is empty (your own rows are kept).
async fn seed(
    client: &Client,
    project: &str,
    dataset: &str,
    created: &[&str],
    dry_run: bool,
    report: &mut Report,
) -> anyhow::Result<()> {
    for (table, sql, what) in SEEDED {
        // A table created (or, in a dry run, to be created) by this run is empty.
        let empty = created.contains(&table) || {
            let count_sql = format!("SELECT COUNT(*) AS n FROM `{dataset}.{table}`");
            let mut rs = ResultSet::new_from_query_response(
                client
                    .job()
                    .query(project, QueryRequest::new(count_sql))
                    .await?,
            );
            let n = if rs.next_row() {
                rs.get_i64(0)?.unwrap_or(0)
            } else {
                0
            };
            n == 0
        };
        if empty {
            report.changes.push(format!("seed {table} with {what}"));
            if !dry_run {
                let sql = sql.replace("${dataset}", dataset);
                client.job().query(project, QueryRequest::new(sql)).await?;
            }
        }
    }
    Ok(())
}

/// The scheduled queries to install, and how (BigQuery runs them, not `oie`).
pub fn scheduled_queries(project: &str, dataset: &str, location: &str) -> String {
    format!(
        r#"Scheduled queries to install (BigQuery runs them; oie reads their results):
  "oie scoring"         every 15 minutes: queries/1_sessions.sql, 2_lead_profiles.sql, 7_level_changes.sql, 6_account_profiles.sql, 3_hot_lead_alerts.sql, in this order
  "oie crm sync state"  every 15 minutes: queries/5_crm_sync_state.sql
  (queries/4_personalization_export.sql is read on demand)
With the Google Cloud SDK, from the repository root:
  sub() {{ sed -e "s/\${{dataset}}/{dataset}/g" -e 's/@now/@run_time/g' "$1"; }}
  scoring=$(for q in 1_sessions 2_lead_profiles 7_level_changes 6_account_profiles 3_hot_lead_alerts; do sub sql/bigquery/queries/$q.sql; done)
  bq mk --transfer_config --project_id={project} --location={location} --data_source=scheduled_query \
    --display_name="oie scoring" --schedule="every 15 minutes" --params="$(jq -n --arg q "$scoring" '{{query: $q}}')"
  bq mk --transfer_config --project_id={project} --location={location} --data_source=scheduled_query \
    --display_name="oie crm sync state" --schedule="every 15 minutes" \
    --params="$(jq -n --arg q "$(sub sql/bigquery/queries/5_crm_sync_state.sql)" '{{query: $q}}')"
"#
    )
}
