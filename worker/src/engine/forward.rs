//! Forward execution: claim an attempt, run it, commit its outcome.

use super::attempt::run_attempt;
use super::verdict::Verdict;
use super::{Engine, EngineError, RunState, store};
use crate::step::{Outcome, StepError};
use landlord_shared::jobs::{Direction, StepJob, push_step_job};
use landlord_shared::model::StepRow;
use landlord_shared::plan::describe;
use landlord_shared::store::{LogStatus, RunKind, RunStatus, StepStatus, TenantStatus};
use serde_json::{Value, json};
use std::time::Duration;
use uuid::Uuid;

/// What the job does once an attempt's outcome has committed.
pub(super) enum Next {
    /// The job is done: the run finished, failed, waits for a retry or a
    /// worker, or another delivery holds it.
    Done,
    /// This worker goes on with the step at this position, in the same
    /// direction, in-process: the job it holds (locked to it, re-queued by
    /// apalis if it dies) stays the run's one job until the run leaves
    /// this worker.
    Continue(i32),
}

impl Engine {
    pub(super) async fn forward(
        &self,
        state: &mut RunState,
        position: i32,
        driver: store::Driver,
    ) -> Result<Next, EngineError> {
        if state.run.status != RunStatus::Running {
            return Ok(Next::Done); // a late duplicate of a finished or failed run
        }
        let step_row = state
            .step(position)
            .ok_or(EngineError::NoSuchStep(state.run.id, position))?
            .clone();
        if let Some(claim) = state.take_claim(position) {
            // Claimed with the previous step's checkpoint, once the checks
            // below had passed on what this delivery knows of the run.
            return self.attempt(state, step_row, claim).await;
        }
        if step_row.status.is_done() {
            // The job of a worker that died while it carried the run on
            // past this step: resume where the run is.
            return Ok(match state.first_unfinished() {
                Some(next) if next > position => Next::Continue(next),
                _ => Next::Done,
            });
        }
        // The step boundary where an operator's cancel takes effect.
        if let Some(compensate) = state.run.cancel_requested {
            self.cancel(&state.run, &step_row, compensate).await?;
            return Ok(Next::Done);
        }
        if step_row.status == StepStatus::Awaiting {
            return self.resume_awaiting(state, step_row, driver).await;
        }
        if !step_row.status.is_runnable() {
            return Ok(Next::Done); // already decided by another delivery
        }
        if let Some(why) = self.cannot_run(&step_row) {
            self.leave_for_another_worker(&state.run, &step_row, Direction::Forward, &why)
                .await?;
            return Ok(Next::Done);
        }
        if let Some(delay) = self.claim_delay(&step_row.name) {
            tokio::time::sleep(delay).await;
        }
        let master = &self.deps.master;
        let Some(claim) = store::claim_attempt(master, state.run.id, position, driver).await?
        else {
            // Refused: an operator's cancel since this delivery read the
            // run, a later delivery, or a step decided meanwhile.
            if let Some(run) = store::run_by_id(master, state.run.id).await?
                && run.status == RunStatus::Running
                && let Some(compensate) = run.cancel_requested
            {
                self.cancel(&run, &step_row, compensate).await?;
                return Ok(Next::Done);
            }
            tracing::warn!(epoch = driver.epoch, status = %step_row.status,
                "step not claimed: decided meanwhile, or a later delivery of the run's job drives it");
            return Ok(Next::Done);
        };
        // The caller's span carries tenant, run, step and attempt.
        self.attempt(state, step_row, claim).await
    }

    async fn attempt(
        &self,
        state: &mut RunState,
        step_row: StepRow,
        claim: store::Claim,
    ) -> Result<Next, EngineError> {
        let step_no = step_row.position + 1;
        let total = state.total();
        let cfg = &self.deps.cfg;
        let store::Claim { attempt, lost } = claim;
        let lease = store::Lease {
            direction: Direction::Forward,
            attempt,
        };
        if lost > i32::try_from(cfg.max_lost_attempts).unwrap_or(i32::MAX) {
            let err = StepError::permanent(format!(
                "{lost} attempts were lost: the workers running them stopped (LANDLORD_MAX_LOST_ATTEMPTS)"
            ));
            return self.fail(state, &step_row, lease, &err).await;
        }
        // Attempts that reported back; lost ones do not use up the budget.
        let counted = attempt - lost;
        tracing::info!(
            "Step {step_no}/{total}: {} for tenant '{}' (attempt {counted}/{}{})...",
            describe(&step_row.name),
            state.run.tenant_name,
            cfg.retry_attempts,
            if lost > 0 {
                format!(", {lost} lost with their worker")
            } else {
                String::new()
            }
        );
        let Some(step) = self.step_impl(&state.run, &step_row.name) else {
            let err = StepError::permanent("this worker has no implementation of the step");
            return self.fail(state, &step_row, lease, &err).await;
        };
        let ctx = self.context(state, &step_row, attempt);
        if let Some(ended) = state.body_ended.take() {
            landlord_shared::metrics::metrics()
                .step_boundary
                .observe(ended.elapsed().as_secs_f64());
        }
        let outcome = run_attempt(step, ctx, cfg.faults.clone(), cfg.step_timeout).await;
        state.body_ended = Some(std::time::Instant::now());
        match outcome {
            Ok(Outcome::Done(output)) => self.checkpoint(state, &step_row, lease, output).await,
            Ok(Outcome::Accepted) => self.accepted(state, &step_row, lease, counted).await,
            Err(err) => {
                self.attempt_failed(state, &step_row, lease, &err, counted)
                    .await
            }
        }
    }

    /// A failed attempt: retried after a delay, or the step fails.
    pub(super) async fn attempt_failed(
        &self,
        state: &RunState,
        step_row: &StepRow,
        lease: store::Lease,
        err: &StepError,
        counted: i32,
    ) -> Result<Next, EngineError> {
        let (step_no, total) = (step_row.position + 1, state.total());
        match self.step_budget().judge(err, counted) {
            Verdict::Retry(delay) => {
                tracing::warn!("Step {step_no}/{total} failed, retrying in {delay:?}: {err}");
                self.schedule_retry(state, step_row, lease, err, delay)
                    .await
            }
            Verdict::GiveUp => {
                tracing::error!("Step {step_no}/{total} failed: {err}");
                self.fail(state, step_row, lease, err).await
            }
        }
    }

    /// Commits the checkpoint and decides what comes next, in one
    /// statement: the fenced checkpoint with its log lines and resources,
    /// and the next step's claim (it runs here) or the run's completion
    /// (no step is left). When the fleet takes the next step, its job
    /// commits with the checkpoint.
    pub(super) async fn checkpoint(
        &self,
        state: &mut RunState,
        step: &StepRow,
        lease: store::Lease,
        output: Value,
    ) -> Result<Next, EngineError> {
        let run_id = state.run.id;
        // `register` reports the tenant id in its own checkpoint.
        let tenant_id = state.run.tenant_id.or_else(|| output_tenant_id(&output));
        let resources = store::resources_in(&output);
        let msg = format!(
            "Step {}/{} complete: {}",
            step.position + 1,
            state.total(),
            describe(&step.name)
        );
        let log = (tenant_id, msg.as_str());
        let after = step.position + 1;
        let runnable = state.next_runnable(after);
        let skipped = skipped_lines(state, after, runnable.unwrap_or(i32::MAX));
        // The next step that runs, when the fleet is to take it.
        let handed_back = match runnable {
            Some(next) if self.hand_back().await? => Some(next),
            _ => None,
        };
        let then = match runnable {
            None => store::Then::Finish,
            Some(next) if handed_back.is_none() && self.claims_at_checkpoint(state, next) => {
                store::Then::Claim {
                    next,
                    driver: state.driver,
                }
            }
            Some(_) => store::Then::Stop,
        };
        let carry = store::CarryOn {
            then,
            skipped: &skipped,
            resources: tenant_id.map(|t| (t, resources.as_slice())),
        };
        let (master, pos) = (&self.deps.master, step.position);
        let carried = if let Some(next) = handed_back {
            // Its job commits with the checkpoint.
            let mut tx = master.begin().await?;
            let carried =
                store::complete_and_carry(&mut *tx, run_id, pos, lease, &output, log, carry)
                    .await?;
            if carried.is_some() {
                let job = StepJob::new(run_id, next, Direction::Forward);
                push_step_job(&mut tx, &job, Duration::ZERO).await?;
                tx.commit().await?;
            }
            carried
        } else {
            store::complete_and_carry(master, run_id, pos, lease, &output, log, carry).await?
        };
        let Some(carried) = carried else {
            return Ok(Next::Done);
        };
        tracing::info!(tenant = %state.run.tenant_name, %run_id, "✅ {msg}");
        state.completed(pos, output, tenant_id);
        Ok(match (then, runnable) {
            (store::Then::Claim { next, .. }, _) => {
                state.claimed = carried.claim.map(|c| (next, c));
                Next::Continue(next)
            }
            (store::Then::Stop, Some(next)) if handed_back.is_none() => Next::Continue(next),
            (store::Then::Finish, _) if carried.finished => {
                state.run.status = RunStatus::Completed;
                finished_log(&state.run);
                Next::Done
            }
            _ => Next::Done,
        })
    }

    async fn schedule_retry(
        &self,
        state: &RunState,
        step: &StepRow,
        lease: store::Lease,
        err: &StepError,
        delay: Duration,
    ) -> Result<Next, EngineError> {
        let run = &state.run;
        let mut tx = self.deps.master.begin().await?;
        if !store::hold_lease(&mut *tx, run.id, step.position, lease).await? {
            return Ok(Next::Done);
        }
        store::set_step_status(
            &mut *tx,
            run.id,
            step.position,
            StepStatus::Retrying,
            &err.to_string(),
        )
        .await?;
        let msg = format!("retrying in {} ms: {err}", delay.as_millis());
        store::insert_provision_log(
            &mut *tx,
            run.tenant_id,
            run.id,
            &step.name,
            LogStatus::Retrying,
            &msg,
        )
        .await?;
        let job = StepJob::new(run.id, step.position, Direction::Forward);
        push_step_job(&mut tx, &job, delay).await?;
        tx.commit().await?;
        Ok(Next::Done)
    }

    /// Retries exhausted or a permanent error: the run fails, the tenant is
    /// suspended, the failure event is written, and with rollback the undo
    /// chain starts at the failed step (its partial work included).
    async fn fail(
        &self,
        state: &RunState,
        step: &StepRow,
        lease: store::Lease,
        err: &StepError,
    ) -> Result<Next, EngineError> {
        let run = &state.run;
        let mut tx = self.deps.master.begin().await?;
        if !store::hold_lease(&mut *tx, run.id, step.position, lease).await? {
            return Ok(Next::Done);
        }
        let error = format!("step {} failed: {err}", step.name);
        let next_status = if run.rollback {
            RunStatus::Compensating
        } else {
            RunStatus::Failed
        };
        if !store::transition_run(
            &mut *tx,
            run.id,
            RunStatus::Running,
            next_status,
            Some(&error),
        )
        .await?
        {
            return Ok(Next::Done);
        }
        store::set_step_status(
            &mut *tx,
            run.id,
            step.position,
            StepStatus::Failed,
            &err.to_string(),
        )
        .await?;
        // Only a tenant row this run registered is ours to suspend; a failed
        // deprovisioning leaves the tenant where it stopped, to be retried.
        let provisioning = run.kind == RunKind::Provision;
        if let Some(id) = run.tenant_id.filter(|_| provisioning) {
            store::set_tenant_status(&mut *tx, id, TenantStatus::Suspended).await?;
        }
        store::insert_provision_log(
            &mut *tx,
            run.tenant_id,
            run.id,
            &step.name,
            LogStatus::Error,
            &error,
        )
        .await?;
        let admin = run.params.admin.as_ref();
        let payload = json!({
            "tenantId": run.tenant_id,
            "tenantName": run.tenant_name,
            "email": admin.map(|a| a.email.as_str()),
            "firstName": admin.map(|a| a.first_name.as_str()),
            "error": err.to_string(),
            "failedStep": step.name,
            "supportEmail": self.deps.cfg.notify.support_email,
        });
        let event = if provisioning {
            "tenant.provisioning_failed"
        } else {
            "tenant.deprovisioning_failed"
        };
        let outbox = self.deps.cfg.notify.outbox();
        store::insert_transition_event(&mut tx, outbox, run.tenant_id, run.id, event, &payload)
            .await?;
        if run.rollback {
            let job = StepJob::new(run.id, step.position, Direction::Undo);
            push_step_job(&mut tx, &job, Duration::ZERO).await?;
        }
        tx.commit().await?;
        Ok(Next::Done)
    }
}

impl Engine {
    /// Whether the step at `position` can be claimed in the statement that
    /// checkpoints the one before it: [`Engine::forward`] would go straight
    /// to its claim (no cancel seen, runnable and not awaiting a callback,
    /// a backend this worker has, no injected claim delay).
    fn claims_at_checkpoint(&self, state: &RunState, position: i32) -> bool {
        state.step(position).is_some_and(|next| {
            state.run.cancel_requested.is_none()
                && next.status.is_runnable()
                && self.cannot_run(next).is_none()
                && self.claim_delay(&next.name).is_none()
        })
    }

    /// An injected `delay-claim` fault for this step.
    fn claim_delay(&self, step: &str) -> Option<Duration> {
        self.deps.cfg.faults.iter().find_map(|f| match f.kind {
            landlord_shared::faults::FaultKind::DelayClaim(d) if f.step == step => Some(d),
            _ => None,
        })
    }
}

fn finished_log(run: &landlord_shared::model::Run) {
    if run.kind == RunKind::Provision {
        tracing::info!(tenant = %run.tenant_name, run_id = %run.id, "✅ Successfully provisioned tenant: {}", run.tenant_name);
    } else {
        tracing::info!(tenant = %run.tenant_name, run_id = %run.id, "✅ Deprovisioned tenant ({}): {}", run.kind, run.tenant_name);
    }
}

/// The provision-log lines of the steps from `from` up to `to` (excluded)
/// that the run's plan skips, each logged here as the run passes it.
fn skipped_lines(state: &RunState, from: i32, to: i32) -> Vec<(String, String)> {
    let run = &state.run;
    state
        .steps
        .iter()
        .skip(usize::try_from(from).unwrap_or(usize::MAX))
        .take_while(|row| row.position < to)
        .filter(|row| row.status == StepStatus::Skipped)
        .map(|row| {
            let reason = row.last_error.as_deref().unwrap_or("skipped");
            let msg = format!("Step {}/{} {reason}", row.position + 1, state.total());
            tracing::info!(tenant = %run.tenant_name, run_id = %run.id, step = %row.name, "{msg}");
            (row.name.clone(), msg)
        })
        .collect()
}

fn output_tenant_id(output: &Value) -> Option<Uuid> {
    output.get("tenant_id")?.as_str()?.parse().ok()
}
