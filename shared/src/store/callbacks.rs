//! Transitions of a custom step whose executor accepted the work: the
//! attempt's one-time callback token, the wait in `awaiting` (no worker
//! holds the step), the callback taken once, and the attempt resumed by
//! the delivery the callback (or the deadline) wakes.

use super::runs::Driver;
use super::status::StepStatus;
use super::steps::Lease;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

/// Arms the attempt's callback token before the executor is called, so a
/// callback that beats the attempt's own commit is still taken. False when
/// the attempt no longer holds the step.
pub async fn expect_callback(
    ex: impl PgExecutor<'_>,
    run_id: Uuid,
    step: &str,
    attempt: i32,
    token_hash: &[u8],
) -> sqlx::Result<bool> {
    let done = sqlx::query!(
        "UPDATE workflow_steps SET callback_token_hash = $4, callback = NULL, awaiting_until = NULL
         WHERE run_id = $1 AND name = $2 AND attempts = $3 AND status = 'running' AND attempt_open",
        run_id,
        step,
        attempt,
        token_hash
    )
    .execute(ex)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Where an accepted attempt stands after [`await_callback`].
#[derive(Debug)]
pub enum Awaited {
    /// The step waits for the callback until the deadline; no worker
    /// holds it.
    Waiting,
    /// The executor called back before the attempt committed its wait:
    /// its report, for the attempt to apply now.
    Reported(Value),
    /// A later attempt holds the step.
    Fenced,
}

/// Leaves an accepted attempt waiting for its callback until `deadline`,
/// fenced by its lease, with a line in the provision log.
pub async fn await_callback(
    tx: &mut PgConnection,
    run_id: Uuid,
    position: i32,
    lease: Lease,
    deadline: DateTime<Utc>,
    log: (Option<Uuid>, &str),
) -> sqlx::Result<Awaited> {
    let (tenant_id, message) = log;
    let waiting = sqlx::query_scalar!(
        r#"WITH waits AS (
               UPDATE workflow_steps SET status = 'awaiting', attempt_open = false,
                      awaiting_until = $4
               WHERE run_id = $1 AND position = $2 AND attempts = $3 AND status = 'running'
                 AND attempt_open AND callback IS NULL
               RETURNING name),
           logged AS (
               INSERT INTO tenant_provision_logs (id, tenant_id, run_id, step, status, message)
               SELECT $5, $6, $1, name, 'waiting', $7 FROM waits)
           SELECT count(*) AS "n!" FROM waits"#,
        run_id,
        position,
        lease.attempt,
        deadline,
        Uuid::now_v7(),
        tenant_id,
        message
    )
    .fetch_one(&mut *tx)
    .await?;
    if waiting == 1 {
        return Ok(Awaited::Waiting);
    }
    let reported = sqlx::query_scalar!(
        "SELECT callback FROM workflow_steps
         WHERE run_id = $1 AND position = $2 AND attempts = $3 AND status = 'running'
           AND attempt_open",
        run_id,
        position,
        lease.attempt
    )
    .fetch_optional(&mut *tx)
    .await?;
    Ok(match reported {
        Some(Some(report)) => Awaited::Reported(report),
        _ => Awaited::Fenced,
    })
}

/// A callback taken: the step it reported on.
#[derive(Debug)]
pub struct Taken {
    pub run_id: Uuid,
    pub position: i32,
    pub attempt: i32,
    /// `awaiting`: the callback must wake the run; `running`: the attempt
    /// that armed the token has not committed its wait and applies it.
    pub status: StepStatus,
}

/// Records an executor's report against the token's attempt and spends
/// the token. `None`: no attempt expects this token (never issued, used
/// already, or the attempt is over).
pub async fn take_callback(
    ex: impl PgExecutor<'_>,
    token_hash: &[u8],
    report: &Value,
) -> sqlx::Result<Option<Taken>> {
    sqlx::query_as!(
        Taken,
        r#"UPDATE workflow_steps SET callback = $2, callback_token_hash = NULL
           WHERE callback_token_hash = $1 AND status IN ('running', 'awaiting')
           RETURNING run_id, position, attempts AS attempt, status AS "status: StepStatus""#,
        token_hash,
        report
    )
    .fetch_optional(ex)
    .await
}

/// Whether a wake-up job for this attempt still has a step to wake: the
/// attempt awaits, or the delivery that resumed it was lost with its worker.
pub async fn still_awaits(
    ex: impl PgExecutor<'_>,
    run_id: Uuid,
    position: i32,
    attempt: i32,
) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM workflow_steps
                          WHERE run_id = $1 AND position = $2 AND attempts = $3
                            AND status IN ('awaiting', 'running')) AS "x!""#,
        run_id,
        position,
        attempt
    )
    .fetch_one(ex)
    .await
}

/// An awaiting attempt taken up again by the run's driver.
#[derive(Debug)]
pub struct Resumed {
    pub attempt: i32,
    pub lost: i32,
    /// The executor's report; none when the deadline passed without one.
    pub callback: Option<Value>,
}

/// Takes an awaiting attempt up again once its callback came or its
/// deadline passed, under the driver's epoch; `None` when neither has
/// happened, another delivery drives the run, or it was cancelled.
pub async fn resume_awaiting(
    ex: impl PgExecutor<'_>,
    run_id: Uuid,
    position: i32,
    driver: Driver,
) -> sqlx::Result<Option<Resumed>> {
    sqlx::query_as!(
        Resumed,
        "WITH run AS (
             SELECT 1 FROM workflow_runs
             WHERE id = $1 AND driver_epoch = $3 AND status = 'running' AND cancel_requested IS NULL)
         UPDATE workflow_steps SET status = 'running', attempt_open = true,
                callback_token_hash = NULL, awaiting_until = NULL
         WHERE run_id = $1 AND position = $2 AND status = 'awaiting'
           AND (callback IS NOT NULL OR awaiting_until <= now())
           AND EXISTS (SELECT 1 FROM run)
         RETURNING attempts AS attempt, lost_attempts AS lost, callback",
        run_id,
        position,
        driver.epoch
    )
    .fetch_optional(ex)
    .await
}

/// The awaiting step of a run, if one waits: an operator's cancel wakes it.
pub async fn awaiting_step(
    ex: impl PgExecutor<'_>,
    run_id: Uuid,
) -> sqlx::Result<Option<(i32, i32)>> {
    let row = sqlx::query!(
        "SELECT position, attempts FROM workflow_steps WHERE run_id = $1 AND status = 'awaiting'",
        run_id
    )
    .fetch_optional(ex)
    .await?;
    Ok(row.map(|r| (r.position, r.attempts)))
}
