//! Last step: status `active` and the `tenant.provisioned` event, in one
//! transaction (the outbox).

use crate::step::{Step, StepCtx, StepError};
use async_trait::async_trait;
use landlord_shared::store::{self, TenantStatus};
use serde_json::{Value, json};

pub struct Activate;

/// Seed 004's welcome fields. The admin's password is not in it: the
/// outbox row keeps only `adminPasswordRef`, resolved at delivery time.
fn welcome_payload(ctx: &StepCtx, tenant_id: uuid::Uuid) -> Value {
    let notify = &ctx.deps.cfg.notify;
    let identity = ctx.output_of("identity");
    let admin = ctx.run.params.admin.as_ref();
    let fill = |template: &str| template.replace("{tenant}", ctx.key.as_str());
    json!({
        "tenantId": tenant_id,
        "tenantName": ctx.key,
        "plan": ctx.run.params.plan,
        "email": admin.map(|a| a.email.as_str()).or_else(|| identity.and_then(|i| i["admin_username"].as_str())),
        "firstName": admin.map(|a| a.first_name.as_str()),
        "lastName": admin.map(|a| a.last_name.as_str()),
        "appPlaneUrl": fill(&notify.app_plane_url),
        "adminPortalUrl": fill(&notify.admin_portal_url),
        "loginUrl": identity.and_then(|i| i["login_url"].as_str()),
        "supportEmail": notify.support_email,
        "adminPasswordRef": identity.and_then(|i| i["admin_secret_ref"].as_str()),
    })
}

#[async_trait]
impl Step for Activate {
    fn name(&self) -> &'static str {
        "activate"
    }

    async fn run(&self, ctx: &StepCtx) -> Result<Value, StepError> {
        let tenant_id = ctx.require_tenant_id()?;
        let mut tx = ctx.deps.master.begin().await?;
        let from = [TenantStatus::Provisioning, TenantStatus::Active];
        let status = store::move_tenant(&mut *tx, tenant_id, &from, TenantStatus::Active)
            .await?
            .ok_or_else(|| StepError::permanent("tenant left the provisioning state"))?;
        let payload = welcome_payload(ctx, tenant_id);
        store::insert_event(
            &mut tx,
            ctx.deps.cfg.notify.outbox(),
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
            let from = [TenantStatus::Active];
            store::move_tenant(&ctx.deps.master, id, &from, TenantStatus::Suspended).await?;
        }
        Ok(())
    }
}
