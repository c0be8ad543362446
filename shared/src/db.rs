//! Master-database queries shared by the CLI, the API and the worker.
//! Each takes `impl PgExecutor` so it runs on a pool or inside a transaction.

use crate::jobs::{NotifyJob, push_notify_job};
use crate::model::{Run, StepRow, Tenant};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

pub async fn run_by_id(ex: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Option<Run>> {
    sqlx::query_as("SELECT * FROM workflow_runs WHERE id = $1")
        .bind(id)
        .fetch_optional(ex)
        .await
}

pub async fn run_by_workflow_id(ex: impl PgExecutor<'_>, wf: &str) -> sqlx::Result<Option<Run>> {
    sqlx::query_as("SELECT * FROM workflow_runs WHERE workflow_id = $1")
        .bind(wf)
        .fetch_optional(ex)
        .await
}

pub async fn latest_run_for_tenant(
    ex: impl PgExecutor<'_>,
    tenant: &str,
) -> sqlx::Result<Option<Run>> {
    sqlx::query_as(
        "SELECT * FROM workflow_runs WHERE tenant_name = $1 ORDER BY created_at DESC LIMIT 1",
    )
    .bind(tenant)
    .fetch_optional(ex)
    .await
}

pub async fn steps_of_run(ex: impl PgExecutor<'_>, run_id: Uuid) -> sqlx::Result<Vec<StepRow>> {
    sqlx::query_as("SELECT * FROM workflow_steps WHERE run_id = $1 ORDER BY position")
        .bind(run_id)
        .fetch_all(ex)
        .await
}

pub async fn tenant_by_name(ex: impl PgExecutor<'_>, name: &str) -> sqlx::Result<Option<Tenant>> {
    sqlx::query_as("SELECT * FROM tenants WHERE name = $1")
        .bind(name)
        .fetch_optional(ex)
        .await
}

pub async fn tenant_by_id(ex: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Option<Tenant>> {
    sqlx::query_as("SELECT * FROM tenants WHERE id = $1")
        .bind(id)
        .fetch_optional(ex)
        .await
}

pub async fn insert_provision_log(
    ex: impl PgExecutor<'_>,
    tenant_id: Option<Uuid>,
    run_id: Uuid,
    step: &str,
    status: &str,
    message: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO tenant_provision_logs (id, tenant_id, run_id, step, status, message)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(Uuid::now_v7())
    .bind(tenant_id)
    .bind(run_id)
    .bind(step)
    .bind(status)
    .bind(message)
    .execute(ex)
    .await
    .map(drop)
}

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error("enqueue failed: {0}")]
    Queue(#[from] apalis_postgres::Error),
}

/// Writes an outbox event once per (run, type) and, in the same
/// transaction, the job that delivers it.
pub async fn insert_event(
    conn: &mut PgConnection,
    tenant_id: Option<Uuid>,
    run_id: Uuid,
    kind: &str,
    payload: &serde_json::Value,
) -> Result<(), OutboxError> {
    let inserted: Option<Uuid> = sqlx::query_scalar(
        "INSERT INTO events (id, tenant_id, run_id, type, payload, idempotency_key)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
    )
    .bind(Uuid::now_v7())
    .bind(tenant_id)
    .bind(run_id)
    .bind(kind)
    .bind(payload)
    .bind(format!("{run_id}:{kind}"))
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(event_id) = inserted {
        push_notify_job(conn, &NotifyJob { event_id }, std::time::Duration::ZERO).await?;
    }
    Ok(())
}
