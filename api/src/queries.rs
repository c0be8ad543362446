//! The API's read queries on the master database (the writes go through
//! landlord_shared's start and actions).

use crate::cursor::Cursor;
use crate::views::{LogView, ResourceView, RunRow};
use landlord_shared::model::Tenant;
use sqlx::PgExecutor;
use uuid::Uuid;

/// `r.*` plus the first failed step, for RunSummary.
const RUN_COLUMNS: &str = "r.*, (SELECT s.name FROM workflow_steps s
     WHERE s.run_id = r.id AND s.status = 'failed' ORDER BY s.position LIMIT 1) AS failed_step";

pub async fn run(ex: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Option<RunRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {RUN_COLUMNS} FROM workflow_runs r WHERE r.id = $1"
    )))
    .bind(id)
    .fetch_optional(ex)
    .await
}

/// Newest first; `limit` rows at most.
pub async fn runs_page(
    ex: impl PgExecutor<'_>,
    status: Option<&str>,
    kind: Option<&str>,
    after: Option<Cursor>,
    limit: i64,
) -> sqlx::Result<Vec<RunRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {RUN_COLUMNS} FROM workflow_runs r
         WHERE ($1::text IS NULL OR r.status = $1) AND ($2::text IS NULL OR r.kind = $2)
           AND ($3::timestamptz IS NULL OR (r.created_at, r.id) < ($3, $4))
         ORDER BY r.created_at DESC, r.id DESC LIMIT $5"
    )))
    .bind(status)
    .bind(kind)
    .bind(after.map(|c| c.created_at))
    .bind(after.map(|c| c.id))
    .bind(limit)
    .fetch_all(ex)
    .await
}

pub async fn runs_of_tenant(ex: impl PgExecutor<'_>, name: &str) -> sqlx::Result<Vec<RunRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {RUN_COLUMNS} FROM workflow_runs r WHERE r.tenant_name = $1
         ORDER BY r.created_at DESC, r.id DESC"
    )))
    .bind(name)
    .fetch_all(ex)
    .await
}

/// The newest run of each named tenant.
pub async fn latest_runs(ex: impl PgExecutor<'_>, names: &[String]) -> sqlx::Result<Vec<RunRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT DISTINCT ON (r.tenant_name) {RUN_COLUMNS} FROM workflow_runs r
         WHERE r.tenant_name = ANY($1) ORDER BY r.tenant_name, r.created_at DESC, r.id DESC"
    )))
    .bind(names)
    .fetch_all(ex)
    .await
}

/// The newest provisioning run of a tenant name.
pub async fn latest_provision_run(
    ex: impl PgExecutor<'_>,
    name: &str,
) -> sqlx::Result<Option<RunRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {RUN_COLUMNS} FROM workflow_runs r WHERE r.tenant_name = $1 AND r.kind = 'provision'
         ORDER BY r.created_at DESC, r.id DESC LIMIT 1"
    )))
    .bind(name)
    .fetch_optional(ex)
    .await
}

pub async fn tenants_page(
    ex: impl PgExecutor<'_>,
    status: Option<&str>,
    after: Option<Cursor>,
    limit: i64,
) -> sqlx::Result<Vec<Tenant>> {
    sqlx::query_as(
        "SELECT * FROM tenants
         WHERE ($1::text IS NULL OR status = $1)
           AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3))
         ORDER BY created_at DESC, id DESC LIMIT $4",
    )
    .bind(status)
    .bind(after.map(|c| c.created_at))
    .bind(after.map(|c| c.id))
    .bind(limit)
    .fetch_all(ex)
    .await
}

pub async fn resources(
    ex: impl PgExecutor<'_>,
    tenant_id: Uuid,
) -> sqlx::Result<Vec<ResourceView>> {
    sqlx::query_as(
        "SELECT kind, name, step, deleted_at FROM tenant_resources
         WHERE tenant_id = $1 ORDER BY created_at, id",
    )
    .bind(tenant_id)
    .fetch_all(ex)
    .await
}

pub async fn logs(ex: impl PgExecutor<'_>, run_id: Uuid) -> sqlx::Result<Vec<LogView>> {
    sqlx::query_as(
        "SELECT created_at AS at, step, status, message FROM tenant_provision_logs
         WHERE run_id = $1 ORDER BY created_at, id",
    )
    .bind(run_id)
    .fetch_all(ex)
    .await
}
