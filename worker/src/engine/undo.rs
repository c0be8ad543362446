//! Compensation: undo steps in reverse order, each undo idempotent and
//! retried like a forward step. As going forward, the worker goes on with
//! the next undo in-process after each commit.

use super::attempt::compensate_attempt;
use super::forward::Next;
use super::verdict::Verdict;
use super::{Engine, EngineError, RunState, store};
use crate::step::StepError;
use landlord_shared::actions::UNDOABLE;
use landlord_shared::jobs::{Direction, StepJob, push_step_job};
use landlord_shared::store::{LogStatus, RunStatus, StepStatus};
use sqlx::PgConnection;
use std::time::Duration;

impl Engine {
    pub(super) async fn undo(
        &self,
        state: &mut RunState,
        position: i32,
        driver: store::Driver,
    ) -> Result<Next, EngineError> {
        if state.run.status != RunStatus::Compensating {
            return Ok(Next::Done);
        }
        let master = &self.deps.master;
        let row = state
            .step(position)
            .ok_or(EngineError::NoSuchStep(state.run.id, position))?
            .clone();
        let step = self.step_impl(&state.run, &row.name);
        let Some(step) = step.filter(|_| UNDOABLE.contains(&row.status)) else {
            let mut tx = master.begin().await?;
            let next = self.undo_next(&mut tx, state, position).await?;
            tx.commit().await?;
            return Ok(next);
        };
        if let Some(why) = self.cannot_run(&row) {
            self.leave_for_another_worker(&state.run, &row, Direction::Undo, &why)
                .await?;
            return Ok(Next::Done);
        }
        let Some(store::Claim { attempt, lost }) =
            store::claim_undo(master, state.run.id, position, driver).await?
        else {
            return Ok(Next::Done); // a later delivery of the run's job drives it
        };
        let run = &state.run;
        tracing::info!(tenant = %run.tenant_name, run_id = %run.id, step = %row.name, attempt,
            "Compensating step {}: {}", position + 1, row.name);
        let max_lost = i32::try_from(self.deps.cfg.max_lost_attempts).unwrap_or(i32::MAX);
        // Attempts that reported back; lost ones do not use up the budget.
        let counted = attempt - lost;
        let outcome = if lost > max_lost {
            Err(StepError::permanent(format!(
                "{lost} undo attempts were lost: the workers running them stopped"
            )))
        } else {
            let ctx = self.context(state, &row, attempt);
            compensate_attempt(
                step,
                ctx,
                // Only a completed step has a checkpoint; a failed or
                // interrupted one is undone from its names alone.
                row.output.clone(),
                self.deps.cfg.faults.clone(),
                self.deps.cfg.step_timeout,
            )
            .await
        };
        let mut tx = master.begin().await?;
        let lease = store::Lease {
            direction: Direction::Undo,
            attempt,
        };
        if !store::hold_lease(&mut *tx, run.id, position, lease).await? {
            return Ok(Next::Done);
        }
        let next = match outcome {
            Ok(()) => {
                store::compensated(&mut *tx, run.id, position).await?;
                if let Some(tenant_id) = run.tenant_id {
                    store::mark_resources_deleted(&mut *tx, tenant_id, &row.name).await?;
                }
                let msg = format!("Step {} undone: {}", position + 1, row.name);
                store::insert_provision_log(
                    &mut *tx,
                    run.tenant_id,
                    run.id,
                    &row.name,
                    LogStatus::Compensated,
                    &msg,
                )
                .await?;
                if let Some(done) = usize::try_from(position)
                    .ok()
                    .and_then(|i| state.steps.get_mut(i))
                {
                    done.status = StepStatus::Compensated;
                }
                self.undo_next(&mut tx, state, position).await?
            }
            Err(err) => {
                let run = &state.run;
                store::set_step_status(
                    &mut *tx,
                    run.id,
                    position,
                    StepStatus::Compensating,
                    &err.to_string(),
                )
                .await?;
                match self.step_budget().judge(&err, counted) {
                    Verdict::Retry(delay) => {
                        tracing::warn!(run_id = %run.id, step = %row.name, "undo failed, retrying: {err}");
                        let job = StepJob::new(run.id, position, Direction::Undo);
                        push_step_job(&mut tx, &job, delay).await?;
                    }
                    Verdict::GiveUp => {
                        tracing::error!(run_id = %run.id, step = %row.name, "undo failed: {err}");
                        let error = format!("undo of step {} failed: {err}", row.name);
                        let to = RunStatus::CompensationFailed;
                        if store::transition_run(
                            &mut *tx,
                            run.id,
                            RunStatus::Compensating,
                            to,
                            Some(&error),
                        )
                        .await?
                        {
                            let outbox = self.deps.cfg.notify.outbox();
                            store::insert_finished_event(&mut tx, outbox, run, to, Some(&error))
                                .await?;
                        }
                    }
                }
                Next::Done
            }
        };
        tx.commit().await?;
        Ok(next)
    }

    /// Goes on with the undo of the nearest earlier step with something to
    /// undo (here, or queued for the fleet when [`Engine::hand_back`] says
    /// so), or ends the compensation.
    async fn undo_next(
        &self,
        tx: &mut PgConnection,
        state: &RunState,
        position: i32,
    ) -> Result<Next, EngineError> {
        let run = &state.run;
        let before = usize::try_from(position).unwrap_or(0);
        let prev = state.steps[..before.min(state.steps.len())]
            .iter()
            .rev()
            .find(|s| UNDOABLE.contains(&s.status))
            .map(|s| s.position);
        match prev {
            Some(p) if !self.hand_back().await? => Ok(Next::Continue(p)),
            Some(p) => {
                let job = StepJob::new(run.id, p, Direction::Undo);
                push_step_job(tx, &job, Duration::ZERO).await?;
                Ok(Next::Done)
            }
            None => {
                let to = RunStatus::Compensated;
                if store::transition_run(&mut *tx, run.id, RunStatus::Compensating, to, None)
                    .await?
                {
                    store::insert_finished_event(tx, self.deps.cfg.notify.outbox(), run, to, None)
                        .await?;
                }
                tracing::info!(tenant = %run.tenant_name, run_id = %run.id, "Rollback complete");
                Ok(Next::Done)
            }
        }
    }
}
