//! Last step: status `active` and the `tenant.provisioned` event, in one
//! transaction (the outbox).

use crate::step::{Step, StepCtx, StepError};
use async_trait::async_trait;
use landlord_shared::db;
use serde_json::{Value, json};

pub struct Activate;

#[async_trait]
impl Step for Activate {
    fn name(&self) -> &'static str {
        "activate"
    }

    async fn run(&self, ctx: &StepCtx) -> Result<Value, StepError> {
        let tenant_id = ctx.require_tenant_id()?;
        let mut tx = ctx.deps.master.begin().await?;
        let status: String = sqlx::query_scalar(
            "UPDATE tenants SET status = 'active', updated_at = now()
             WHERE id = $1 AND status IN ('provisioning', 'active') RETURNING status",
        )
        .bind(tenant_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| StepError::permanent("tenant left the provisioning state"))?;
        let payload = json!({
            "tenantId": tenant_id,
            "tenantName": ctx.key,
            "plan": ctx.run.params.plan,
        });
        db::insert_event(
            &mut *tx,
            Some(tenant_id),
            ctx.run.id,
            "tenant.provisioned",
            &payload,
        )
        .await?;
        tx.commit().await?;
        Ok(json!({ "status": status }))
    }

    async fn compensate(&self, ctx: &StepCtx, _: Option<&Value>) -> Result<(), StepError> {
        if let Some(id) = ctx.tenant_id {
            sqlx::query(
                "UPDATE tenants SET status = 'suspended', updated_at = now()
                 WHERE id = $1 AND status = 'active'",
            )
            .bind(id)
            .execute(&ctx.deps.master)
            .await?;
        }
        Ok(())
    }
}
