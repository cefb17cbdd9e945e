//! The tables of `sql/bigquery/schema.sql` (compiled in), read from its `CREATE TABLE`
//! statements: columns with type, mode and comment, day partitioning, clustering, expiry.

/// The schema file, as shipped with this `oie`.
pub const SCHEMA_SQL: &str = include_str!("../../sql/bigquery/schema.sql");
/// The default page classes, seeded into an empty `page_classes` table.
pub const PAGE_CLASSES_SQL: &str = include_str!("../../sql/bigquery/page_classes.sql");
/// The default free-mail domains, seeded into an empty `free_mail_domains` table.
pub const FREE_MAIL_DOMAINS_SQL: &str = include_str!("../../sql/bigquery/free_mail_domains.sql");

/// One column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    /// The REST API's type name: STRING, INTEGER, BOOLEAN, FLOAT, TIMESTAMP, JSON, …
    pub kind: String,
    pub required: bool,
    pub description: Option<String>,
}

/// One table as the schema file declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSpec {
    pub name: String,
    pub columns: Vec<Column>,
    /// `PARTITION BY DATE(col)`.
    pub partition_field: Option<String>,
    /// `partition_expiration_days`, in days.
    pub partition_expiration_days: Option<u64>,
    pub clustering: Vec<String>,
}

/// GoogleSQL type → the REST API's legacy type name (which tables.get also answers with).
pub fn rest_type(sql: &str) -> String {
    match sql {
        "INT64" => "INTEGER",
        "FLOAT64" => "FLOAT",
        "BOOL" => "BOOLEAN",
        "STRUCT" => "RECORD",
        other => other,
    }
    .to_string()
}

/// Every table of `sql`, in file order.
pub fn tables(sql: &str) -> Result<Vec<TableSpec>, String> {
    let mut out = Vec::new();
    for statement in sql.split(";\n") {
        let Some(start) = statement.find("CREATE TABLE IF NOT EXISTS `${dataset}.") else {
            continue;
        };
        let rest = &statement[start + "CREATE TABLE IF NOT EXISTS `${dataset}.".len()..];
        let name = rest
            .split('`')
            .next()
            .ok_or("a CREATE TABLE without a name")?
            .to_string();
        let mut spec = TableSpec {
            name: name.clone(),
            columns: Vec::new(),
            partition_field: None,
            partition_expiration_days: None,
            clustering: Vec::new(),
        };
        let mut in_columns = false;
        for line in rest.lines() {
            let trimmed = line.trim();
            if !in_columns {
                in_columns = trimmed.ends_with('(');
                continue;
            }
            if line.starts_with(')') {
                break;
            }
            let (code, comment) = match trimmed.split_once("--") {
                Some((c, m)) => (c.trim(), Some(m.trim().to_string())),
                None => (trimmed, None),
            };
            let code = code.trim_end_matches(',').trim();
            if code.is_empty() {
                continue;
            }
            let words: Vec<&str> = code.split_whitespace().collect();
            let [column, kind, ..] = words.as_slice() else {
                return Err(format!("{name}: cannot read the column line `{trimmed}`"));
            };
            spec.columns.push(Column {
                name: column.to_string(),
                kind: rest_type(kind),
                required: code.contains("NOT NULL"),
                description: comment,
            });
        }
        let after = rest.rsplit_once("\n)").map(|(_, a)| a).unwrap_or_default();
        for line in after.lines().map(str::trim) {
            if let Some(col) = line
                .strip_prefix("PARTITION BY DATE(")
                .and_then(|l| l.strip_suffix(')'))
            {
                spec.partition_field = Some(col.to_string());
            } else if let Some(cols) = line.strip_prefix("CLUSTER BY ") {
                spec.clustering = cols.split(',').map(|c| c.trim().to_string()).collect();
            } else if let Some(options) = line.strip_prefix("OPTIONS (") {
                for option in options.trim_end_matches(')').split(',') {
                    if let Some((key, value)) = option.split_once('=') {
                        if key.trim() == "partition_expiration_days" {
                            spec.partition_expiration_days = value.trim().parse().ok();
                        }
                    }
                }
            }
        }
        if spec.columns.is_empty() {
            return Err(format!("{name}: no columns found"));
        }
        out.push(spec);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_table_of_the_shipped_schema() {
        let tables = tables(SCHEMA_SQL).unwrap();
        let names: Vec<&str> = tables.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "events",
                "sessions",
                "lead_profiles",
                "identity_map",
                "email_clicks",
                "hot_lead_alerts",
                "level_changes",
                "crm_sync_log",
                "crm_sync_state",
                "account_profiles",
                "free_mail_domains",
                "page_classes",
                "erasure_requests"
            ]
        );
        let events = &tables[0];
        assert_eq!(events.partition_field.as_deref(), Some("receivedAt"));
        assert_eq!(events.partition_expiration_days, Some(730));
        assert_eq!(events.clustering, ["visitorId", "eventType"]);
        assert_eq!(events.columns.len(), 20);
        let first = &events.columns[0];
        assert_eq!(
            (first.name.as_str(), first.kind.as_str(), first.required),
            ("eventId", "STRING", true)
        );
        let visitor = &events.columns[1];
        assert!(!visitor.required);
        assert!(visitor.description.as_deref().unwrap().contains("short id"));
        let log = tables.iter().find(|t| t.name == "crm_sync_log").unwrap();
        assert!(log
            .columns
            .iter()
            .any(|c| c.name == "success" && c.kind == "BOOLEAN"));
        assert!(log
            .columns
            .iter()
            .any(|c| c.name == "syncedAt" && c.kind == "INTEGER"));
        let profiles = tables.iter().find(|t| t.name == "lead_profiles").unwrap();
        assert_eq!(profiles.partition_field, None);
        assert_eq!(profiles.clustering, ["visitorId"]);
        let identities = tables.iter().find(|t| t.name == "identity_map").unwrap();
        assert_eq!(identities.partition_expiration_days, Some(90));
    }
}
