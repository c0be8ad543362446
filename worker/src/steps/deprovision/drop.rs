//! Hard deprovisioning: `drop_<x>` removes what provisioning step `<x>`
//! created by running that step's own undo, which already knows how to
//! remove its resources idempotently and only when they are ours.

use super::super::claim::collect;
use crate::step::{Step, StepCtx, StepError};
use async_trait::async_trait;
use landlord_shared::store::mark_resources_deleted;
use serde_json::{Value, json};
use sqlx::PgExecutor;
use std::sync::Arc;
use uuid::Uuid;

pub struct DropResources {
    name: &'static str,
    undoes: Arc<dyn Step>,
}

impl DropResources {
    pub fn new(name: &'static str, undoes: Arc<dyn Step>) -> Self {
        Self { name, undoes }
    }
}

/// The checkpoint the tenant's latest provisioning run stored for `step`.
async fn provision_checkpoint(
    ex: impl PgExecutor<'_>,
    tenant: &str,
    step: &str,
) -> sqlx::Result<Option<Value>> {
    sqlx::query_scalar(
        "SELECT s.output FROM workflow_steps s JOIN workflow_runs r ON r.id = s.run_id
         WHERE r.tenant_name = $1 AND r.kind = 'provision' AND s.name = $2
         ORDER BY r.created_at DESC LIMIT 1",
    )
    .bind(tenant)
    .bind(step)
    .fetch_optional(ex)
    .await
    .map(Option::flatten)
}

async fn live_resources(
    ex: impl PgExecutor<'_>,
    tenant_id: Uuid,
    step: &str,
) -> sqlx::Result<Vec<(String, String)>> {
    sqlx::query_as(
        "SELECT kind, name FROM tenant_resources
         WHERE tenant_id = $1 AND step = $2 AND deleted_at IS NULL ORDER BY kind, name",
    )
    .bind(tenant_id)
    .bind(step)
    .fetch_all(ex)
    .await
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
        let resources = live_resources(master, tenant_id, step).await?;
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
