//! Forward execution: claim an attempt, run it, commit its outcome.

use super::attempt::run_attempt;
use super::backoff::retry_delay;
use super::{Engine, EngineError, store, total_steps};
use crate::step::StepError;
use landlord_shared::db;
use landlord_shared::jobs::{Direction, StepJob, push_step_job};
use landlord_shared::model::{Run, StepRow};
use landlord_shared::plan::describe;
use serde_json::{Value, json};
use sqlx::PgConnection;
use std::time::Duration;
use uuid::Uuid;

/// What the job does once an attempt's outcome has committed.
pub(super) enum Next {
    /// The job is done: the run finished, failed, waits for a retry or a
    /// worker, or another delivery holds it.
    Done,
    /// This worker goes on with the step at this position, in-process: the
    /// job it holds (locked to it, re-queued by apalis if it dies) stays the
    /// run's one job until the run leaves this worker.
    Continue(i32),
}

impl Engine {
    /// `row` is the step as the caller just read it, if it did.
    pub(super) async fn forward(
        &self,
        run: Run,
        position: i32,
        row: Option<StepRow>,
        driver: store::Driver,
    ) -> Result<Next, EngineError> {
        if run.status != "running" {
            return Ok(Next::Done); // a late duplicate of a finished or failed run
        }
        let master = &self.deps.master;
        let step_row = match row {
            Some(row) => Some(row),
            None => store::step_at(master, run.id, position).await?,
        }
        .ok_or(EngineError::NoSuchStep(run.id, position))?;
        if matches!(step_row.status.as_str(), "completed" | "skipped") {
            // The job of a worker that died while it carried the run on
            // past this step: resume where the run is.
            return Ok(match store::first_unfinished(master, run.id).await? {
                Some(next) if next > position => Next::Continue(next),
                _ => Next::Done,
            });
        }
        // The step boundary where an operator's cancel takes effect.
        if let Some(compensate) = run.cancel_requested {
            self.cancel(&run, position, compensate).await?;
            return Ok(Next::Done);
        }
        if !matches!(step_row.status.as_str(), "pending" | "running" | "retrying") {
            return Ok(Next::Done); // already decided by another delivery
        }
        if let Some(why) = self.cannot_run(&step_row) {
            self.leave_for_another_worker(&run, &step_row, Direction::Forward, &why)
                .await?;
            return Ok(Next::Done);
        }
        if let Some(delay) = self.claim_delay(&step_row.name) {
            tokio::time::sleep(delay).await;
        }
        let Some(claim) = store::claim_attempt(master, run.id, position, driver).await? else {
            tracing::warn!(epoch = driver.epoch, status = %step_row.status,
                "step not claimed: decided meanwhile, or a later delivery of the run's job drives it");
            return Ok(Next::Done);
        };
        // The caller's span carries tenant, run, step and attempt.
        self.attempt(run, step_row, claim).await
    }

    async fn attempt(
        &self,
        run: Run,
        step_row: StepRow,
        claim: store::Claim,
    ) -> Result<Next, EngineError> {
        let step_no = step_row.position + 1;
        let total = total_steps(&run);
        let cfg = &self.deps.cfg;
        let max = i32::try_from(cfg.retry_attempts).unwrap_or(i32::MAX);
        let store::Claim { attempt, lost } = claim;
        let lease = store::Lease {
            direction: Direction::Forward,
            attempt,
        };
        if lost > i32::try_from(cfg.max_lost_attempts).unwrap_or(i32::MAX) {
            let err = StepError::permanent(format!(
                "{lost} attempts were lost: the workers running them stopped (LANDLORD_MAX_LOST_ATTEMPTS)"
            ));
            return self.fail(&run, &step_row, lease, &err).await;
        }
        // Attempts that reported back; lost ones do not use up the budget.
        let counted = attempt - lost;
        tracing::info!(
            "Step {step_no}/{total}: {} for tenant '{}' (attempt {counted}/{max}{})...",
            describe(&step_row.name),
            run.tenant_name,
            if lost > 0 {
                format!(", {lost} lost with their worker")
            } else {
                String::new()
            }
        );
        let Some(step) = self.steps.get(step_row.name.as_str()).cloned() else {
            let err = StepError::permanent("this worker has no implementation of the step");
            return self.fail(&run, &step_row, lease, &err).await;
        };
        let ctx = self.context(&run, &step_row, attempt).await?;
        let outcome = run_attempt(step, ctx, cfg.faults.clone(), cfg.step_timeout).await;
        match outcome {
            Ok(output) => self.checkpoint(&run, &step_row, lease, output).await,
            Err(err) if err.is_transient() && counted < max => {
                let delay = retry_delay(cfg.retry_delay, counted);
                tracing::warn!("Step {step_no}/{total} failed, retrying in {delay:?}: {err}");
                self.schedule_retry(&run, &step_row, lease, &err, delay)
                    .await
            }
            Err(err) => {
                tracing::error!("Step {step_no}/{total} failed: {err}");
                self.fail(&run, &step_row, lease, &err).await
            }
        }
    }

    async fn checkpoint(
        &self,
        run: &Run,
        step: &StepRow,
        lease: store::Lease,
        output: Value,
    ) -> Result<Next, EngineError> {
        let mut tx = self.deps.master.begin().await?;
        if !store::hold_lease(&mut *tx, run.id, step.position, lease).await? {
            return Ok(Next::Done);
        }
        store::complete_step(&mut *tx, run.id, step.position, &output).await?;
        // `register` reports the tenant id in its own checkpoint.
        let tenant_id = run.tenant_id.or_else(|| output_tenant_id(&output));
        if let Some(tenant_id) = tenant_id {
            let resources = store::resources_in(&output);
            if !resources.is_empty() {
                store::record_resources(&mut *tx, tenant_id, run.id, &step.name, &resources)
                    .await?;
            }
        }
        let msg = format!(
            "Step {}/{} complete: {}",
            step.position + 1,
            total_steps(run),
            describe(&step.name)
        );
        db::insert_provision_log(&mut *tx, tenant_id, run.id, &step.name, "success", &msg).await?;
        let next = self
            .advance(&mut tx, run, tenant_id, step.position + 1)
            .await?;
        tx.commit().await?;
        tracing::info!(tenant = %run.tenant_name, run_id = %run.id, "✅ {msg}");
        Ok(next)
    }

    /// Finds the next step that runs, logging the ones the run's plan
    /// skipped on the way, or completes the run. This worker goes on with
    /// that step itself unless [`Engine::hand_back`] says otherwise; then the
    /// step is queued for the fleet.
    async fn advance(
        &self,
        tx: &mut PgConnection,
        run: &Run,
        tenant_id: Option<Uuid>,
        mut next: i32,
    ) -> Result<Next, EngineError> {
        while next < total_steps(run) {
            let row = store::step_at(&mut *tx, run.id, next)
                .await?
                .ok_or(EngineError::NoSuchStep(run.id, next))?;
            if row.status != "skipped" {
                if !self.hand_back(tx).await? {
                    return Ok(Next::Continue(next));
                }
                let job = StepJob {
                    run_id: run.id,
                    position: next,
                    direction: Direction::Forward,
                };
                push_step_job(tx, &job, Duration::ZERO).await?;
                return Ok(Next::Done);
            }
            let reason = row.last_error.as_deref().unwrap_or("skipped");
            let msg = format!("Step {}/{} {reason}", next + 1, total_steps(run));
            db::insert_provision_log(&mut *tx, tenant_id, run.id, &row.name, "skipped", &msg)
                .await?;
            tracing::info!(tenant = %run.tenant_name, run_id = %run.id, step = %row.name, "{msg}");
            next += 1;
        }
        store::transition_run(&mut *tx, run.id, "running", "completed", None).await?;
        if run.kind == "provision" {
            tracing::info!(tenant = %run.tenant_name, run_id = %run.id, "✅ Successfully provisioned tenant: {}", run.tenant_name);
        } else {
            tracing::info!(tenant = %run.tenant_name, run_id = %run.id, "✅ Deprovisioned tenant ({}): {}", run.kind, run.tenant_name);
        }
        Ok(Next::Done)
    }

    async fn schedule_retry(
        &self,
        run: &Run,
        step: &StepRow,
        lease: store::Lease,
        err: &StepError,
        delay: Duration,
    ) -> Result<Next, EngineError> {
        let mut tx = self.deps.master.begin().await?;
        if !store::hold_lease(&mut *tx, run.id, step.position, lease).await? {
            return Ok(Next::Done);
        }
        store::set_step_status(
            &mut *tx,
            run.id,
            step.position,
            "retrying",
            &err.to_string(),
        )
        .await?;
        let msg = format!("retrying in {} ms: {err}", delay.as_millis());
        db::insert_provision_log(
            &mut *tx,
            run.tenant_id,
            run.id,
            &step.name,
            "retrying",
            &msg,
        )
        .await?;
        let job = StepJob {
            run_id: run.id,
            position: step.position,
            direction: Direction::Forward,
        };
        push_step_job(&mut tx, &job, delay).await?;
        tx.commit().await?;
        Ok(Next::Done)
    }

    /// Retries exhausted or a permanent error: the run fails, the tenant is
    /// suspended, the failure event is written, and with rollback the undo
    /// chain starts at the failed step (its partial work included).
    async fn fail(
        &self,
        run: &Run,
        step: &StepRow,
        lease: store::Lease,
        err: &StepError,
    ) -> Result<Next, EngineError> {
        let mut tx = self.deps.master.begin().await?;
        if !store::hold_lease(&mut *tx, run.id, step.position, lease).await? {
            return Ok(Next::Done);
        }
        let error = format!("step {} failed: {err}", step.name);
        let next_status = if run.rollback {
            "compensating"
        } else {
            "failed"
        };
        if !store::transition_run(&mut *tx, run.id, "running", next_status, Some(&error)).await? {
            return Ok(Next::Done);
        }
        store::set_step_status(&mut *tx, run.id, step.position, "failed", &err.to_string()).await?;
        // Only a tenant row this run registered is ours to suspend; a failed
        // deprovisioning leaves the tenant where it stopped, to be retried.
        let provisioning = run.kind == "provision";
        if let Some(id) = run.tenant_id.filter(|_| provisioning) {
            store::set_tenant_status(&mut *tx, id, "suspended").await?;
        }
        db::insert_provision_log(&mut *tx, run.tenant_id, run.id, &step.name, "error", &error)
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
        db::insert_transition_event(&mut tx, run.tenant_id, run.id, event, &payload).await?;
        if run.rollback {
            let job = StepJob {
                run_id: run.id,
                position: step.position,
                direction: Direction::Undo,
            };
            push_step_job(&mut tx, &job, Duration::ZERO).await?;
        }
        tx.commit().await?;
        Ok(Next::Done)
    }
}

impl Engine {
    /// An injected `delay-claim` fault for this step.
    fn claim_delay(&self, step: &str) -> Option<Duration> {
        self.deps.cfg.faults.iter().find_map(|f| match f.kind {
            landlord_shared::faults::FaultKind::DelayClaim(d) if f.step == step => Some(d),
            _ => None,
        })
    }
}

fn output_tenant_id(output: &Value) -> Option<Uuid> {
    output.get("tenant_id")?.as_str()?.parse().ok()
}
