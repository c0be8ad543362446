//! Transitions of `workflow_steps`: a run's timeline, attempts and their
//! fenced outcomes.

use super::runs::Driver;
use super::status::StepStatus;
use crate::jobs::Direction;
use crate::metrics::metrics;
use crate::model::{ResourceRef, StepRow};
use serde_json::Value;
use sqlx::PgExecutor;
use uuid::Uuid;

pub async fn step_at(
    ex: impl PgExecutor<'_>,
    run_id: Uuid,
    position: i32,
) -> sqlx::Result<Option<StepRow>> {
    sqlx::query_as!(
        StepRow,
        r#"SELECT run_id, position, name, status AS "status: StepStatus", attempts, undo_attempts,
                  output, last_error, started_at, finished_at, compensated_at, needs, waiting_for,
                  lost_attempts, undo_lost_attempts
           FROM workflow_steps WHERE run_id = $1 AND position = $2"#,
        run_id,
        position
    )
    .fetch_optional(ex)
    .await
}

pub async fn steps_of_run(ex: impl PgExecutor<'_>, run_id: Uuid) -> sqlx::Result<Vec<StepRow>> {
    sqlx::query_as!(
        StepRow,
        r#"SELECT run_id, position, name, status AS "status: StepStatus", attempts, undo_attempts,
                  output, last_error, started_at, finished_at, compensated_at, needs, waiting_for,
                  lost_attempts, undo_lost_attempts
           FROM workflow_steps WHERE run_id = $1 ORDER BY position"#,
        run_id
    )
    .fetch_all(ex)
    .await
}

/// One step of a new run's timeline.
pub struct StepInsert<'a> {
    pub name: &'a str,
    pub needs: Option<&'a str>,
    /// Why the run's plan skips the step, if it does.
    pub skipped: Option<String>,
}

/// The checkpoint the tenant's latest provisioning run stored for `step`.
pub async fn provision_checkpoint(
    ex: impl PgExecutor<'_>,
    tenant: &str,
    step: &str,
) -> sqlx::Result<Option<serde_json::Value>> {
    let found = sqlx::query_scalar!(
        "SELECT s.output FROM workflow_steps s JOIN workflow_runs r ON r.id = s.run_id
         WHERE r.tenant_name = $1 AND r.kind = 'provision' AND s.name = $2
         ORDER BY r.created_at DESC LIMIT 1",
        tenant,
        step
    )
    .fetch_optional(ex)
    .await?;
    Ok(found.flatten())
}

/// Writes a new run's whole timeline: skipped steps are final at once.
pub async fn insert_steps(
    ex: impl PgExecutor<'_>,
    run_id: Uuid,
    steps: &[StepInsert<'_>],
) -> sqlx::Result<()> {
    let names: Vec<String> = steps.iter().map(|s| s.name.to_owned()).collect();
    let needs: Vec<Option<String>> = steps.iter().map(|s| s.needs.map(str::to_owned)).collect();
    let skipped: Vec<Option<String>> = steps
        .iter()
        .map(|s| s.skipped.as_ref().map(|r| format!("skipped: {r}")))
        .collect();
    sqlx::query!(
        "INSERT INTO workflow_steps (run_id, position, name, status, needs, last_error, started_at, finished_at)
         SELECT $1, ord::int - 1, name, CASE WHEN skip IS NULL THEN 'pending' ELSE 'skipped' END,
                needs, skip,
                CASE WHEN skip IS NULL THEN NULL ELSE now() END,
                CASE WHEN skip IS NULL THEN NULL ELSE now() END
         FROM unnest($2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS t(name, needs, skip, ord)",
        run_id,
        &names as &[String],
        &needs as &[Option<String>],
        &skipped as &[Option<String>]
    )
    .execute(ex)
    .await
    .map(drop)
}

/// The first step of a run still to run, if any.
pub async fn first_unfinished(ex: impl PgExecutor<'_>, run_id: Uuid) -> sqlx::Result<Option<i32>> {
    sqlx::query_scalar!(
        "SELECT min(position) FROM workflow_steps
         WHERE run_id = $1 AND status NOT IN ('completed', 'skipped')",
        run_id
    )
    .fetch_one(ex)
    .await
}

/// The last step before `before` in one of `statuses`.
pub async fn last_step_in(
    ex: impl PgExecutor<'_>,
    run_id: Uuid,
    before: i32,
    statuses: &[StepStatus],
) -> sqlx::Result<Option<i32>> {
    let statuses: Vec<String> = statuses.iter().map(|s| s.as_str().to_owned()).collect();
    sqlx::query_scalar!(
        "SELECT max(position) FROM workflow_steps
         WHERE run_id = $1 AND position < $2 AND status = ANY($3)",
        run_id,
        before,
        &statuses as &[String]
    )
    .fetch_one(ex)
    .await
}

/// An attempt just claimed: its number, and how many attempts before it
/// were lost to workers that died running them.
pub struct Claim {
    pub attempt: i32,
    pub lost: i32,
}

/// Starts a forward attempt; `None` when the step is no longer runnable,
/// a later delivery drives the run, or an operator asked the run to stop
/// (the caller reads the run to tell). A step whose previous attempt is
/// still open lost that attempt with its worker.
pub async fn claim_attempt(
    ex: impl PgExecutor<'_>,
    run_id: Uuid,
    position: i32,
    driver: Driver,
) -> sqlx::Result<Option<Claim>> {
    let row = sqlx::query!(
        "WITH run AS (
             SELECT 1 FROM workflow_runs
             WHERE id = $1 AND driver_epoch = $3 AND status = 'running' AND cancel_requested IS NULL)
         UPDATE workflow_steps SET status = 'running', attempts = attempts + 1,
                lost_attempts = lost_attempts + attempt_open::int, attempt_open = true,
                waiting_for = NULL, started_at = COALESCE(started_at, now())
         WHERE run_id = $1 AND position = $2 AND status IN ('pending', 'running', 'retrying')
           AND EXISTS (SELECT 1 FROM run)
         RETURNING attempts, lost_attempts",
        run_id,
        position,
        driver.epoch
    )
    .fetch_optional(ex)
    .await?;
    Ok(row.map(|r| Claim {
        attempt: r.attempts,
        lost: r.lost_attempts,
    }))
}

/// Starts an undo attempt; lost undo attempts are counted like forward
/// ones. `None` when a later delivery drives the run.
pub async fn claim_undo(
    ex: impl PgExecutor<'_>,
    run_id: Uuid,
    position: i32,
    driver: Driver,
) -> sqlx::Result<Option<Claim>> {
    let row = sqlx::query!(
        "UPDATE workflow_steps SET status = 'compensating', undo_attempts = undo_attempts + 1,
                undo_lost_attempts = undo_lost_attempts + attempt_open::int, attempt_open = true,
                waiting_for = NULL
         WHERE run_id = $1 AND position = $2
           AND EXISTS (SELECT 1 FROM workflow_runs WHERE id = $1 AND driver_epoch = $3)
         RETURNING undo_attempts, undo_lost_attempts",
        run_id,
        position,
        driver.epoch
    )
    .fetch_optional(ex)
    .await?;
    Ok(row.map(|r| Claim {
        attempt: r.undo_attempts,
        lost: r.undo_lost_attempts,
    }))
}

/// An attempt's lease: the attempt number its claim took. A claim by
/// another worker (after this one was presumed dead) takes a higher number.
#[derive(Debug, Clone, Copy)]
pub struct Lease {
    pub direction: Direction,
    pub attempt: i32,
}

fn fenced(run_id: Uuid, position: i32, lease: Lease) {
    metrics().fenced_commits.inc();
    tracing::warn!(%run_id, position, attempt = lease.attempt,
        "attempt outcome refused: a later attempt holds the step (this worker was presumed dead)");
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
    let undo = lease.direction == Direction::Undo;
    let done = sqlx::query!(
        "UPDATE workflow_steps SET attempt_open = false
         WHERE run_id = $1 AND position = $2 AND attempt_open
           AND CASE WHEN $4 THEN undo_attempts = $3 AND status = 'compensating'
                    ELSE attempts = $3 AND status = 'running' END",
        run_id,
        position,
        lease.attempt,
        undo
    )
    .execute(ex)
    .await?;
    if done.rows_affected() == 0 {
        fenced(run_id, position, lease);
    }
    Ok(done.rows_affected() == 1)
}

/// What a checkpoint that carries the run on writes besides itself.
pub struct CarryOn<'a> {
    pub then: Then,
    /// The log lines (step, message) of the steps skipped after the step.
    pub skipped: &'a [(String, String)],
    /// The resources the step reported, recorded for this tenant.
    pub resources: Option<(Uuid, &'a [ResourceRef])>,
}

/// Where the run goes after a checkpoint written by [`complete_and_carry`].
#[derive(Clone, Copy)]
pub enum Then {
    /// The next step that runs: its attempt is claimed under `driver`.
    Claim { next: i32, driver: Driver },
    /// No step is left: the run completes (guarded by its `running`
    /// status, as [`super::runs::transition_run`]).
    Finish,
    /// Nothing more: the caller claims or queues the next step itself.
    Stop,
}

/// What [`complete_and_carry`] did after the checkpoint.
pub struct Carried {
    /// [`Then::Claim`]: the next step's attempt, `None` when the claim was
    /// refused (an operator's cancel, a later delivery, or a step decided
    /// meanwhile), which the caller's ordinary claim then sorts out.
    pub claim: Option<Claim>,
    /// [`Then::Finish`]: the run completed (false: it had left `running`).
    pub finished: bool,
}

/// The checkpoint of a forward attempt (fenced by its lease, with its
/// success line in the provision log), the log lines of the steps skipped
/// after it and the resources it reported (a resource dropped before is
/// ours again), and then the claim of the next step's attempt (as
/// [`claim_attempt`]) or the run's completion, as [`Then`] says, in one
/// statement: one round trip per step boundary while a worker carries a
/// run on, and one for the last step. `None` (nothing written) when a
/// later attempt holds the step.
pub async fn complete_and_carry(
    ex: impl PgExecutor<'_>,
    run_id: Uuid,
    position: i32,
    lease: Lease,
    output: &Value,
    log: (Option<Uuid>, &str),
    carry: CarryOn<'_>,
) -> sqlx::Result<Option<Carried>> {
    let (tenant_id, message) = log;
    // Log ids are time-ordered: the success line before the skipped ones.
    let success_id = Uuid::now_v7();
    let skip_ids: Vec<Uuid> = carry.skipped.iter().map(|_| Uuid::now_v7()).collect();
    let (skip_steps, skip_messages): (Vec<String>, Vec<String>) =
        carry.skipped.iter().cloned().unzip();
    let (owner, resources) = carry.resources.unwrap_or((Uuid::nil(), &[]));
    let kinds: Vec<String> = resources.iter().map(|r| r.kind.clone()).collect();
    let names: Vec<String> = resources.iter().map(|r| r.name.clone()).collect();
    let (next, epoch, finish) = match carry.then {
        Then::Claim { next, driver } => (Some(next), driver.epoch, false),
        Then::Finish => (None, 0, true),
        Then::Stop => (None, 0, false),
    };
    let row = sqlx::query!(
        r#"WITH done AS (
               UPDATE workflow_steps SET status = 'completed', output = $4, last_error = NULL,
                      attempt_open = false, finished_at = now()
               WHERE run_id = $1 AND position = $2 AND attempts = $3 AND status = 'running'
                 AND attempt_open
               RETURNING name),
           logged AS (
               INSERT INTO tenant_provision_logs (id, tenant_id, run_id, step, status, message)
               SELECT $5::uuid, $6::uuid, $1::uuid, name, 'success', $7::text FROM done
               UNION ALL
               SELECT l.id, $6, $1, l.step, 'skipped', l.message
               FROM unnest($10::uuid[], $11::text[], $12::text[]) AS l(id, step, message)
               WHERE EXISTS (SELECT 1 FROM done)),
           recorded AS (
               INSERT INTO tenant_resources (id, tenant_id, run_id, step, kind, name)
               SELECT gen_random_uuid(), $13::uuid, $1, d.name, r.kind, r.name
               FROM done d, unnest($14::text[], $15::text[]) AS r(kind, name)
               ON CONFLICT (tenant_id, kind, name) DO UPDATE
                  SET deleted_at = NULL, run_id = EXCLUDED.run_id, step = EXCLUDED.step),
           run AS (
               SELECT 1 FROM workflow_runs
               WHERE id = $1 AND driver_epoch = $8 AND status = 'running'
                 AND cancel_requested IS NULL),
           next AS (
               UPDATE workflow_steps SET status = 'running', attempts = attempts + 1,
                      lost_attempts = lost_attempts + attempt_open::int, attempt_open = true,
                      waiting_for = NULL, started_at = COALESCE(started_at, now())
               WHERE run_id = $1 AND position = $9::int
                 AND status IN ('pending', 'running', 'retrying')
                 AND EXISTS (SELECT 1 FROM run) AND EXISTS (SELECT 1 FROM done)
               RETURNING attempts, lost_attempts),
           finished AS (
               UPDATE workflow_runs SET status = 'completed', updated_at = now(), finished_at = now()
               WHERE $16 AND id = $1 AND status = 'running'
                 AND EXISTS (SELECT 1 FROM done)
               RETURNING kind)
           SELECT (SELECT count(*) FROM done) AS "done!",
                  (SELECT attempts FROM next) AS next_attempt,
                  (SELECT lost_attempts FROM next) AS next_lost,
                  (SELECT kind FROM finished) AS finished_kind"#,
        run_id,
        position,
        lease.attempt,
        output,
        success_id,
        tenant_id,
        message,
        epoch,
        next,
        &skip_ids,
        &skip_steps,
        &skip_messages,
        owner,
        &kinds,
        &names,
        finish
    )
    .fetch_one(ex)
    .await?;
    if row.done == 0 {
        fenced(run_id, position, lease);
        return Ok(None);
    }
    if let Some(kind) = &row.finished_kind {
        metrics().run_finished(kind, super::RunStatus::Completed.as_str());
    }
    Ok(Some(Carried {
        claim: row
            .next_attempt
            .zip(row.next_lost)
            .map(|(attempt, lost)| Claim { attempt, lost }),
        finished: row.finished_kind.is_some(),
    }))
}

/// Notes that no worker that has picked the step up so far can run it;
/// true the first time, so the wait is logged once.
pub async fn wait_for_worker(
    ex: impl PgExecutor<'_>,
    run_id: Uuid,
    position: i32,
    why: &str,
) -> sqlx::Result<bool> {
    let done = sqlx::query!(
        "UPDATE workflow_steps SET waiting_for = $3
         WHERE run_id = $1 AND position = $2 AND waiting_for IS DISTINCT FROM $3",
        run_id,
        position,
        why
    )
    .execute(ex)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Ends an attempt that did not succeed: `retrying` or `failed`, with
/// its error. Runs after [`hold_lease`] in the same transaction.
pub async fn set_step_status(
    ex: impl PgExecutor<'_>,
    run_id: Uuid,
    position: i32,
    status: StepStatus,
    error: &str,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE workflow_steps SET status = $3, last_error = $4, attempt_open = false,
                finished_at = CASE WHEN $3 = 'failed' THEN now() ELSE finished_at END
         WHERE run_id = $1 AND position = $2",
        run_id,
        position,
        status.as_str(),
        error
    )
    .execute(ex)
    .await
    .map(drop)
}

/// An undo attempt succeeded.
pub async fn compensated(ex: impl PgExecutor<'_>, run_id: Uuid, position: i32) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE workflow_steps SET status = 'compensated', compensated_at = now(), last_error = NULL,
                attempt_open = false
         WHERE run_id = $1 AND position = $2",
        run_id,
        position
    )
    .execute(ex)
    .await
    .map(drop)
}

/// An operator's retry: the run's first unfinished step gets a fresh
/// budget; completed checkpoints are kept. Its position, if there is one.
pub async fn reset_first_unfinished(
    ex: impl PgExecutor<'_>,
    run_id: Uuid,
) -> sqlx::Result<Option<i32>> {
    sqlx::query_scalar!(
        "UPDATE workflow_steps SET status = 'pending', attempts = 0, lost_attempts = 0,
                attempt_open = false, waiting_for = NULL, last_error = NULL, finished_at = NULL
         WHERE run_id = $1 AND position = (
             SELECT min(position) FROM workflow_steps
             WHERE run_id = $1 AND status NOT IN ('completed', 'skipped'))
         RETURNING position",
        run_id
    )
    .fetch_optional(ex)
    .await
}
