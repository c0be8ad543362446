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
/// transaction, the job that delivers it. For step bodies, which may run
/// again after a crash: the second write is a no-op.
pub async fn insert_event(
    conn: &mut PgConnection,
    tenant_id: Option<Uuid>,
    run_id: Uuid,
    kind: &str,
    payload: &serde_json::Value,
) -> Result<(), OutboxError> {
    write_event(
        conn,
        tenant_id,
        run_id,
        kind,
        payload,
        format!("{run_id}:{kind}"),
    )
    .await
}

/// Writes the event of a run's status transition. The caller's guarded
/// transition happens once per occurrence, and a run can reach the same
/// status again (failed, retried, failed again): each occurrence is its own
/// event, the first keyed `{run}:{type}` like any other.
pub async fn insert_transition_event(
    conn: &mut PgConnection,
    tenant_id: Option<Uuid>,
    run_id: Uuid,
    kind: &str,
    payload: &serde_json::Value,
) -> Result<(), OutboxError> {
    let earlier: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE run_id = $1 AND type = $2")
            .bind(run_id)
            .bind(kind)
            .fetch_one(&mut *conn)
            .await?;
    let key = match earlier {
        0 => format!("{run_id}:{kind}"),
        n => format!("{run_id}:{kind}:{}", n + 1),
    };
    write_event(conn, tenant_id, run_id, kind, payload, key).await
}

/// The event a run writes when it ends in `status` (failures write their
/// own, richer one; completions are written by the run's last step).
pub async fn insert_finished_event(
    conn: &mut PgConnection,
    run: &Run,
    status: &str,
    error: Option<&str>,
) -> Result<(), OutboxError> {
    let provisioning = run.kind == "provision";
    let kind = match (status, provisioning) {
        ("compensated", _) => "tenant.rolled_back",
        ("compensation_failed", _) => "tenant.rollback_failed",
        ("cancelled", true) => "tenant.provisioning_cancelled",
        ("cancelled", false) => "tenant.deprovisioning_cancelled",
        _ => return Ok(()),
    };
    let payload = serde_json::json!({
        "tenantId": run.tenant_id,
        "tenantName": run.tenant_name,
        "runId": run.id,
        "kind": run.kind,
        "status": status,
        "error": error,
    });
    insert_transition_event(conn, run.tenant_id, run.id, kind, &payload).await
}

async fn write_event(
    conn: &mut PgConnection,
    tenant_id: Option<Uuid>,
    run_id: Uuid,
    kind: &str,
    payload: &serde_json::Value,
    key: String,
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
    .bind(key)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(event_id) = inserted {
        push_notify_job(conn, &NotifyJob { event_id }, std::time::Duration::ZERO).await?;
    }
    Ok(())
}
