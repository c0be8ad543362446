//! Step 2: the tenant row, status `provisioning`. Undo marks it `deleted`.

use crate::step::{Step, StepCtx, StepError};
use async_trait::async_trait;
use serde_json::{Value, json};
use uuid::Uuid;

pub struct Register;

#[async_trait]
impl Step for Register {
    fn name(&self) -> &'static str {
        "register"
    }

    async fn run(&self, ctx: &StepCtx) -> Result<Value, StepError> {
        let mut tx = ctx.deps.master.begin().await?;
        // Re-running after a crash finds our own `provisioning` row; a name
        // that is active (or being deleted) belongs to someone else.
        let id: Option<Uuid> = sqlx::query_scalar(
            "INSERT INTO tenants (id, name, plan, status) VALUES ($1, $2, $3, 'provisioning')
             ON CONFLICT (name) DO UPDATE
                SET status = 'provisioning', plan = COALESCE(EXCLUDED.plan, tenants.plan), updated_at = now()
                WHERE tenants.status IN ('provisioning', 'suspended', 'deleted')
             RETURNING id",
        )
        .bind(Uuid::now_v7())
        .bind(ctx.key.as_str())
        .bind(ctx.run.params.plan.as_deref())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(id) = id else {
            let status: String = sqlx::query_scalar("SELECT status FROM tenants WHERE name = $1")
                .bind(ctx.key.as_str())
                .fetch_one(&mut *tx)
                .await?;
            return Err(StepError::permanent(format!(
                "tenant '{}' already exists and is {status}",
                ctx.key
            )));
        };
        sqlx::query("UPDATE workflow_runs SET tenant_id = $1, updated_at = now() WHERE id = $2")
            .bind(id)
            .bind(ctx.run.id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(json!({ "tenant_id": id }))
    }

    async fn compensate(&self, ctx: &StepCtx, _: Option<&Value>) -> Result<(), StepError> {
        sqlx::query(
            "UPDATE tenants SET status = 'deleted', updated_at = now()
             WHERE name = $1 AND status IN ('provisioning', 'suspended')",
        )
        .bind(ctx.key.as_str())
        .execute(&ctx.deps.master)
        .await?;
        Ok(())
    }
}
