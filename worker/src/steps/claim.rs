//! Ownership of resources on other servers: the mark we put on them, the
//! claims that cover a create whose mark comes in a second request, and how
//! an undo reports what it left alone.
//!
//! A claim (`resource_claims`) is written, and committed on its own, only
//! after the resource was seen to be absent and before it is created. On a
//! later attempt, "exists, has no mark, and we claimed it" means a create of
//! ours was interrupted before its mark was set.

use crate::step::{StepCtx, StepError};
use landlord_shared::store;
use serde_json::{Value, json};
use std::cell::RefCell;
use uuid::Uuid;

/// The text of our mark: the tenant's id, never its (reusable) name.
pub(super) fn mark_text(tenant_id: Uuid) -> String {
    format!("landlord tenant {tenant_id}")
}

/// Records that this run is about to create `kind`/`name`. A claim of the
/// same tenant (an earlier attempt or run) is renewed; another tenant's
/// claim is a permanent error.
pub(super) async fn claim(ctx: &StepCtx, kind: &str, name: &str) -> Result<(), StepError> {
    let tenant_id = ctx.require_tenant_id()?;
    let claimed =
        store::claim_resource(&ctx.deps.master, kind, name, tenant_id, ctx.run.id).await?;
    if !claimed {
        return Err(StepError::permanent(format!(
            "{kind} {name} is claimed by another tenant"
        )));
    }
    Ok(())
}

/// Claims a resource all the deployment's tenants share: the first claim
/// stands, whoever made it.
pub(super) async fn claim_shared(ctx: &StepCtx, kind: &str, name: &str) -> Result<(), StepError> {
    let tenant_id = ctx.require_tenant_id()?;
    store::claim_shared_resource(&ctx.deps.master, kind, name, tenant_id, ctx.run.id).await?;
    Ok(())
}

/// True when a shared resource was claimed by any tenant's run.
pub(super) async fn is_claimed_shared(
    ctx: &StepCtx,
    kind: &str,
    name: &str,
) -> Result<bool, StepError> {
    Ok(store::is_claimed_by_any(&ctx.deps.master, kind, name).await?)
}

/// True when this tenant claimed `kind`/`name`.
pub(super) async fn is_claimed(ctx: &StepCtx, kind: &str, name: &str) -> Result<bool, StepError> {
    let tenant_id = ctx.require_tenant_id()?;
    Ok(store::is_claimed(&ctx.deps.master, kind, name, tenant_id).await?)
}

/// Forgets this tenant's claim once the resource is gone.
pub(super) async fn release(ctx: &StepCtx, kind: &str, name: &str) -> Result<(), StepError> {
    let tenant_id = ctx.require_tenant_id()?;
    store::release_claim(&ctx.deps.master, kind, name, tenant_id).await?;
    Ok(())
}

/// The error a create returns for a resource that exists and is not ours.
pub(super) fn foreign(what: &str, why: &str) -> StepError {
    StepError::permanent(format!("{what} exists and is not Landlord's ({why})"))
}

tokio::task_local! {
    static LEFT_ALONE: RefCell<Vec<Value>>;
}

/// An undo found `kind`/`name` but it is not ours: it stays as it is. Logged
/// at warn, and listed by a hard deprovisioning step (see [`collect`]).
pub(super) fn left_alone(ctx: &StepCtx, kind: &str, name: &str, why: &str) {
    tracing::warn!(tenant = %ctx.key, run_id = %ctx.run.id, kind, name,
        "left {kind} {name} alone: it is not Landlord's ({why})");
    let _ = LEFT_ALONE.try_with(|list| {
        list.borrow_mut()
            .push(json!({ "kind": kind, "name": name, "reason": why }));
    });
}

/// Runs `fut` and returns what it left alone besides its result.
pub(super) async fn collect<T>(fut: impl Future<Output = T>) -> (T, Vec<Value>) {
    LEFT_ALONE
        .scope(RefCell::new(Vec::new()), async move {
            let out = fut.await;
            let list = LEFT_ALONE.with(|l| l.take());
            (out, list)
        })
        .await
}
