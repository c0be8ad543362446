//! Status changes of a tenant being deprovisioned. Each is a guarded
//! UPDATE: the statuses a step may start from include its own result, so a
//! re-run attempt is a no-op.

use crate::step::{Step, StepCtx, StepError};
use async_trait::async_trait;
use landlord_shared::store::{self, RunKind, TenantStatus};
use serde_json::{Value, json};
use sqlx::PgConnection;

async fn move_tenant(
    conn: &mut PgConnection,
    ctx: &StepCtx,
    from: &[TenantStatus],
    to: TenantStatus,
) -> Result<Value, StepError> {
    let tenant_id = ctx.require_tenant_id()?;
    let moved = store::move_tenant(&mut *conn, tenant_id, from, to).await?;
    if moved.is_none() {
        let now = store::tenant_by_id(&mut *conn, tenant_id).await?;
        let status = now.map_or_else(|| "gone".to_owned(), |t| t.status.to_string());
        return Err(StepError::permanent(format!(
            "tenant is {status}; expected one of {from:?}"
        )));
    }
    Ok(json!({ "status": to }))
}

/// Soft: nobody uses a suspended tenant while it is being locked down.
pub struct Suspend;

#[async_trait]
impl Step for Suspend {
    fn name(&self) -> &'static str {
        "suspend"
    }

    async fn run(&self, ctx: &StepCtx) -> Result<Value, StepError> {
        let mut conn = ctx.deps.master.acquire().await?;
        move_tenant(
            &mut conn,
            ctx,
            &[
                TenantStatus::Active,
                TenantStatus::Provisioning,
                TenantStatus::Suspended,
            ],
            TenantStatus::Suspended,
        )
        .await
    }

    async fn compensate(&self, _: &StepCtx, _: Option<&Value>) -> Result<(), StepError> {
        Ok(()) // the previous status is not known; suspended is the safe one
    }
}

/// Hard: `deleting` tells everyone the resources are going away.
pub struct MarkDeleting;

#[async_trait]
impl Step for MarkDeleting {
    fn name(&self) -> &'static str {
        "mark_deleting"
    }

    async fn run(&self, ctx: &StepCtx) -> Result<Value, StepError> {
        let mut conn = ctx.deps.master.acquire().await?;
        move_tenant(
            &mut conn,
            ctx,
            &[
                TenantStatus::Active,
                TenantStatus::Provisioning,
                TenantStatus::Suspended,
                TenantStatus::Deleted,
                TenantStatus::Deleting,
            ],
            TenantStatus::Deleting,
        )
        .await
    }

    async fn compensate(&self, _: &StepCtx, _: Option<&Value>) -> Result<(), StepError> {
        Ok(())
    }
}

/// Last step of both modes; writes `tenant.deprovisioned` to the outbox
/// in the same transaction.
pub struct MarkDeleted;

#[async_trait]
impl Step for MarkDeleted {
    fn name(&self) -> &'static str {
        "mark_deleted"
    }

    async fn run(&self, ctx: &StepCtx) -> Result<Value, StepError> {
        let tenant_id = ctx.require_tenant_id()?;
        let mut tx = ctx.deps.master.begin().await?;
        let output = move_tenant(
            &mut tx,
            ctx,
            &[
                TenantStatus::Suspended,
                TenantStatus::Deleting,
                TenantStatus::Deleted,
            ],
            TenantStatus::Deleted,
        )
        .await?;
        let mode = if ctx.run.kind == RunKind::DeprovisionHard {
            "hard"
        } else {
            "soft"
        };
        let payload = json!({
            "tenantId": tenant_id,
            "tenantName": ctx.key,
            "mode": mode,
        });
        store::insert_event(
            &mut tx,
            ctx.deps.cfg.notify.outbox(),
            Some(tenant_id),
            ctx.run.id,
            "tenant.deprovisioned",
            &payload,
        )
        .await?;
        tx.commit().await?;
        Ok(output)
    }

    async fn compensate(&self, _: &StepCtx, _: Option<&Value>) -> Result<(), StepError> {
        Ok(())
    }
}
