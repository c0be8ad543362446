//! Hard deprovisioning of a plan's custom steps (seed 004's "Terraform
//! destroy"): each custom step that ran in the tenant's provisioning is
//! undone by its executor, last first, with the idempotency key its work
//! was started with. They ran after the built-in resources, so they are
//! undone before those are dropped.

use crate::step::{Step, StepCtx, StepError};
use crate::steps::http_step::{self, idempotency_key};
use async_trait::async_trait;
use landlord_shared::actions::UNDOABLE;
use landlord_shared::store;
use serde_json::{Value, json};

pub struct DropCustom;

#[async_trait]
impl Step for DropCustom {
    fn name(&self) -> &'static str {
        "drop_custom"
    }

    async fn run(&self, ctx: &StepCtx) -> Result<Value, StepError> {
        let master = &ctx.deps.master;
        // The deprovisioning run carries the plan the tenant was
        // provisioned on, custom steps' definitions included.
        let plan = ctx.run.plan.as_ref().map(|p| p.0.clone());
        let Some(plan) = plan.filter(|p| !p.http.is_empty()) else {
            return Ok(json!({ "undone": [] }));
        };
        let Some(provision) = store::latest_provision_run(master, ctx.key.as_str()).await? else {
            return Ok(json!({ "undone": [] }));
        };
        let rows = store::steps_of_run(master, provision).await?;
        let Some(provision_run) = store::run_by_id(master, provision).await? else {
            return Ok(json!({ "undone": [] }));
        };
        // The executor sees the work it did: the provisioning run.
        let pctx = StepCtx {
            run: provision_run,
            ..ctx.clone()
        };
        let mut undone = Vec::new();
        for def in plan.http.iter().rev() {
            let Some(row) = rows.iter().find(|r| r.name == def.name) else {
                continue;
            };
            if !UNDOABLE.contains(&row.status) || def.undo.is_none() {
                continue;
            }
            let key = row
                .output
                .as_ref()
                .and_then(|o| o.get("idempotency_key")?.as_str())
                .map_or_else(|| idempotency_key(provision, &def.name), str::to_owned);
            http_step::undo(&pctx, def, &key).await?;
            undone.push(def.name.clone());
        }
        Ok(json!({ "undone": undone }))
    }

    async fn compensate(&self, _: &StepCtx, _: Option<&Value>) -> Result<(), StepError> {
        Ok(()) // undone work cannot come back
    }
}
