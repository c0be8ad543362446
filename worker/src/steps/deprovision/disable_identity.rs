//! Soft deprovisioning: the tenant's realm stays with its users and
//! clients, but disabled, so no one can sign in or get a token. In
//! organization mode the tenant's users are disabled instead.

use super::super::claim::left_alone;
use super::super::identity::{is_ours, keycloak, mode};
use crate::step::{Step, StepCtx, StepError};
use async_trait::async_trait;
use landlord_shared::catalogue::IdentityMode;
use serde_json::{Value, json};

pub struct DisableIdentity;

async fn set_enabled(ctx: &StepCtx, enabled: bool) -> Result<Value, StepError> {
    if mode(ctx) == IdentityMode::Organization {
        return super::super::identity_org::set_enabled(ctx, enabled).await;
    }
    let kc = keycloak(ctx)?;
    let realm = ctx.names.realm();
    match is_ours(kc, &realm, ctx).await? {
        None => Ok(json!({ "realm": null })), // never created, or already dropped
        Some(false) => {
            // Someone else's realm of the same name: not ours to disable.
            left_alone(
                ctx,
                "keycloak_realm",
                &realm,
                "no landlord.tenant attribute for this tenant",
            );
            Ok(json!({ "realm": null, "left_alone": realm }))
        }
        Some(true) => {
            kc.put(&format!("/{realm}"), &json!({ "enabled": enabled }))
                .await?;
            Ok(json!({ "realm": realm, "enabled": enabled }))
        }
    }
}

#[async_trait]
impl Step for DisableIdentity {
    fn name(&self) -> &'static str {
        "disable_identity"
    }

    async fn run(&self, ctx: &StepCtx) -> Result<Value, StepError> {
        set_enabled(ctx, false).await
    }

    async fn compensate(&self, ctx: &StepCtx, _: Option<&Value>) -> Result<(), StepError> {
        set_enabled(ctx, true).await.map(drop)
    }
}
