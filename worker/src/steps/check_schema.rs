//! Check-schema step (seed 002's "validate schema"): every tenant table and
//! every performance index exists in the tenant's database or schema, and
//! the database answers. A missing one fails the run permanently, naming it:
//! a tenant with half a schema must not become `active`.

use super::migrate::target;
use super::postgres::single_connection;
use crate::step::{Step, StepCtx, StepError};
use async_trait::async_trait;
use landlord_shared::store::catalog;
use serde_json::{Value, json};

pub struct CheckSchema;

/// The tables of `migrations/tenant/`.
pub const TENANT_TABLES: &[&str] = &[
    "users",
    "schemas",
    "columns",
    "docbasket",
    "document",
    "document_metadata",
    "file_history",
    "operations",
    "operation_dependencies",
    "doc_events",
    "processors",
    "processing_operations",
];

/// Seed 002's performance indexes (`migrations/tenant/20261206000001_documents.sql`).
pub const TENANT_INDEXES: &[&str] = &[
    "idx_documents_basket_id",
    "idx_documents_document_type",
    "idx_documents_status",
    "idx_documents_related_po",
    "idx_file_history_document_id",
    "idx_operations_document_id",
    "idx_operations_operation_type",
    "idx_operations_status",
    "idx_operation_dependencies_operation_id",
    "idx_operation_dependencies_depends_on",
    "idx_doc_events_basket_id",
    "idx_doc_events_event_type",
    "idx_doc_events_document_id",
    "idx_doc_events_event_timestamp",
    "idx_doc_events_status",
    "idx_document_metadata_document_id",
    "idx_document_metadata_key",
    "idx_document_metadata_type",
];

pub(crate) fn missing<'a>(wanted: &[&'a str], found: &[String]) -> Vec<&'a str> {
    wanted
        .iter()
        .filter(|w| !found.iter().any(|f| f == *w))
        .copied()
        .collect()
}

#[async_trait]
impl Step for CheckSchema {
    fn name(&self) -> &'static str {
        "check_schema"
    }

    async fn run(&self, ctx: &StepCtx) -> Result<Value, StepError> {
        let (opts, schema) = target(ctx)?;
        let pool = single_connection(opts).await?;
        let found = async {
            let tables = catalog::tables_in(&pool, schema.as_str()).await?;
            let indexes = catalog::indexes_in(&pool, schema.as_str()).await?;
            Ok::<_, StepError>((tables, indexes))
        }
        .await;
        pool.close().await;
        let (tables, indexes) = found?;
        let (no_tables, no_indexes) = (
            missing(TENANT_TABLES, &tables),
            missing(TENANT_INDEXES, &indexes),
        );
        if !no_tables.is_empty() || !no_indexes.is_empty() {
            return Err(StepError::permanent(format!(
                "schema {schema} is incomplete: missing tables [{}], missing indexes [{}]",
                no_tables.join(", "),
                no_indexes.join(", ")
            )));
        }
        Ok(json!({
            "schema": schema,
            "tables": TENANT_TABLES.len(),
            "indexes": TENANT_INDEXES.len(),
        }))
    }

    /// It only reads.
    async fn compensate(&self, _: &StepCtx, _: Option<&Value>) -> Result<(), StepError> {
        Ok(())
    }
}
