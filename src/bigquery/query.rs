//! Runs one GoogleSQL statement with named parameters and returns its rows as JSON objects:
//! INT64 and TIMESTAMP (as epoch milliseconds) become numbers, BOOL booleans, the rest strings.
//! Waits for long jobs and reads every result page; an error in the answer is an error here,
//! including one that comes back with HTTP 200 (as emulators do).

use std::time::Duration;

use anyhow::Context;
use gcp_bigquery_client::model::data_format_options::DataFormatOptions;
use gcp_bigquery_client::model::error_proto::ErrorProto;
use gcp_bigquery_client::model::field_type::FieldType;
use gcp_bigquery_client::model::get_query_results_parameters::GetQueryResultsParameters;
use gcp_bigquery_client::model::query_parameter::QueryParameter;
use gcp_bigquery_client::model::query_parameter_type::QueryParameterType;
use gcp_bigquery_client::model::query_parameter_value::QueryParameterValue;
use gcp_bigquery_client::model::query_request::QueryRequest;
use gcp_bigquery_client::model::table_row::TableRow;
use gcp_bigquery_client::model::table_schema::TableSchema;
use gcp_bigquery_client::Client;
use serde_json::{Map, Value};

pub type Row = Map<String, Value>;

/// Where queries run and what one may cost.
#[derive(Clone)]
pub struct Warehouse {
    pub client: Client,
    pub project: String,
    pub dataset: String,
    pub location: String,
    /// Each query's `maximumBytesBilled`: a query that would bill more fails instead.
    pub max_bytes_billed: Option<u64>,
}

/// A named query parameter.
pub struct Param(QueryParameter);

impl Param {
    fn scalar(name: &str, kind: &str, value: String) -> Param {
        Param(QueryParameter {
            name: Some(name.to_string()),
            parameter_type: Some(QueryParameterType {
                r#type: kind.to_string(),
                ..Default::default()
            }),
            parameter_value: Some(QueryParameterValue {
                value: Some(value),
                ..Default::default()
            }),
        })
    }

    pub fn int(name: &str, value: i64) -> Param {
        Param::scalar(name, "INT64", value.to_string())
    }

    pub fn string(name: &str, value: &str) -> Param {
        Param::scalar(name, "STRING", value.to_string())
    }

    /// A TIMESTAMP from epoch milliseconds.
    pub fn timestamp(name: &str, ms: i64) -> Param {
        Param::scalar(name, "TIMESTAMP", crate::routing::trigger_rfc3339(ms))
    }

    pub fn strings(name: &str, values: &[&str]) -> Param {
        Param(QueryParameter {
            name: Some(name.to_string()),
            parameter_type: Some(QueryParameterType {
                r#type: "ARRAY".to_string(),
                array_type: Some(Box::new(QueryParameterType {
                    r#type: "STRING".to_string(),
                    ..Default::default()
                })),
                ..Default::default()
            }),
            parameter_value: Some(QueryParameterValue {
                array_values: Some(
                    values
                        .iter()
                        .map(|v| QueryParameterValue {
                            value: Some(v.to_string()),
                            ..Default::default()
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
        })
    }
}

impl Warehouse {
    /// `sql` with `${dataset}` replaced by the configured dataset.
    pub fn sql(&self, sql: &str) -> String {
        sql.replace("${dataset}", &self.dataset)
    }

    /// Runs `sql` (after [`Warehouse::sql`]) and returns every row.
    pub async fn query(&self, sql: &str, params: Vec<Param>) -> anyhow::Result<Vec<Row>> {
        Ok(self.run(sql, params).await?.0)
    }

    /// Runs a DML statement (`DELETE`, `UPDATE`, `MERGE`); returns the rows it changed.
    pub async fn dml(&self, sql: &str, params: Vec<Param>) -> anyhow::Result<i64> {
        Ok(self.run(sql, params).await?.1)
    }

    /// Every row of `sql`'s result, and the rows a DML statement changed.
    async fn run(&self, sql: &str, params: Vec<Param>) -> anyhow::Result<(Vec<Row>, i64)> {
        let mut request = QueryRequest::new(self.sql(sql));
        request.location = Some(self.location.clone());
        request.format_options = Some(DataFormatOptions {
            use_int64_timestamp: Some(true),
        });
        request.maximum_bytes_billed = self.max_bytes_billed.map(|b| b.to_string());
        request.timeout_ms = Some(60_000);
        if !params.is_empty() {
            request.parameter_mode = Some("NAMED".to_string());
            request.query_parameters = Some(params.into_iter().map(|p| p.0).collect());
        }
        let first = self
            .client
            .job()
            .query(&self.project, request)
            .await
            .map_err(anyhow::Error::from)?;
        fail_on(first.errors.as_deref())?;
        let affected = |n: Option<&String>| n.and_then(|n| n.parse::<i64>().ok());
        let mut changed = affected(first.num_dml_affected_rows.as_ref()).unwrap_or(0);
        let mut complete = first.job_complete.unwrap_or(true);
        let mut schema = first.schema;
        let mut rows = first.rows.unwrap_or_default();
        let mut page_token = first.page_token;
        let job = first.job_reference.and_then(|j| j.job_id);
        let mut out = Vec::new();
        loop {
            if complete {
                if let Some(schema) = &schema {
                    out.extend(rows.drain(..).map(|r| convert(schema, r)));
                }
                if page_token.is_none() {
                    return Ok((out, changed));
                }
            }
            let job = job
                .as_deref()
                .context("BigQuery answered without a job id")?;
            if !complete {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            let next = self
                .client
                .job()
                .get_query_results(
                    &self.project,
                    job,
                    GetQueryResultsParameters {
                        format_options: Some(DataFormatOptions {
                            use_int64_timestamp: Some(true),
                        }),
                        location: Some(self.location.clone()),
                        page_token: page_token.take(),
                        timeout_ms: Some(60_000),
                        ..Default::default()
                    },
                )
                .await
                .map_err(anyhow::Error::from)?;
            fail_on(next.errors.as_deref())?;
            changed = affected(next.num_dml_affected_rows.as_ref()).unwrap_or(changed);
            complete = next.job_complete.unwrap_or(true);
            schema = next.schema.or(schema);
            rows = next.rows.unwrap_or_default();
            page_token = next.page_token;
        }
    }
}

fn fail_on(errors: Option<&[ErrorProto]>) -> anyhow::Result<()> {
    match errors.and_then(|e| e.first()) {
        Some(e) => anyhow::bail!(
            "BigQuery: {} ({})",
            e.message.as_deref().unwrap_or("query failed"),
            e.reason.as_deref().unwrap_or("error")
        ),
        None => Ok(()),
    }
}

fn convert(schema: &TableSchema, row: TableRow) -> Row {
    let fields = schema.fields.as_deref().unwrap_or_default();
    let cells = row.columns.unwrap_or_default();
    fields
        .iter()
        .zip(cells)
        .map(|(f, c)| (f.name.clone(), value(&f.r#type, c.value)))
        .collect()
}

/// One cell: the REST API sends scalars as strings.
fn value(kind: &FieldType, cell: Option<Value>) -> Value {
    let Some(Value::String(text)) = cell else {
        return cell.unwrap_or(Value::Null);
    };
    match kind {
        FieldType::Integer | FieldType::Int64 => {
            text.parse::<i64>().map_or(Value::String(text), Value::from)
        }
        // With useInt64Timestamp, microseconds since the epoch.
        FieldType::Timestamp => text
            .parse::<i64>()
            .map(|us| Value::from(us.div_euclid(1000)))
            .unwrap_or(Value::String(text)),
        // BigQuery sends "true"/"false"; its emulator "1"/"0".
        FieldType::Boolean | FieldType::Bool => {
            Value::Bool(text.eq_ignore_ascii_case("true") || text == "1")
        }
        FieldType::Float | FieldType::Float64 => text
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or(Value::String(text), Value::Number),
        _ => Value::String(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_become_typed_json() {
        let s = |t: &str| Some(Value::String(t.to_string()));
        assert_eq!(value(&FieldType::Integer, s("42")), Value::from(42));
        assert_eq!(
            value(&FieldType::Timestamp, s("1795700000123456")),
            Value::from(1_795_700_000_123i64)
        );
        assert_eq!(value(&FieldType::Boolean, s("true")), Value::Bool(true));
        assert_eq!(value(&FieldType::String, s("a")), Value::from("a"));
        assert_eq!(value(&FieldType::String, None), Value::Null);
    }
}
