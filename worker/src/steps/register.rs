//! Step 2: the tenant row, status `provisioning`. Undo marks it `deleted`.

use crate::step::{Step, StepCtx, StepError};
use async_trait::async_trait;
use landlord_shared::store::{self, TenantStatus};
use serde_json::{Value, json};

pub struct Register;

#[async_trait]
impl Step for Register {
    fn name(&self) -> &'static str {
        "register"
    }

    async fn run(&self, ctx: &StepCtx) -> Result<Value, StepError> {
        let master = &ctx.deps.master;
        let plan = ctx.run.params.plan.as_deref();
        let id = store::register_tenant_for_run(master, ctx.key.as_str(), plan, ctx.run.id).await?;
        let Some(id) = id else {
            let status = store::tenant_by_name(master, ctx.key.as_str())
                .await?
                .map_or_else(|| "gone".to_owned(), |t| t.status.to_string());
            return Err(StepError::permanent(format!(
                "tenant '{}' already exists and is {status}",
                ctx.key
            )));
        };
        Ok(json!({ "tenant_id": id }))
    }

    async fn compensate(&self, ctx: &StepCtx, _: Option<&Value>) -> Result<(), StepError> {
        let from = [TenantStatus::Provisioning, TenantStatus::Suspended];
        store::move_tenant_named(
            &ctx.deps.master,
            ctx.key.as_str(),
            &from,
            TenantStatus::Deleted,
        )
        .await?;
        Ok(())
    }
}
