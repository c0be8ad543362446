//! Storage step: an S3 bucket `{prefix}-{tenant}-files` when an S3 endpoint
//! is configured, else the folder `{TENANT_STORAGE_ROOT}/{tenant}`. Each
//! carries a mark with the tenant's id (file `.landlord-tenant` in the
//! folder, empty object `.landlord-tenant-{id}` in the bucket); one without
//! it is someone else's: refused at create, left alone (never emptied) by undo. Undo
//! removes ours (a bucket is emptied first). A plan in `prefix` mode with
//! S3 uses `storage_prefix` instead; without S3 its folder is this one.

use super::claim;
use crate::clients::http::TracedSend;
use crate::clients::http::unexpected;
use crate::step::{Step, StepCtx, StepError};
use async_trait::async_trait;
use landlord_shared::backend::Backend;
use landlord_shared::catalogue::StorageMode;
use landlord_shared::config::S3Config;
use rusty_s3::actions::{ListObjectsV2, S3Action};
use rusty_s3::{Bucket, Credentials, UrlStyle};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub struct Storage;

/// The run's plan's storage mode; runs from before plans had their own.
fn mode(ctx: &StepCtx) -> StorageMode {
    ctx.run
        .plan
        .as_ref()
        .map_or(StorageMode::Dedicated, |p| p.0.storage)
}

/// Marker file holding the tenant's id (folder), or the prefix of the
/// empty marker object `.landlord-tenant-{tenant id}` (bucket).
const MARKER: &str = ".landlord-tenant";
/// Temporary folders of an unfinished create: `{TMP_PREFIX}{key}-{random}`.
const TMP_PREFIX: &str = ".landlord-tmp-";
/// Presigned URLs are used at once; a minute covers clock skew.
pub(super) const SIGN_FOR: Duration = Duration::from_secs(60);

fn folder(ctx: &StepCtx) -> PathBuf {
    ctx.deps.cfg.tenant_storage_root.join(ctx.key.as_str())
}

pub(super) fn bucket(s3: &S3Config, name: String) -> Result<(Bucket, Credentials), StepError> {
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

const BUCKET_KIND: &str = "s3_bucket";
const NOT_MARKED: &str = "no .landlord-tenant marker for this tenant";

fn s3_error(what: &str, status: reqwest::StatusCode, body: &str) -> StepError {
    let msg = format!(
        "{what}: HTTP {status}: {}",
        body.chars().take(300).collect::<String>()
    );
    if crate::clients::http::is_transient(status) {
        StepError::transient(msg)
    } else {
        StepError::permanent(msg)
    }
}

/// What the server shows of the bucket.
enum BucketState {
    Absent,
    /// It holds our marker object.
    Ours,
    /// No marker of ours: does it hold anything at all?
    Unmarked {
        empty: bool,
    },
}

/// The bucket's marker: an empty object named after the tenant's id. Empty,
/// because on SeaweedFS an object with content costs the bucket its own
/// volumes.
fn bucket_marker(ctx: &StepCtx) -> Result<String, StepError> {
    Ok(format!("{MARKER}-{}", ctx.require_tenant_id()?))
}

async fn bucket_state(
    ctx: &StepCtx,
    bucket: &Bucket,
    creds: &Credentials,
) -> Result<BucketState, StepError> {
    let url = bucket.head_bucket(Some(creds)).sign(SIGN_FOR);
    let resp = ctx.deps.http.head(url).traced_send().await?;
    match resp.status() {
        reqwest::StatusCode::NOT_FOUND => return Ok(BucketState::Absent),
        s if s.is_success() => {}
        s => return Err(s3_error("HEAD bucket", s, "")),
    }
    let marker = bucket_marker(ctx)?;
    let url = bucket.head_object(Some(creds), &marker).sign(SIGN_FOR);
    let resp = ctx.deps.http.head(url).traced_send().await?;
    match resp.status() {
        reqwest::StatusCode::NOT_FOUND => {}
        s if s.is_success() => return Ok(BucketState::Ours),
        s => return Err(s3_error("HEAD marker", s, "")),
    }
    let mut list = bucket.list_objects_v2(Some(creds));
    list.with_max_keys(1);
    let url = list.sign(SIGN_FOR);
    let resp = ctx.deps.http.get(url).traced_send().await?;
    if !resp.status().is_success() {
        return Err(unexpected("list bucket", resp).await);
    }
    let text = resp.text().await?;
    let listing = ListObjectsV2::parse_response(&text)
        .map_err(|e| StepError::permanent(format!("list bucket: {e}")))?;
    Ok(BucketState::Unmarked {
        empty: listing.contents.is_empty(),
    })
}

async fn put_marker(ctx: &StepCtx, bucket: &Bucket, creds: &Credentials) -> Result<(), StepError> {
    let url = bucket
        .put_object(Some(creds), &bucket_marker(ctx)?)
        .sign(SIGN_FOR);
    let resp = ctx.deps.http.put(url).body("").traced_send().await?;
    if resp.status().is_success() {
        return Ok(());
    }
    Err(unexpected("put bucket marker", resp).await)
}

/// A bucket is made in two requests (the bucket, then its marker object),
/// so its name is claimed first, once it was seen to be absent. Existing:
/// ours with our marker; ours half-made when unmarked, claimed by us and
/// empty (the marker is then written); anyone else's otherwise.
async fn create_bucket(ctx: &StepCtx, s3: &S3Config) -> Result<Value, StepError> {
    let name = ctx.names.bucket();
    let (bucket, creds) = bucket(s3, name.clone())?;
    let what = format!("S3 bucket {name}");
    match bucket_state(ctx, &bucket, &creds).await? {
        BucketState::Ours => {}
        BucketState::Unmarked { empty } => {
            if !(empty && claim::is_claimed(ctx, BUCKET_KIND, &name).await?) {
                return Err(claim::foreign(&what, NOT_MARKED));
            }
            put_marker(ctx, &bucket, &creds).await?;
        }
        BucketState::Absent => {
            claim::claim(ctx, BUCKET_KIND, &name).await?;
            let url = bucket.create_bucket(&creds).sign(SIGN_FOR);
            let resp = ctx.deps.http.put(url).traced_send().await?;
            if !resp.status().is_success() {
                let status = resp.status();
                let body = resp.text().await.unwrap_or_default();
                // Our credentials made it since we looked: look again.
                if !body.contains("BucketAlreadyOwnedByYou") {
                    return Err(s3_error(&format!("create bucket {name}"), status, &body));
                }
                match bucket_state(ctx, &bucket, &creds).await? {
                    BucketState::Ours => {}
                    BucketState::Unmarked { empty: true } => {
                        put_marker(ctx, &bucket, &creds).await?;
                    }
                    _ => return Err(claim::foreign(&what, NOT_MARKED)),
                }
            } else {
                put_marker(ctx, &bucket, &creds).await?;
            }
        }
    }
    Ok(json!({
        "bucket": name,
        "endpoint": s3.endpoint,
        "resources": [{ "kind": BUCKET_KIND, "name": name }],
    }))
}

async fn delete_object(
    ctx: &StepCtx,
    bucket: &Bucket,
    creds: &Credentials,
    key: &str,
) -> Result<(), StepError> {
    let url = bucket.delete_object(Some(creds), key).sign(SIGN_FOR);
    let resp = ctx.deps.http.delete(url).traced_send().await?;
    if !resp.status().is_success() && resp.status() != reqwest::StatusCode::NOT_FOUND {
        return Err(unexpected("delete object", resp).await);
    }
    Ok(())
}

async fn delete_bucket(
    ctx: &StepCtx,
    bucket: &Bucket,
    creds: &Credentials,
) -> Result<(), StepError> {
    let url = bucket.delete_bucket(creds).sign(SIGN_FOR);
    let resp = ctx.deps.http.delete(url).traced_send().await?;
    if resp.status().is_success() || resp.status() == reqwest::StatusCode::NOT_FOUND {
        return Ok(());
    }
    Err(unexpected("delete bucket", resp).await)
}

/// Empties and deletes our bucket, the marker last so that an interrupted
/// undo still knows the bucket is ours. Someone else's bucket is left
/// alone; an unmarked one we claimed goes only while it is empty.
async fn remove_bucket(ctx: &StepCtx, s3: &S3Config) -> Result<(), StepError> {
    let name = ctx.names.bucket();
    let (bucket, creds) = bucket(s3, name.clone())?;
    match bucket_state(ctx, &bucket, &creds).await? {
        BucketState::Absent => return claim::release(ctx, BUCKET_KIND, &name).await,
        BucketState::Unmarked { empty } => {
            if empty && claim::is_claimed(ctx, BUCKET_KIND, &name).await? {
                delete_bucket(ctx, &bucket, &creds).await?;
                return claim::release(ctx, BUCKET_KIND, &name).await;
            }
            claim::left_alone(ctx, BUCKET_KIND, &name, NOT_MARKED);
            return Ok(());
        }
        BucketState::Ours => {}
    }
    let marker = bucket_marker(ctx)?;
    loop {
        let url = bucket.list_objects_v2(Some(&creds)).sign(SIGN_FOR);
        let resp = ctx.deps.http.get(url).traced_send().await?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND {
            return claim::release(ctx, BUCKET_KIND, &name).await;
        }
        if !resp.status().is_success() {
            return Err(unexpected("list bucket", resp).await);
        }
        let text = resp.text().await?;
        let listing = ListObjectsV2::parse_response(&text)
            .map_err(|e| StepError::permanent(format!("list bucket: {e}")))?;
        let others: Vec<_> = listing
            .contents
            .iter()
            .filter(|o| o.key != marker)
            .collect();
        if others.is_empty() {
            break;
        }
        for object in others {
            delete_object(ctx, &bucket, &creds, &object.key).await?;
        }
    }
    delete_object(ctx, &bucket, &creds, &marker).await?;
    delete_bucket(ctx, &bucket, &creds).await?;
    claim::release(ctx, BUCKET_KIND, &name).await
}

/// What is at the tenant's folder: nothing, ours (marker file names this
/// tenant), or someone else's.
async fn folder_is_ours(ctx: &StepCtx, dir: &Path) -> Result<Option<bool>, StepError> {
    if tokio::fs::symlink_metadata(dir)
        .await
        .is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound)
    {
        return Ok(None);
    }
    let tenant_id = ctx.require_tenant_id()?.to_string();
    Ok(Some(
        match tokio::fs::read_to_string(dir.join(MARKER)).await {
            Ok(text) => text.trim() == tenant_id,
            Err(_) => false,
        },
    ))
}

/// The folder appears at once with its marker: it is made under a
/// temporary name in the same root, then renamed into place.
async fn create_folder(ctx: &StepCtx) -> Result<Value, StepError> {
    let dir = folder(ctx);
    let what = format!("folder {}", dir.display());
    match folder_is_ours(ctx, &dir).await? {
        Some(true) => {}
        Some(false) => return Err(claim::foreign(&what, NOT_MARKED)),
        None => {
            let root = &ctx.deps.cfg.tenant_storage_root;
            tokio::fs::create_dir_all(root).await?;
            let tmp = root.join(format!(
                "{TMP_PREFIX}{}-{:016x}",
                ctx.key,
                rand::random::<u64>()
            ));
            tokio::fs::create_dir(&tmp).await?;
            tokio::fs::write(tmp.join(MARKER), ctx.require_tenant_id()?.to_string()).await?;
            if let Err(e) = tokio::fs::rename(&tmp, &dir).await {
                let _ = tokio::fs::remove_dir_all(&tmp).await;
                // Someone made it since we looked (a non-empty one).
                if folder_is_ours(ctx, &dir).await? != Some(true) {
                    return Err(claim::foreign(&what, &format!("{NOT_MARKED}; {e}")));
                }
            }
        }
    }
    let path = tokio::fs::canonicalize(&dir)
        .await?
        .to_string_lossy()
        .into_owned();
    Ok(json!({
        "path": path,
        "resources": [{ "kind": "storage_folder", "name": path }],
    }))
}

/// Removes our folder, and any temporary folder of ours an interrupted
/// create left; anything else is left alone.
async fn remove_folder(ctx: &StepCtx) -> Result<(), StepError> {
    let dir = folder(ctx);
    match folder_is_ours(ctx, &dir).await? {
        Some(true) => match tokio::fs::remove_dir_all(&dir).await {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            other => other?,
        },
        Some(false) => claim::left_alone(ctx, "storage_folder", &dir.to_string_lossy(), NOT_MARKED),
        None => {}
    }
    let root = &ctx.deps.cfg.tenant_storage_root;
    let Ok(mut entries) = tokio::fs::read_dir(root).await else {
        return Ok(());
    };
    let prefix = format!("{TMP_PREFIX}{}-", ctx.key);
    while let Some(entry) = entries.next_entry().await? {
        let leftover = entry.file_name().to_string_lossy().starts_with(&prefix)
            && folder_is_ours(ctx, &entry.path()).await? == Some(true);
        if leftover {
            tokio::fs::remove_dir_all(entry.path()).await?;
        }
    }
    Ok(())
}

#[async_trait]
impl Step for Storage {
    fn name(&self) -> &'static str {
        "storage"
    }

    async fn run(&self, ctx: &StepCtx) -> Result<Value, StepError> {
        if let Some(s3) = s3_of(ctx)? {
            if mode(ctx) == StorageMode::Prefix {
                return super::storage_prefix::run(ctx, s3).await;
            }
            return create_bucket(ctx, s3).await;
        }
        create_folder(ctx).await
    }

    async fn compensate(&self, ctx: &StepCtx, _: Option<&Value>) -> Result<(), StepError> {
        if let Some(s3) = s3_of(ctx)? {
            if mode(ctx) == StorageMode::Prefix {
                return super::storage_prefix::compensate(ctx, s3).await;
            }
            return remove_bucket(ctx, s3).await;
        }
        remove_folder(ctx).await
    }
}
