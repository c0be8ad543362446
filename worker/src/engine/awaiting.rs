//! Custom steps whose executor accepted the work. The attempt waits in
//! `awaiting` and the job ends: no worker slot is held for a 20-minute
//! Terraform apply. The executor's callback (taken by the API) or the
//! attempt's deadline pushes a wake-up job; its delivery takes the attempt
//! up again under the run's new driver and commits the report like any
//! attempt's outcome, fenced by the same lease.

use super::forward::Next;
use super::{Engine, EngineError, RunState, store};
use crate::step::StepError;
use crate::steps::http_step;
use landlord_shared::executor::Report;
use landlord_shared::jobs::{Direction, StepJob, push_step_job};
use landlord_shared::model::StepRow;
use landlord_shared::store::{Awaited, Lease};
use serde_json::Value;
use std::time::Duration;

impl Engine {
    /// The executor took the work on: wait for its callback until the
    /// step's deadline, unless the callback already came.
    pub(super) async fn accepted(
        &self,
        state: &mut RunState,
        row: &StepRow,
        lease: Lease,
        counted: i32,
    ) -> Result<Next, EngineError> {
        let Some(def) = state
            .run
            .plan
            .as_ref()
            .and_then(|p| p.0.http_step(&row.name))
        else {
            let err = StepError::permanent("only a custom step can accept work");
            return self.attempt_failed(state, row, lease, &err, counted).await;
        };
        let wait = Duration::from_secs(def.timeout_secs);
        let deadline = chrono::Utc::now() + wait;
        let msg = format!(
            "Step {}/{}: the executor accepted the work; waiting up to {} s for its callback",
            row.position + 1,
            state.total(),
            def.timeout_secs
        );
        let run = &state.run;
        let mut tx = self.deps.master.begin().await?;
        let log = (run.tenant_id, msg.as_str());
        match store::await_callback(&mut tx, run.id, row.position, lease, deadline, log).await? {
            Awaited::Waiting => {
                let job = StepJob {
                    wake: Some(lease.attempt),
                    ..StepJob::new(run.id, row.position, Direction::Forward)
                };
                // A second past the deadline, so the wait is over when it comes.
                push_step_job(&mut tx, &job, wait + Duration::from_secs(1)).await?;
                tx.commit().await?;
                tracing::info!(tenant = %run.tenant_name, run_id = %run.id, step = %row.name, "{msg}");
                Ok(Next::Done)
            }
            Awaited::Reported(report) => {
                tx.commit().await?;
                self.apply_report(state, row, lease, counted, Some(report))
                    .await
            }
            Awaited::Fenced => Ok(Next::Done),
        }
    }

    /// A wake-up job's delivery: the awaiting attempt's callback came or
    /// its deadline passed.
    pub(super) async fn resume_awaiting(
        &self,
        state: &mut RunState,
        row: StepRow,
        driver: store::Driver,
    ) -> Result<Next, EngineError> {
        let resumed =
            store::resume_awaiting(&self.deps.master, state.run.id, row.position, driver).await?;
        let Some(store::Resumed {
            attempt,
            lost,
            callback,
        }) = resumed
        else {
            return Ok(Next::Done); // too early, cancelled, or another delivery drives
        };
        let lease = Lease {
            direction: Direction::Forward,
            attempt,
        };
        self.apply_report(state, &row, lease, attempt - lost, callback)
            .await
    }

    /// Commits an executor's report (none: the deadline passed) as the
    /// attempt's outcome.
    async fn apply_report(
        &self,
        state: &mut RunState,
        row: &StepRow,
        lease: Lease,
        counted: i32,
        report: Option<Value>,
    ) -> Result<Next, EngineError> {
        let def = state
            .run
            .plan
            .as_ref()
            .and_then(|p| p.0.http_step(&row.name));
        let Some(def) = def.cloned() else {
            let err = StepError::permanent("the run's plan has no such custom step");
            return self.attempt_failed(state, row, lease, &err, counted).await;
        };
        let outcome = match report.map(serde_json::from_value::<Report>) {
            Some(Ok(Report::Done { output })) => {
                let key = http_step::idempotency_key(state.run.id, &def.name);
                Ok(http_step::checkpoint(&def, &key, output))
            }
            Some(Ok(Report::Failed { error, transient })) => {
                Err(http_step::failed(&def, &error, transient))
            }
            Some(Ok(Report::Accepted)) | Some(Err(_)) => Err(StepError::permanent(format!(
                "the callback of step '{}' is not a done or failed report",
                def.name
            ))),
            None => Err(StepError::transient(format!(
                "the executor of step '{}' did not call back within {} s",
                def.name, def.timeout_secs
            ))),
        };
        match outcome {
            Ok(output) => self.checkpoint(state, row, lease, output).await,
            Err(err) => self.attempt_failed(state, row, lease, &err, counted).await,
        }
    }
}
