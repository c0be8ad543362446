//! Cancellation: an operator's request takes effect at the next step
//! boundary, i.e. when the next attempt's job comes up; a step already
//! running finishes (or fails) first.

use super::{Engine, EngineError, store};
use landlord_shared::actions::start_compensation;
use landlord_shared::model::{Run, StepRow};
use landlord_shared::store::{LogStatus, RunKind, RunStatus, TenantStatus};

impl Engine {
    pub(super) async fn cancel(
        &self,
        run: &Run,
        step: &StepRow,
        compensate: bool,
    ) -> Result<(), EngineError> {
        let to = if compensate {
            RunStatus::Compensating
        } else {
            RunStatus::Cancelled
        };
        let error = format!("cancelled by an operator before step {}", step.name);
        let mut tx = self.deps.master.begin().await?;
        if !store::transition_run(&mut *tx, run.id, RunStatus::Running, to, Some(&error)).await? {
            return Ok(()); // another delivery cancelled it first
        }
        if run.kind == RunKind::Provision
            && let Some(id) = run.tenant_id
        {
            store::set_tenant_status(&mut *tx, id, TenantStatus::Suspended).await?;
        }
        store::insert_provision_log(
            &mut *tx,
            run.tenant_id,
            run.id,
            &step.name,
            LogStatus::Cancelled,
            &error,
        )
        .await?;
        if !compensate {
            let outbox = self.deps.cfg.notify.outbox();
            store::insert_finished_event(&mut tx, outbox, run, RunStatus::Cancelled, Some(&error))
                .await?;
        }
        if compensate {
            let run = Run {
                status: to,
                ..run.clone()
            };
            start_compensation(&mut tx, &run, self.deps.cfg.notify.outbox()).await?;
        }
        tx.commit().await?;
        tracing::info!(tenant = %run.tenant_name, run_id = %run.id, step = %step.name,
            compensate, "Run cancelled by an operator");
        Ok(())
    }
}
