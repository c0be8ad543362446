//! The API's read queries on the master database (the writes go through
//! landlord_shared's start, actions and store), checked at compile time
//! like the store's (`api/sqlx.toml`, `deploy/sqlx.sh`).
//!
//! `query_as!` needs its SQL as one literal, so the run columns are
//! spelled out in each query; `RunFlat` takes them and becomes a `RunRow`.

use crate::cursor::Cursor;
use crate::views::{LogView, ResourceView, RunRow};
use chrono::{DateTime, Utc};
use landlord_shared::catalogue::Plan;
use landlord_shared::model::{ProvisionParams, Run, Tenant};
use landlord_shared::store::{RunKind, RunStatus, TenantStatus};
use landlord_shared::telemetry::RunTrace;
use sqlx::PgExecutor;
use sqlx::types::Json;
use uuid::Uuid;

/// A run row and the name of its first failed step, as one flat row.
struct RunFlat {
    id: Uuid,
    workflow_id: String,
    kind: RunKind,
    tenant_name: String,
    tenant_id: Option<Uuid>,
    params: Json<ProvisionParams>,
    rollback: bool,
    status: RunStatus,
    error: Option<String>,
    cancel_requested: Option<bool>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
    trace_context: Option<Json<RunTrace>>,
    plan: Option<Json<Plan>>,
    failed_step: Option<String>,
}

impl From<RunFlat> for RunRow {
    fn from(r: RunFlat) -> Self {
        RunRow {
            run: Run {
                id: r.id,
                workflow_id: r.workflow_id,
                kind: r.kind,
                tenant_name: r.tenant_name,
                tenant_id: r.tenant_id,
                params: r.params,
                rollback: r.rollback,
                status: r.status,
                error: r.error,
                cancel_requested: r.cancel_requested,
                created_at: r.created_at,
                updated_at: r.updated_at,
                finished_at: r.finished_at,
                trace_context: r.trace_context,
                plan: r.plan,
            },
            failed_step: r.failed_step,
        }
    }
}

pub async fn run(ex: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Option<RunRow>> {
    let row = sqlx::query_as!(
        RunFlat,
        r#"SELECT r.id, r.workflow_id, r.kind AS "kind: RunKind", r.tenant_name, r.tenant_id,
                  r.params AS "params: Json<ProvisionParams>", r.rollback,
                  r.status AS "status: RunStatus", r.error, r.cancel_requested, r.created_at,
                  r.updated_at, r.finished_at, r.trace_context AS "trace_context: Json<RunTrace>",
                  r.plan AS "plan: Json<Plan>",
                  (SELECT s.name FROM workflow_steps s WHERE s.run_id = r.id AND s.status = 'failed'
                   ORDER BY s.position LIMIT 1) AS failed_step
           FROM workflow_runs r WHERE r.id = $1"#,
        id
    )
    .fetch_optional(ex)
    .await?;
    Ok(row.map(RunRow::from))
}

/// Newest first; `limit` rows at most.
pub async fn runs_page(
    ex: impl PgExecutor<'_>,
    status: Option<&str>,
    kind: Option<&str>,
    after: Option<Cursor>,
    limit: i64,
) -> sqlx::Result<Vec<RunRow>> {
    let rows = sqlx::query_as!(
        RunFlat,
        r#"SELECT r.id, r.workflow_id, r.kind AS "kind: RunKind", r.tenant_name, r.tenant_id,
                  r.params AS "params: Json<ProvisionParams>", r.rollback,
                  r.status AS "status: RunStatus", r.error, r.cancel_requested, r.created_at,
                  r.updated_at, r.finished_at, r.trace_context AS "trace_context: Json<RunTrace>",
                  r.plan AS "plan: Json<Plan>",
                  (SELECT s.name FROM workflow_steps s WHERE s.run_id = r.id AND s.status = 'failed'
                   ORDER BY s.position LIMIT 1) AS failed_step
           FROM workflow_runs r
           WHERE ($1::text IS NULL OR r.status = $1) AND ($2::text IS NULL OR r.kind = $2)
             AND ($3::timestamptz IS NULL OR (r.created_at, r.id) < ($3, $4))
           ORDER BY r.created_at DESC, r.id DESC LIMIT $5"#,
        status,
        kind,
        after.map(|c| c.created_at),
        after.map(|c| c.id),
        limit
    )
    .fetch_all(ex)
    .await?;
    Ok(rows.into_iter().map(RunRow::from).collect())
}

pub async fn runs_of_tenant(ex: impl PgExecutor<'_>, name: &str) -> sqlx::Result<Vec<RunRow>> {
    let rows = sqlx::query_as!(
        RunFlat,
        r#"SELECT r.id, r.workflow_id, r.kind AS "kind: RunKind", r.tenant_name, r.tenant_id,
                  r.params AS "params: Json<ProvisionParams>", r.rollback,
                  r.status AS "status: RunStatus", r.error, r.cancel_requested, r.created_at,
                  r.updated_at, r.finished_at, r.trace_context AS "trace_context: Json<RunTrace>",
                  r.plan AS "plan: Json<Plan>",
                  (SELECT s.name FROM workflow_steps s WHERE s.run_id = r.id AND s.status = 'failed'
                   ORDER BY s.position LIMIT 1) AS failed_step
           FROM workflow_runs r WHERE r.tenant_name = $1
           ORDER BY r.created_at DESC, r.id DESC"#,
        name
    )
    .fetch_all(ex)
    .await?;
    Ok(rows.into_iter().map(RunRow::from).collect())
}

/// The newest run of each named tenant.
pub async fn latest_runs(ex: impl PgExecutor<'_>, names: &[String]) -> sqlx::Result<Vec<RunRow>> {
    let rows = sqlx::query_as!(
        RunFlat,
        r#"SELECT DISTINCT ON (r.tenant_name)
                  r.id, r.workflow_id, r.kind AS "kind: RunKind", r.tenant_name, r.tenant_id,
                  r.params AS "params: Json<ProvisionParams>", r.rollback,
                  r.status AS "status: RunStatus", r.error, r.cancel_requested, r.created_at,
                  r.updated_at, r.finished_at, r.trace_context AS "trace_context: Json<RunTrace>",
                  r.plan AS "plan: Json<Plan>",
                  (SELECT s.name FROM workflow_steps s WHERE s.run_id = r.id AND s.status = 'failed'
                   ORDER BY s.position LIMIT 1) AS failed_step
           FROM workflow_runs r WHERE r.tenant_name = ANY($1)
           ORDER BY r.tenant_name, r.created_at DESC, r.id DESC"#,
        names
    )
    .fetch_all(ex)
    .await?;
    Ok(rows.into_iter().map(RunRow::from).collect())
}

/// The newest provisioning run of a tenant name.
pub async fn latest_provision_run(
    ex: impl PgExecutor<'_>,
    name: &str,
) -> sqlx::Result<Option<RunRow>> {
    let row = sqlx::query_as!(
        RunFlat,
        r#"SELECT r.id, r.workflow_id, r.kind AS "kind: RunKind", r.tenant_name, r.tenant_id,
                  r.params AS "params: Json<ProvisionParams>", r.rollback,
                  r.status AS "status: RunStatus", r.error, r.cancel_requested, r.created_at,
                  r.updated_at, r.finished_at, r.trace_context AS "trace_context: Json<RunTrace>",
                  r.plan AS "plan: Json<Plan>",
                  (SELECT s.name FROM workflow_steps s WHERE s.run_id = r.id AND s.status = 'failed'
                   ORDER BY s.position LIMIT 1) AS failed_step
           FROM workflow_runs r WHERE r.tenant_name = $1 AND r.kind = 'provision'
           ORDER BY r.created_at DESC, r.id DESC LIMIT 1"#,
        name
    )
    .fetch_optional(ex)
    .await?;
    Ok(row.map(RunRow::from))
}

pub async fn tenants_page(
    ex: impl PgExecutor<'_>,
    status: Option<&str>,
    after: Option<Cursor>,
    limit: i64,
) -> sqlx::Result<Vec<Tenant>> {
    sqlx::query_as!(
        Tenant,
        r#"SELECT id, name, plan, realm_name, postgres_db, mongo_db, qdrant_collection, storage_path,
                  template_key, template_version,
                  status AS "status: TenantStatus", created_at, updated_at
           FROM tenants
           WHERE ($1::text IS NULL OR status = $1)
             AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3))
           ORDER BY created_at DESC, id DESC LIMIT $4"#,
        status,
        after.map(|c| c.created_at),
        after.map(|c| c.id),
        limit
    )
    .fetch_all(ex)
    .await
}

pub async fn resources(
    ex: impl PgExecutor<'_>,
    tenant_id: Uuid,
) -> sqlx::Result<Vec<ResourceView>> {
    sqlx::query_as!(
        ResourceView,
        "SELECT kind, name, step, deleted_at FROM tenant_resources
         WHERE tenant_id = $1 ORDER BY created_at, id",
        tenant_id
    )
    .fetch_all(ex)
    .await
}

/// The tenant's connections, without their secrets.
pub async fn connections(
    ex: impl PgExecutor<'_>,
    tenant_id: Uuid,
) -> sqlx::Result<Vec<crate::routes::connections::ConnectionView>> {
    sqlx::query_as!(
        crate::routes::connections::ConnectionView,
        r#"SELECT service, host, port, db_name AS database, username AS user, options,
                  secret_ref, NULL::text AS secret
           FROM tenant_connections WHERE tenant_id = $1 ORDER BY service"#,
        tenant_id
    )
    .fetch_all(ex)
    .await
}

/// The live `s3_prefix` resource of a tenant, as (bucket, prefix): the
/// storage step names it `{bucket}/{tenant}/`.
pub async fn storage_prefix(
    ex: impl PgExecutor<'_>,
    tenant_id: Uuid,
) -> sqlx::Result<Option<(String, String)>> {
    let name = sqlx::query_scalar!(
        "SELECT name FROM tenant_resources
         WHERE tenant_id = $1 AND kind = 's3_prefix' AND deleted_at IS NULL
         ORDER BY created_at DESC LIMIT 1",
        tenant_id
    )
    .fetch_optional(ex)
    .await?;
    Ok(name.and_then(|n| {
        n.split_once('/')
            .map(|(bucket, prefix)| (bucket.to_owned(), prefix.to_owned()))
    }))
}

pub async fn logs(ex: impl PgExecutor<'_>, run_id: Uuid) -> sqlx::Result<Vec<LogView>> {
    sqlx::query_as!(
        LogView,
        "SELECT created_at AS at, step, status, message FROM tenant_provision_logs
         WHERE run_id = $1 ORDER BY created_at, id",
        run_id
    )
    .fetch_all(ex)
    .await
}
