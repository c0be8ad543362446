//! Compensation: undo steps in reverse order, one job per step, each undo
//! idempotent and retried like a forward step.

use super::attempt::compensate_attempt;
use super::backoff::retry_delay;
use super::{Engine, EngineError, store};
use crate::step::StepError;
use landlord_shared::actions::UNDOABLE;
use landlord_shared::db;
use landlord_shared::jobs::{Direction, StepJob, push_step_job};
use landlord_shared::model::Run;
use sqlx::PgConnection;
use std::time::Duration;

impl Engine {
    pub(super) async fn undo(
        &self,
        run: Run,
        position: i32,
        driver: store::Driver,
    ) -> Result<(), EngineError> {
        if run.status != "compensating" {
            return Ok(());
        }
        let master = &self.deps.master;
        let row = store::step_at(master, run.id, position)
            .await?
            .ok_or(EngineError::NoSuchStep(run.id, position))?;
        let step = self.steps.get(row.name.as_str()).cloned();
        let Some(step) = step.filter(|_| UNDOABLE.contains(&row.status.as_str())) else {
            let mut tx = master.begin().await?;
            self.undo_next(&mut tx, &run, position).await?;
            tx.commit().await?;
            return Ok(());
        };
        if let Some(why) = self.cannot_run(&row) {
            return self
                .leave_for_another_worker(&run, &row, Direction::Undo, &why)
                .await;
        }
        let Some(store::Claim { attempt, lost }) =
            store::claim_undo(master, run.id, position, driver).await?
        else {
            return Ok(()); // a later delivery of the run's job drives it
        };
        tracing::info!(tenant = %run.tenant_name, run_id = %run.id, step = %row.name, attempt,
            "Compensating step {}: {}", position + 1, row.name);
        let max = i32::try_from(self.deps.cfg.retry_attempts).unwrap_or(i32::MAX);
        let max_lost = i32::try_from(self.deps.cfg.max_lost_attempts).unwrap_or(i32::MAX);
        // Attempts that reported back; lost ones do not use up the budget.
        let counted = attempt - lost;
        let outcome = if lost > max_lost {
            Err(StepError::permanent(format!(
                "{lost} undo attempts were lost: the workers running them stopped"
            )))
        } else {
            let ctx = self.context(&run, &row, attempt).await?;
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
            return Ok(());
        }
        match outcome {
            Ok(()) => {
                sqlx::query(
                    "UPDATE workflow_steps SET status = 'compensated', compensated_at = now(), last_error = NULL,
                            attempt_open = false
                     WHERE run_id = $1 AND position = $2",
                )
                .bind(run.id)
                .bind(position)
                .execute(&mut *tx)
                .await?;
                if let Some(tenant_id) = run.tenant_id {
                    store::mark_resources_deleted(&mut *tx, tenant_id, &row.name).await?;
                }
                let msg = format!("Step {} undone: {}", position + 1, row.name);
                db::insert_provision_log(
                    &mut *tx,
                    run.tenant_id,
                    run.id,
                    &row.name,
                    "compensated",
                    &msg,
                )
                .await?;
                self.undo_next(&mut tx, &run, position).await?;
            }
            Err(err) if err.is_transient() && counted < max => {
                tracing::warn!(run_id = %run.id, step = %row.name, "undo failed, retrying: {err}");
                store::set_step_status(
                    &mut *tx,
                    run.id,
                    position,
                    "compensating",
                    &err.to_string(),
                )
                .await?;
                let job = StepJob {
                    run_id: run.id,
                    position,
                    direction: Direction::Undo,
                };
                push_step_job(
                    &mut tx,
                    &job,
                    retry_delay(self.deps.cfg.retry_delay, counted),
                )
                .await?;
            }
            Err(err) => {
                tracing::error!(run_id = %run.id, step = %row.name, "undo failed: {err}");
                let error = format!("undo of step {} failed: {err}", row.name);
                store::set_step_status(
                    &mut *tx,
                    run.id,
                    position,
                    "compensating",
                    &err.to_string(),
                )
                .await?;
                if store::transition_run(
                    &mut *tx,
                    run.id,
                    "compensating",
                    "compensation_failed",
                    Some(&error),
                )
                .await?
                {
                    db::insert_finished_event(&mut tx, &run, "compensation_failed", Some(&error))
                        .await?;
                }
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Queues the undo of the nearest earlier step with something to undo,
    /// or ends the compensation.
    async fn undo_next(
        &self,
        tx: &mut PgConnection,
        run: &Run,
        position: i32,
    ) -> Result<(), EngineError> {
        let statuses: Vec<&str> = UNDOABLE.to_vec();
        let prev: Option<i32> = sqlx::query_scalar(
            "SELECT max(position) FROM workflow_steps
             WHERE run_id = $1 AND position < $2 AND status = ANY($3)",
        )
        .bind(run.id)
        .bind(position)
        .bind(&statuses)
        .fetch_one(&mut *tx)
        .await?;
        match prev {
            Some(p) => {
                let job = StepJob {
                    run_id: run.id,
                    position: p,
                    direction: Direction::Undo,
                };
                push_step_job(tx, &job, Duration::ZERO).await?;
            }
            None => {
                if store::transition_run(&mut *tx, run.id, "compensating", "compensated", None)
                    .await?
                {
                    db::insert_finished_event(tx, run, "compensated", None).await?;
                }
                tracing::info!(tenant = %run.tenant_name, run_id = %run.id, "Rollback complete");
            }
        }
        Ok(())
    }
}
