//! The engine's writes to `workflow_steps`, `workflow_runs` and friends.
//! Guards in the WHERE clauses make each transition happen at most once,
//! whatever the number of deliveries of a job.

use landlord_shared::metrics::metrics;
use landlord_shared::model::{ResourceRef, StepRow};
use serde_json::Value;
use sqlx::PgExecutor;
use uuid::Uuid;

pub async fn step_at(
    ex: impl PgExecutor<'_>,
    run_id: Uuid,
    position: i32,
) -> sqlx::Result<Option<StepRow>> {
    sqlx::query_as("SELECT * FROM workflow_steps WHERE run_id = $1 AND position = $2")
        .bind(run_id)
        .bind(position)
        .fetch_optional(ex)
        .await
}

/// A step job apalis re-queued from a dead worker (or after an engine
/// error) is ready and waiting: those have `attempts > 0`.
pub async fn recovered_job_waiting(ex: impl PgExecutor<'_>) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM apalis.jobs WHERE job_type = $1 AND status = 'Pending'
                        AND attempts > 0 AND run_at <= now())",
    )
    .bind(landlord_shared::jobs::STEP_QUEUE)
    .fetch_one(ex)
    .await
}

/// The first step of a run still to run, if any.
pub async fn first_unfinished(ex: impl PgExecutor<'_>, run_id: Uuid) -> sqlx::Result<Option<i32>> {
    sqlx::query_scalar(
        "SELECT min(position) FROM workflow_steps
         WHERE run_id = $1 AND status NOT IN ('completed', 'skipped')",
    )
    .bind(run_id)
    .fetch_one(ex)
    .await
}

/// An attempt just claimed: its number, and how many attempts before it
/// were lost to workers that died running them.
pub struct Claim {
    pub attempt: i32,
    pub lost: i32,
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

/// Takes the run for this delivery; `None` for an unknown run.
pub async fn drive(ex: impl PgExecutor<'_>, run_id: Uuid) -> sqlx::Result<Option<Driver>> {
    let epoch: Option<i64> = sqlx::query_scalar(
        "UPDATE workflow_runs SET driver_epoch = driver_epoch + 1 WHERE id = $1 RETURNING driver_epoch",
    )
    .bind(run_id)
    .fetch_optional(ex)
    .await?;
    Ok(epoch.map(|epoch| Driver { epoch }))
}

const DRIVES_RUN: &str = "EXISTS (SELECT 1 FROM workflow_runs WHERE id = $1 AND driver_epoch = $3)";

/// Starts an attempt; `None` when the step is no longer runnable or a
/// later delivery drives the run. A step whose previous attempt is still open lost
/// that attempt with its worker.
pub async fn claim_attempt(
    ex: impl PgExecutor<'_>,
    run_id: Uuid,
    position: i32,
    driver: Driver,
) -> sqlx::Result<Option<Claim>> {
    let sql = format!(
        "UPDATE workflow_steps SET status = 'running', attempts = attempts + 1,
                lost_attempts = lost_attempts + attempt_open::int, attempt_open = true,
                waiting_for = NULL, started_at = COALESCE(started_at, now())
         WHERE run_id = $1 AND position = $2 AND status IN ('pending', 'running', 'retrying')
           AND {DRIVES_RUN}
         RETURNING attempts, lost_attempts"
    );
    let row: Option<(i32, i32)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(run_id)
        .bind(position)
        .bind(driver.epoch)
        .fetch_optional(ex)
        .await?;
    Ok(row.map(|(attempt, lost)| Claim { attempt, lost }))
}

/// Starts an undo attempt; lost undo attempts are counted like forward
/// ones. `None` when a later delivery drives the run.
pub async fn claim_undo(
    ex: impl PgExecutor<'_>,
    run_id: Uuid,
    position: i32,
    driver: Driver,
) -> sqlx::Result<Option<Claim>> {
    let sql = format!(
        "UPDATE workflow_steps SET status = 'compensating', undo_attempts = undo_attempts + 1,
                undo_lost_attempts = undo_lost_attempts + attempt_open::int, attempt_open = true,
                waiting_for = NULL
         WHERE run_id = $1 AND position = $2 AND {DRIVES_RUN}
         RETURNING undo_attempts, undo_lost_attempts"
    );
    let row: Option<(i32, i32)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(run_id)
        .bind(position)
        .bind(driver.epoch)
        .fetch_optional(ex)
        .await?;
    Ok(row.map(|(attempt, lost)| Claim { attempt, lost }))
}

/// An attempt's lease: the attempt number its claim took. A claim by
/// another worker (after this one was presumed dead) takes a higher number.
#[derive(Debug, Clone, Copy)]
pub struct Lease {
    pub direction: landlord_shared::jobs::Direction,
    pub attempt: i32,
}

/// Fencing: the first statement of every transaction that commits an
/// attempt's outcome. It closes the attempt only if it still holds the
/// step (no later claim, still running), and locks the row until the
/// transaction ends, so a concurrent claim sees the outcome. `false`: a
/// worker that was presumed dead woke up late; it must commit nothing.
pub async fn hold_lease(
    ex: impl PgExecutor<'_>,
    run_id: Uuid,
    position: i32,
    lease: Lease,
) -> sqlx::Result<bool> {
    use landlord_shared::jobs::Direction;
    let sql = match lease.direction {
        Direction::Forward => {
            "UPDATE workflow_steps SET attempt_open = false
             WHERE run_id = $1 AND position = $2 AND attempts = $3
               AND status = 'running' AND attempt_open"
        }
        Direction::Undo => {
            "UPDATE workflow_steps SET attempt_open = false
             WHERE run_id = $1 AND position = $2 AND undo_attempts = $3
               AND status = 'compensating' AND attempt_open"
        }
    };
    let done = sqlx::query(sql)
        .bind(run_id)
        .bind(position)
        .bind(lease.attempt)
        .execute(ex)
        .await?;
    if done.rows_affected() == 0 {
        metrics().fenced_commits.inc();
        tracing::warn!(%run_id, position, attempt = lease.attempt,
            "attempt outcome refused: a later attempt holds the step (this worker was presumed dead)");
    }
    Ok(done.rows_affected() == 1)
}

/// Notes that no worker that has picked the step up so far can run it;
/// true the first time, so the wait is logged once.
pub async fn wait_for_worker(
    ex: impl PgExecutor<'_>,
    run_id: Uuid,
    position: i32,
    why: &str,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE workflow_steps SET waiting_for = $3
         WHERE run_id = $1 AND position = $2 AND waiting_for IS DISTINCT FROM $3",
    )
    .bind(run_id)
    .bind(position)
    .bind(why)
    .execute(ex)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Stores the checkpoint; false when another delivery got there first.
pub async fn complete_step(
    ex: impl PgExecutor<'_>,
    run_id: Uuid,
    position: i32,
    output: &Value,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE workflow_steps SET status = 'completed', output = $3, last_error = NULL,
                attempt_open = false, finished_at = now()
         WHERE run_id = $1 AND position = $2 AND status IN ('pending', 'running', 'retrying')",
    )
    .bind(run_id)
    .bind(position)
    .bind(output)
    .execute(ex)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn set_step_status(
    ex: impl PgExecutor<'_>,
    run_id: Uuid,
    position: i32,
    status: &str,
    error: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE workflow_steps SET status = $3, last_error = $4, attempt_open = false,
                finished_at = CASE WHEN $3 = 'failed' THEN now() ELSE finished_at END
         WHERE run_id = $1 AND position = $2",
    )
    .bind(run_id)
    .bind(position)
    .bind(status)
    .bind(error)
    .execute(ex)
    .await
    .map(drop)
}

/// Moves a run out of `from`; false when it was not there. A run reaching
/// a final status is counted here, where exactly one delivery wins the
/// guarded UPDATE (a rolled-back transaction over-counts, which is rare).
pub async fn transition_run(
    ex: impl PgExecutor<'_>,
    run_id: Uuid,
    from: &str,
    to: &str,
    error: Option<&str>,
) -> sqlx::Result<bool> {
    let kind: Option<String> = sqlx::query_scalar(
        "UPDATE workflow_runs SET status = $3, error = COALESCE($4, error), updated_at = now(),
                finished_at = CASE WHEN $3 IN ('running', 'compensating') THEN NULL ELSE now() END
         WHERE id = $1 AND status = $2 RETURNING kind",
    )
    .bind(run_id)
    .bind(from)
    .bind(to)
    .bind(error)
    .fetch_optional(ex)
    .await?;
    if let Some(kind) = &kind
        && !matches!(to, "running" | "compensating")
    {
        metrics().run_finished(kind, to);
    }
    Ok(kind.is_some())
}

pub async fn set_tenant_status(
    ex: impl PgExecutor<'_>,
    tenant_id: Uuid,
    status: &str,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE tenants SET status = $2, updated_at = now() WHERE id = $1")
        .bind(tenant_id)
        .bind(status)
        .execute(ex)
        .await
        .map(drop)
}

/// Resources named in a checkpoint's `"resources"` array.
pub fn resources_in(output: &Value) -> Vec<ResourceRef> {
    output
        .get("resources")
        .and_then(|r| serde_json::from_value(r.clone()).ok())
        .unwrap_or_default()
}

pub async fn record_resources(
    ex: impl PgExecutor<'_>,
    tenant_id: Uuid,
    run_id: Uuid,
    step: &str,
    resources: &[ResourceRef],
) -> sqlx::Result<()> {
    let kinds: Vec<&str> = resources.iter().map(|r| r.kind.as_str()).collect();
    let names: Vec<&str> = resources.iter().map(|r| r.name.as_str()).collect();
    sqlx::query(
        "INSERT INTO tenant_resources (id, tenant_id, run_id, step, kind, name)
         SELECT gen_random_uuid(), $1, $2, $3, kind, name FROM unnest($4::text[], $5::text[]) AS t(kind, name)
         ON CONFLICT (tenant_id, kind, name) DO UPDATE
            SET deleted_at = NULL, run_id = EXCLUDED.run_id, step = EXCLUDED.step",
    )
    .bind(tenant_id)
    .bind(run_id)
    .bind(step)
    .bind(&kinds)
    .bind(&names)
    .execute(ex)
    .await
    .map(drop)
}

pub async fn mark_resources_deleted(
    ex: impl PgExecutor<'_>,
    tenant_id: Uuid,
    step: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE tenant_resources SET deleted_at = now()
         WHERE tenant_id = $1 AND step = $2 AND deleted_at IS NULL",
    )
    .bind(tenant_id)
    .bind(step)
    .execute(ex)
    .await
    .map(drop)
}
