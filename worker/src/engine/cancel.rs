//! Cancellation: an operator's request takes effect at the next step
//! boundary, i.e. when the next attempt's job comes up; a step already
//! running finishes (or fails) first.

use super::{Engine, EngineError, store};
use landlord_shared::actions::start_compensation;
use landlord_shared::db;
use landlord_shared::model::Run;

impl Engine {
    pub(super) async fn cancel(
        &self,
        run: &Run,
        position: i32,
        compensate: bool,
    ) -> Result<(), EngineError> {
        let step = store::step_at(&self.deps.master, run.id, position)
            .await?
            .ok_or(EngineError::NoSuchStep(run.id, position))?;
        let to = if compensate {
            "compensating"
        } else {
            "cancelled"
        };
        let error = format!("cancelled by an operator before step {}", step.name);
        let mut tx = self.deps.master.begin().await?;
        if !store::transition_run(&mut *tx, run.id, "running", to, Some(&error)).await? {
            return Ok(()); // another delivery cancelled it first
        }
        if run.kind == "provision"
            && let Some(id) = run.tenant_id
        {
            store::set_tenant_status(&mut *tx, id, "suspended").await?;
        }
        db::insert_provision_log(
            &mut *tx,
            run.tenant_id,
            run.id,
            &step.name,
            "cancelled",
            &error,
        )
        .await?;
        if !compensate {
            db::insert_finished_event(&mut tx, run, "cancelled", Some(&error)).await?;
        }
        if compensate {
            let run = Run {
                status: to.to_owned(),
                ..run.clone()
            };
            start_compensation(&mut tx, &run).await?;
        }
        tx.commit().await?;
        tracing::info!(tenant = %run.tenant_name, run_id = %run.id, step = %step.name,
            compensate, "Run cancelled by an operator");
        Ok(())
    }
}
