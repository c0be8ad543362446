//! Step 1: the tenant key is `[a-z0-9]{3,30}` and not reserved.

use crate::step::{Step, StepCtx, StepError};
use async_trait::async_trait;
use landlord_shared::tenant::TenantKey;
use serde_json::{Value, json};

pub struct Validate;

#[async_trait]
impl Step for Validate {
    fn name(&self) -> &'static str {
        "validate"
    }

    async fn run(&self, ctx: &StepCtx) -> Result<Value, StepError> {
        let key = TenantKey::parse(&ctx.run.tenant_name).map_err(StepError::permanent)?;
        Ok(json!({ "tenant": key }))
    }

    async fn compensate(&self, _: &StepCtx, _: Option<&Value>) -> Result<(), StepError> {
        Ok(())
    }
}
