//! Storage step: the folder `{TENANT_STORAGE_ROOT}/{tenant}`. Undo removes it.

use crate::step::{Step, StepCtx, StepError};
use async_trait::async_trait;
use serde_json::{Value, json};
use std::path::PathBuf;

pub struct Storage;

/// Marks the folder as created by landlord for this tenant.
const MARKER: &str = ".landlord-tenant";

fn folder(ctx: &StepCtx) -> PathBuf {
    ctx.deps.cfg.tenant_storage_root.join(ctx.key.as_str())
}

#[async_trait]
impl Step for Storage {
    fn name(&self) -> &'static str {
        "storage"
    }

    async fn run(&self, ctx: &StepCtx) -> Result<Value, StepError> {
        let dir = folder(ctx);
        tokio::fs::create_dir_all(&dir).await?;
        tokio::fs::write(dir.join(MARKER), ctx.key.as_str()).await?;
        let path = tokio::fs::canonicalize(&dir)
            .await?
            .to_string_lossy()
            .into_owned();
        Ok(json!({
            "path": path,
            "resources": [{ "kind": "storage_folder", "name": path }],
        }))
    }

    async fn compensate(&self, ctx: &StepCtx, _: Option<&Value>) -> Result<(), StepError> {
        match tokio::fs::remove_dir_all(folder(ctx)).await {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            other => Ok(other?),
        }
    }
}
