//! Storage step: an S3 bucket `{prefix}-{tenant}-files` when an S3 endpoint
//! is configured, else the folder `{TENANT_STORAGE_ROOT}/{tenant}`. Undo
//! removes it (a bucket is emptied first).

use crate::clients::http::TracedSend;
use crate::clients::http::unexpected;
use crate::step::{Step, StepCtx, StepError};
use async_trait::async_trait;
use landlord_shared::backend::Backend;
use landlord_shared::config::S3Config;
use rusty_s3::actions::{ListObjectsV2, S3Action};
use rusty_s3::{Bucket, Credentials, UrlStyle};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Duration;

pub struct Storage;

/// Marks the folder as created by landlord for this tenant.
const MARKER: &str = ".landlord-tenant";
/// Presigned URLs are used at once; a minute covers clock skew.
const SIGN_FOR: Duration = Duration::from_secs(60);

fn folder(ctx: &StepCtx) -> PathBuf {
    ctx.deps.cfg.tenant_storage_root.join(ctx.key.as_str())
}

fn bucket(s3: &S3Config, name: String) -> Result<(Bucket, Credentials), StepError> {
    let endpoint = s3
        .endpoint
        .parse()
        .map_err(|e| StepError::permanent(format!("S3_ENDPOINT: {e}")))?;
    let bucket = Bucket::new(endpoint, UrlStyle::Path, name, s3.region.clone())
        .map_err(|e| StepError::permanent(format!("S3 bucket: {e}")))?;
    Ok((
        bucket,
        Credentials::new(s3.access_key.clone(), s3.secret_key.expose_secret()),
    ))
}

/// Bucket or folder, as the run decided when it was created: a worker's
/// own S3 settings never turn a bucket tenant into a folder one.
fn s3_of(ctx: &StepCtx) -> Result<Option<&S3Config>, StepError> {
    match ctx.needs {
        Some(Backend::S3) => ctx
            .deps
            .cfg
            .s3
            .as_ref()
            .map(Some)
            .ok_or_else(|| StepError::transient("S3_ENDPOINT is not configured on this worker")),
        _ => Ok(None),
    }
}

async fn create_bucket(ctx: &StepCtx, s3: &S3Config) -> Result<Value, StepError> {
    let name = ctx.names.bucket();
    let (bucket, creds) = bucket(s3, name.clone())?;
    let url = bucket.create_bucket(&creds).sign(SIGN_FOR);
    let resp = ctx.deps.http.put(url).traced_send().await?;
    if !resp.status().is_success() {
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        // Ours from an interrupted attempt: fine. Anyone else's: not.
        if !body.contains("BucketAlreadyOwnedByYou") {
            let msg = format!(
                "create bucket {name}: HTTP {status}: {}",
                body.chars().take(300).collect::<String>()
            );
            return Err(if crate::clients::http::is_transient(status) {
                StepError::transient(msg)
            } else {
                StepError::permanent(msg)
            });
        }
    }
    Ok(json!({
        "bucket": name,
        "endpoint": s3.endpoint,
        "resources": [{ "kind": "s3_bucket", "name": name }],
    }))
}

async fn remove_bucket(ctx: &StepCtx, s3: &S3Config) -> Result<(), StepError> {
    let (bucket, creds) = bucket(s3, ctx.names.bucket())?;
    loop {
        let url = bucket.list_objects_v2(Some(&creds)).sign(SIGN_FOR);
        let resp = ctx.deps.http.get(url).traced_send().await?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(());
        }
        if !resp.status().is_success() {
            return Err(unexpected("list bucket", resp).await);
        }
        let text = resp.text().await?;
        let listing = ListObjectsV2::parse_response(&text)
            .map_err(|e| StepError::permanent(format!("list bucket: {e}")))?;
        if listing.contents.is_empty() {
            break;
        }
        for object in &listing.contents {
            let url = bucket
                .delete_object(Some(&creds), &object.key)
                .sign(SIGN_FOR);
            let resp = ctx.deps.http.delete(url).traced_send().await?;
            if !resp.status().is_success() && resp.status() != reqwest::StatusCode::NOT_FOUND {
                return Err(unexpected("delete object", resp).await);
            }
        }
    }
    let url = bucket.delete_bucket(&creds).sign(SIGN_FOR);
    let resp = ctx.deps.http.delete(url).traced_send().await?;
    if resp.status().is_success() || resp.status() == reqwest::StatusCode::NOT_FOUND {
        return Ok(());
    }
    Err(unexpected("delete bucket", resp).await)
}

#[async_trait]
impl Step for Storage {
    fn name(&self) -> &'static str {
        "storage"
    }

    async fn run(&self, ctx: &StepCtx) -> Result<Value, StepError> {
        if let Some(s3) = s3_of(ctx)? {
            return create_bucket(ctx, s3).await;
        }
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
        if let Some(s3) = s3_of(ctx)? {
            return remove_bucket(ctx, s3).await;
        }
        match tokio::fs::remove_dir_all(folder(ctx)).await {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            other => Ok(other?),
        }
    }
}
