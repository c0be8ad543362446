//! Resumes runs left without a queue job. Every unfinished run has one
//! live job (held while a worker carries it on, or pushed with the commit
//! that hands it on), but apalis acks a job by worker name, and records a
//! delivery's lock only after its handler has started: when a job moves
//! between workers presumed dead, a refused delivery can close the job
//! another worker still drives, and that worker's crash then leaves the
//! run with nothing to resume it. Every worker looks for such runs; one
//! seen twice, a sweep apart, gets a new job at the step where it stands.

use landlord_shared::actions::UNDOABLE;
use landlord_shared::jobs::{Direction, StepJob, push_step_job};
use landlord_shared::store::{self, RunStatus};
use sqlx::PgPool;
use std::collections::HashSet;
use std::time::Duration;
use uuid::Uuid;

pub async fn sweep(pool: PgPool, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seen: HashSet<Uuid> = HashSet::new();
    loop {
        tick.tick().await;
        let now: HashSet<Uuid> = match store::runs_without_job(&pool).await {
            Ok(ids) => ids.into_iter().collect(),
            Err(e) => {
                tracing::debug!("stranded-run sweep failed: {e}");
                continue;
            }
        };
        for run_id in now.intersection(&seen) {
            match resume(&pool, *run_id).await {
                Ok(true) => tracing::warn!(%run_id, "resumed a run left without a queue job"),
                Ok(false) => {}
                Err(e) => tracing::debug!(%run_id, "could not resume a stranded run: {e}"),
            }
        }
        seen = now;
    }
}

/// Pushes the run's job where it stands, under the run's sweep lock and
/// only if it still has none; whether it did.
async fn resume(pool: &PgPool, run_id: Uuid) -> anyhow::Result<bool> {
    let mut tx = pool.begin().await?;
    if !store::lock_for_sweep(&mut *tx, run_id).await?
        || !store::runs_without_job(&mut *tx).await?.contains(&run_id)
    {
        return Ok(false);
    }
    let Some(run) = store::run_by_id(&mut *tx, run_id).await? else {
        return Ok(false);
    };
    let job = match run.status {
        RunStatus::Running => store::first_unfinished(&mut *tx, run_id)
            .await?
            .map(|p| StepJob::new(run_id, p, Direction::Forward)),
        RunStatus::Compensating => store::last_step_in(&mut *tx, run_id, i32::MAX, UNDOABLE)
            .await?
            .map(|p| StepJob::new(run_id, p, Direction::Undo)),
        _ => None,
    };
    let Some(job) = job else {
        return Ok(false);
    };
    push_step_job(&mut tx, &job, Duration::ZERO).await?;
    tx.commit().await?;
    Ok(true)
}
