//! Hard deprovisioning: `drop_<x>` removes what provisioning step `<x>`
//! created by running that step's own undo, which already knows how to
//! remove its resources idempotently and only when they are ours.

use super::super::claim::collect;
use crate::step::{Step, StepCtx, StepError};
use async_trait::async_trait;
use landlord_shared::store::{
    live_resources_of_step, mark_resources_deleted, provision_checkpoint,
};
use serde_json::{Value, json};
use std::sync::Arc;

pub struct DropResources {
    name: &'static str,
    undoes: Arc<dyn Step>,
}

impl DropResources {
    pub fn new(name: &'static str, undoes: Arc<dyn Step>) -> Self {
        Self { name, undoes }
    }
}

#[async_trait]
impl Step for DropResources {
    fn name(&self) -> &'static str {
        self.name
    }

    async fn run(&self, ctx: &StepCtx) -> Result<Value, StepError> {
        let tenant_id = ctx.require_tenant_id()?;
        let master = &ctx.deps.master;
        let step = self.undoes.name();
        // The run was planned with this step only if the tenant may hold
        // something here, and the engine runs it only on a worker that has
        // the backend.
        let resources = live_resources_of_step(master, tenant_id, step).await?;
        let checkpoint = provision_checkpoint(master, ctx.key.as_str(), step).await?;
        // What the undo finds but is not ours stays, and is listed.
        let (undone, left_alone) = collect(self.undoes.compensate(ctx, checkpoint.as_ref())).await;
        undone?;
        mark_resources_deleted(master, tenant_id, step).await?;
        let dropped: Vec<Value> = resources
            .into_iter()
            .map(|(kind, name)| json!({ "kind": kind, "name": name }))
            .collect();
        Ok(json!({ "dropped": dropped, "left_alone": left_alone }))
    }

    async fn compensate(&self, _: &StepCtx, _: Option<&Value>) -> Result<(), StepError> {
        Ok(()) // dropped data cannot come back
    }
}
