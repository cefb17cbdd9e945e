//! Cloud mode's warehouse: the BigQuery client (`gcp-bigquery-client`) and `oie bigquery apply`,
//! which creates or updates the dataset and tables of `sql/bigquery/schema.sql` idempotently.

pub mod apply;
pub mod client;
pub mod query;
pub mod schema;
