//! Transitions of `workflow_runs`. Each UPDATE is guarded by the status it
//! leaves, so it happens once whatever the number of deliveries.

use super::status::{RunKind, RunStatus};
use crate::catalogue::Plan;
use crate::metrics::metrics;
use crate::model::{ProvisionParams, Run};
use crate::telemetry::RunTrace;
use sqlx::PgExecutor;
use sqlx::types::Json;
use uuid::Uuid;

// The four readers spell out the same columns: the query macros take a
// literal, and the enum columns need their type named.

pub async fn run_by_id(ex: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Option<Run>> {
    sqlx::query_as!(
        Run,
        r#"SELECT id, workflow_id, kind AS "kind: RunKind", tenant_name, tenant_id,
                  params AS "params: Json<ProvisionParams>", rollback, status AS "status: RunStatus",
                  error, cancel_requested, created_at, updated_at, finished_at,
                  trace_context AS "trace_context: Json<RunTrace>", plan AS "plan: Json<Plan>"
           FROM workflow_runs WHERE id = $1"#,
        id
    )
    .fetch_optional(ex)
    .await
}

pub async fn run_by_workflow_id(ex: impl PgExecutor<'_>, wf: &str) -> sqlx::Result<Option<Run>> {
    sqlx::query_as!(
        Run,
        r#"SELECT id, workflow_id, kind AS "kind: RunKind", tenant_name, tenant_id,
                  params AS "params: Json<ProvisionParams>", rollback, status AS "status: RunStatus",
                  error, cancel_requested, created_at, updated_at, finished_at,
                  trace_context AS "trace_context: Json<RunTrace>", plan AS "plan: Json<Plan>"
           FROM workflow_runs WHERE workflow_id = $1"#,
        wf
    )
    .fetch_optional(ex)
    .await
}

pub async fn latest_run_for_tenant(
    ex: impl PgExecutor<'_>,
    tenant: &str,
) -> sqlx::Result<Option<Run>> {
    sqlx::query_as!(
        Run,
        r#"SELECT id, workflow_id, kind AS "kind: RunKind", tenant_name, tenant_id,
                  params AS "params: Json<ProvisionParams>", rollback, status AS "status: RunStatus",
                  error, cancel_requested, created_at, updated_at, finished_at,
                  trace_context AS "trace_context: Json<RunTrace>", plan AS "plan: Json<Plan>"
           FROM workflow_runs WHERE tenant_name = $1 ORDER BY created_at DESC LIMIT 1"#,
        tenant
    )
    .fetch_optional(ex)
    .await
}

/// The tenant's latest provisioning run.
pub async fn latest_provision_run(
    ex: impl PgExecutor<'_>,
    tenant: &str,
) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar!(
        "SELECT id FROM workflow_runs WHERE tenant_name = $1 AND kind = 'provision'
         ORDER BY created_at DESC LIMIT 1",
        tenant
    )
    .fetch_optional(ex)
    .await
}

/// The status of the run holding a workflow ID, if any.
pub async fn status_of_workflow(
    ex: impl PgExecutor<'_>,
    wf: &str,
) -> sqlx::Result<Option<RunStatus>> {
    sqlx::query_scalar!(
        r#"SELECT status AS "status: RunStatus" FROM workflow_runs WHERE workflow_id = $1"#,
        wf
    )
    .fetch_optional(ex)
    .await
}

/// A run of the tenant that is still moving, as (kind, status).
pub async fn busy_run_of_tenant(
    ex: impl PgExecutor<'_>,
    tenant: &str,
) -> sqlx::Result<Option<(RunKind, RunStatus)>> {
    let row = sqlx::query!(
        r#"SELECT kind AS "kind: RunKind", status AS "status: RunStatus" FROM workflow_runs
           WHERE tenant_name = $1 AND status IN ('running', 'compensating') LIMIT 1"#,
        tenant
    )
    .fetch_optional(ex)
    .await?;
    Ok(row.map(|r| (r.kind, r.status)))
}

/// A run about to be inserted.
pub struct RunInsert<'a> {
    pub workflow_id: &'a str,
    pub kind: RunKind,
    pub tenant_name: &'a str,
    pub tenant_id: Option<Uuid>,
    pub params: &'a ProvisionParams,
    pub rollback: bool,
    /// The resolved plan of a provisioning run, fixed from now on.
    pub plan: Option<&'a Plan>,
}

/// Frees the workflow ID of a provisioning run that was rolled back
/// completely (it keeps its history under `{workflow_id}@{run id}`). The
/// row lock makes a concurrent start wait, then find the new run.
pub async fn release_compensated(ex: impl PgExecutor<'_>, wf: &str) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE workflow_runs SET workflow_id = workflow_id || '@' || id, updated_at = now()
         WHERE workflow_id = $1 AND kind = 'provision' AND status = 'compensated'",
        wf
    )
    .execute(ex)
    .await
    .map(drop)
}

/// Inserts a running run; `None` when the workflow ID is taken. ON
/// CONFLICT waits for a concurrent insert of the same ID to commit, so 50
/// simultaneous starts produce one row and 49 no-ops.
pub async fn insert_run(
    ex: impl PgExecutor<'_>,
    new: &RunInsert<'_>,
) -> sqlx::Result<Option<Uuid>> {
    let params = serde_json::to_value(new.params).map_err(|e| sqlx::Error::Encode(e.into()))?;
    let trace = serde_json::to_value(RunTrace::for_current_span())
        .map_err(|e| sqlx::Error::Encode(e.into()))?;
    let plan = new
        .plan
        .map(serde_json::to_value)
        .transpose()
        .map_err(|e| sqlx::Error::Encode(e.into()))?;
    sqlx::query_scalar!(
        "INSERT INTO workflow_runs (id, workflow_id, kind, tenant_name, tenant_id, params, rollback, status, trace_context, plan)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'running', $8, $9)
         ON CONFLICT (workflow_id) DO NOTHING RETURNING id",
        Uuid::now_v7(),
        new.workflow_id,
        new.kind.as_str(),
        new.tenant_name,
        new.tenant_id,
        params,
        new.rollback,
        trace,
        plan
    )
    .fetch_optional(ex)
    .await
}

/// The right to drive a run: each delivery of a run's job takes the next
/// epoch. A step is claimed only under the run's current epoch, so a
/// worker presumed dead whose job was delivered again can claim nothing
/// when it wakes: the run has one driver, the newest delivery. (apalis
/// records a job's lock asynchronously, after the handler may have
/// started, so the job row cannot serve as this token.)
#[derive(Debug, Clone, Copy)]
pub struct Driver {
    pub epoch: i64,
}

/// Takes the run for this delivery and reads it in the same statement;
/// `None` for an unknown run.
pub async fn drive_run(
    ex: impl PgExecutor<'_>,
    run_id: Uuid,
) -> sqlx::Result<Option<(Run, Driver)>> {
    let row = sqlx::query!(
        r#"UPDATE workflow_runs SET driver_epoch = driver_epoch + 1 WHERE id = $1
           RETURNING id, workflow_id, kind AS "kind: RunKind", tenant_name, tenant_id,
                  params AS "params: Json<ProvisionParams>", rollback, status AS "status: RunStatus",
                  error, cancel_requested, created_at, updated_at, finished_at,
                  trace_context AS "trace_context: Json<RunTrace>", plan AS "plan: Json<Plan>",
                  driver_epoch"#,
        run_id
    )
    .fetch_optional(ex)
    .await?;
    Ok(row.map(|r| {
        let run = Run {
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
        };
        (
            run,
            Driver {
                epoch: r.driver_epoch,
            },
        )
    }))
}

/// Moves a run out of `from`; false when it was not there. A run reaching
/// a final status is counted here, where exactly one delivery wins the
/// guarded UPDATE (a rolled-back transaction over-counts, which is rare).
pub async fn transition_run(
    ex: impl PgExecutor<'_>,
    run_id: Uuid,
    from: RunStatus,
    to: RunStatus,
    error: Option<&str>,
) -> sqlx::Result<bool> {
    let kind = sqlx::query_scalar!(
        r#"UPDATE workflow_runs SET status = $3, error = COALESCE($4, error), updated_at = now(),
                finished_at = CASE WHEN $5 THEN now() END
           WHERE id = $1 AND status = $2 RETURNING kind AS "kind: RunKind""#,
        run_id,
        from.as_str(),
        to.as_str(),
        error,
        to.is_finished()
    )
    .fetch_optional(ex)
    .await?;
    if let Some(kind) = kind
        && to.is_finished()
    {
        metrics().run_finished(kind.as_str(), to.as_str());
    }
    Ok(kind.is_some())
}

/// An operator resumes a failed or cancelled run: it runs again in a new
/// run span, in the trace of whoever resumed it. False when the run was
/// not failed or cancelled.
pub async fn reopen_run(ex: impl PgExecutor<'_>, run_id: Uuid) -> sqlx::Result<bool> {
    let trace = serde_json::to_value(RunTrace::for_current_span())
        .map_err(|e| sqlx::Error::Encode(e.into()))?;
    let done = sqlx::query!(
        "UPDATE workflow_runs SET status = 'running', error = NULL, finished_at = NULL,
                cancel_requested = NULL, updated_at = now(), trace_context = $2
         WHERE id = $1 AND status IN ('failed', 'cancelled')",
        run_id,
        trace
    )
    .execute(ex)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// An operator rolls back a run found in `from`, in a new run span.
pub async fn begin_compensation(
    ex: impl PgExecutor<'_>,
    run_id: Uuid,
    from: RunStatus,
) -> sqlx::Result<bool> {
    let trace = serde_json::to_value(RunTrace::for_current_span())
        .map_err(|e| sqlx::Error::Encode(e.into()))?;
    let done = sqlx::query!(
        "UPDATE workflow_runs SET status = 'compensating', finished_at = NULL, updated_at = now(),
                trace_context = $3
         WHERE id = $1 AND status = $2",
        run_id,
        from.as_str(),
        trace
    )
    .execute(ex)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Asks a running run to stop at its next step boundary; the first answer
/// about compensation stands. False when the run is not running.
pub async fn request_cancel(
    ex: impl PgExecutor<'_>,
    run_id: Uuid,
    compensate: bool,
) -> sqlx::Result<bool> {
    let done = sqlx::query!(
        "UPDATE workflow_runs SET cancel_requested = COALESCE(cancel_requested, $2), updated_at = now()
         WHERE id = $1 AND status = 'running'",
        run_id,
        compensate
    )
    .execute(ex)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Binds an `Idempotency-Key` to a tenant name, or finds the name it is
/// bound to. Waits for a concurrent request with the same key to commit.
pub async fn claim_idempotency_key(
    conn: &mut sqlx::PgConnection,
    key: &str,
    tenant: &str,
) -> sqlx::Result<String> {
    let claimed = sqlx::query_scalar!(
        "INSERT INTO idempotency_keys (key, tenant_name) VALUES ($1, $2)
         ON CONFLICT (key) DO NOTHING RETURNING tenant_name",
        key,
        tenant
    )
    .fetch_optional(&mut *conn)
    .await?;
    match claimed {
        Some(name) => Ok(name),
        None => {
            sqlx::query_scalar!(
                "SELECT tenant_name FROM idempotency_keys WHERE key = $1",
                key
            )
            .fetch_one(&mut *conn)
            .await
        }
    }
}

/// The run a first request with this key started.
pub async fn bind_idempotency_key(
    ex: impl PgExecutor<'_>,
    key: &str,
    run_id: Uuid,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE idempotency_keys SET run_id = $2 WHERE key = $1 AND run_id IS NULL",
        key,
        run_id
    )
    .execute(ex)
    .await
    .map(drop)
}

/// Runs still running or compensating that no queue job can move: every
/// job of theirs is done, or failed for good. The engine keeps one live
/// job per unfinished run, so these were stranded by an acknowledgement
/// the queue made in the wrong place (apalis acks a job by worker name, and
/// records a delivery's lock after its handler has started).
pub async fn runs_without_job(ex: impl PgExecutor<'_>) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar!(
        r#"WITH live AS (
               SELECT convert_from(job, 'UTF8')::jsonb->>'run_id' AS run_id FROM apalis.jobs
               WHERE status IN ('Pending', 'Queued', 'Running')
                  OR (status = 'Failed' AND attempts < max_attempts))
           SELECT r.id AS "id!" FROM workflow_runs r
           WHERE r.status IN ('running', 'compensating')
             AND NOT EXISTS (SELECT 1 FROM live WHERE live.run_id = r.id::text)"#
    )
    .fetch_all(ex)
    .await
}

/// Takes the run's sweep lock for the transaction; false when another
/// worker's sweep holds it.
pub async fn lock_for_sweep(ex: impl PgExecutor<'_>, run_id: Uuid) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT pg_try_advisory_xact_lock(hashtextextended($1::text, 7)) AS "locked!""#,
        run_id.to_string()
    )
    .fetch_one(ex)
    .await
}
