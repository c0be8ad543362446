//! Storage in `prefix` mode: tenants share one bucket per deployment,
//! `{prefix}-shared-files`, each under `{tenant}/`. The step keeps no
//! credentials: the application asks the API for short-lived ones
//! (`POST /tenants/{id}/storage-credentials`, STS scoped to the prefix;
//! see `landlord_api::sts` for why not an IAM user per tenant).
//!
//! Marks: the bucket holds `.landlord-shared` (written after the create,
//! so the name is claimed first, as for a tenant bucket) and the tenant's
//! prefix holds `{tenant}/.landlord-tenant-{id}`. A prefix with objects
//! but not our marker is someone else's: refused, and left alone by undo.
//! Undo deletes the objects under the prefix, the marker last; the bucket
//! and the other tenants stay. Without `S3_ENDPOINT` a prefix of the
//! storage root is a folder, which the dedicated mode already makes.

use super::claim;
use super::storage::{SIGN_FOR, bucket};
use crate::clients::http::{TracedSend, unexpected};
use crate::step::{StepCtx, StepError};
use landlord_shared::config::S3Config;
use rusty_s3::actions::{ListObjectsV2, S3Action};
use rusty_s3::{Bucket, Credentials};
use serde_json::{Value, json};

const SHARED_MARKER: &str = ".landlord-shared";
const SHARED_KIND: &str = "s3_shared_bucket";

fn bucket_name(ctx: &StepCtx) -> String {
    format!("{}-shared-files", ctx.deps.cfg.name_prefix.as_str())
}

fn tenant_prefix(ctx: &StepCtx) -> String {
    format!("{}/", ctx.key)
}

fn marker(ctx: &StepCtx) -> Result<String, StepError> {
    Ok(format!(
        "{}.landlord-tenant-{}",
        tenant_prefix(ctx),
        ctx.require_tenant_id()?
    ))
}

async fn head(ctx: &StepCtx, url: url::Url) -> Result<bool, StepError> {
    let resp = ctx.deps.http.head(url).traced_send().await?;
    match resp.status() {
        reqwest::StatusCode::NOT_FOUND => Ok(false),
        s if s.is_success() => Ok(true),
        _ => Err(unexpected("HEAD", resp).await),
    }
}

async fn put_empty(
    ctx: &StepCtx,
    b: &Bucket,
    creds: &Credentials,
    key: &str,
) -> Result<(), StepError> {
    let url = b.put_object(Some(creds), key).sign(SIGN_FOR);
    let resp = ctx.deps.http.put(url).body("").traced_send().await?;
    if resp.status().is_success() {
        return Ok(());
    }
    Err(unexpected(&format!("put {key}"), resp).await)
}

/// Keys under `prefix` (all of them, page by page).
async fn keys_under(
    ctx: &StepCtx,
    b: &Bucket,
    creds: &Credentials,
    prefix: &str,
) -> Result<Vec<String>, StepError> {
    let mut keys = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut list = b.list_objects_v2(Some(creds));
        list.with_prefix(prefix);
        if let Some(t) = &token {
            list.with_continuation_token(t.clone());
        }
        let resp = ctx.deps.http.get(list.sign(SIGN_FOR)).traced_send().await?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(keys);
        }
        if !resp.status().is_success() {
            return Err(unexpected("list bucket", resp).await);
        }
        let text = resp.text().await?;
        let page = ListObjectsV2::parse_response(&text)
            .map_err(|e| StepError::permanent(format!("list bucket: {e}")))?;
        keys.extend(page.contents.into_iter().map(|o| o.key));
        match page.next_continuation_token {
            Some(t) => token = Some(t),
            None => return Ok(keys),
        }
    }
}

/// The shared bucket, made once: absent → claimed and created, then
/// marked; unmarked → ours only if empty and claimed (an interrupted
/// create of ours); else someone else's.
async fn ensure_bucket(ctx: &StepCtx, s3: &S3Config) -> Result<(Bucket, Credentials), StepError> {
    let name = bucket_name(ctx);
    let (b, creds) = bucket(s3, name.clone())?;
    let what = format!("S3 bucket {name}");
    if !head(ctx, b.head_bucket(Some(&creds)).sign(SIGN_FOR)).await? {
        claim::claim_shared(ctx, SHARED_KIND, &name).await?;
        let resp = ctx
            .deps
            .http
            .put(b.create_bucket(&creds).sign(SIGN_FOR))
            .traced_send()
            .await?;
        let status = resp.status();
        if !status.is_success() {
            let body = resp.text().await.unwrap_or_default();
            // Another tenant's first run (same credentials) made it.
            if !body.contains("BucketAlreadyOwnedByYou") {
                return Err(StepError::permanent(format!(
                    "create bucket {name}: HTTP {status}: {}",
                    body.chars().take(300).collect::<String>()
                )));
            }
        }
    }
    let marked = async || {
        head(
            ctx,
            b.head_object(Some(&creds), SHARED_MARKER).sign(SIGN_FOR),
        )
        .await
    };
    if marked().await? {
        return Ok((b, creds));
    }
    let empty = keys_under(ctx, &b, &creds, "").await?.is_empty();
    if !(empty && claim::is_claimed_shared(ctx, SHARED_KIND, &name).await?) {
        // A concurrent first tenant may have marked the bucket, and
        // written under its prefix, since we looked.
        if marked().await? {
            return Ok((b, creds));
        }
        return Err(claim::foreign(&what, "no .landlord-shared marker"));
    }
    put_empty(ctx, &b, &creds, SHARED_MARKER).await?;
    Ok((b, creds))
}

/// The tenant's prefix, marked first; objects there without our marker
/// are someone else's.
async fn ensure_prefix(ctx: &StepCtx, b: &Bucket, creds: &Credentials) -> Result<(), StepError> {
    let marker = marker(ctx)?;
    if head(ctx, b.head_object(Some(creds), &marker).sign(SIGN_FOR)).await? {
        return Ok(());
    }
    let prefix = tenant_prefix(ctx);
    if !keys_under(ctx, b, creds, &prefix).await?.is_empty() {
        return Err(claim::foreign(
            &format!("prefix {prefix} of bucket {}", b.name()),
            "no .landlord-tenant marker for this tenant",
        ));
    }
    put_empty(ctx, b, creds, &marker).await
}

pub(super) async fn run(ctx: &StepCtx, s3: &S3Config) -> Result<Value, StepError> {
    let (b, creds) = ensure_bucket(ctx, s3).await?;
    ensure_prefix(ctx, &b, &creds).await?;
    Ok(json!({
        "mode": "prefix",
        "bucket": b.name(),
        "prefix": tenant_prefix(ctx),
        "endpoint": s3.endpoint,
        "credentials": format!("POST /tenants/{}/storage-credentials", ctx.key),
        "resources": [
            { "kind": "s3_prefix", "name": format!("{}/{}", b.name(), tenant_prefix(ctx)) },
        ],
    }))
}

pub(super) async fn compensate(ctx: &StepCtx, s3: &S3Config) -> Result<(), StepError> {
    let name = bucket_name(ctx);
    let (b, creds) = bucket(s3, name.clone())?;
    let prefix = tenant_prefix(ctx);
    let marker = marker(ctx)?;
    if head(ctx, b.head_object(Some(&creds), &marker).sign(SIGN_FOR)).await? {
        for key in keys_under(ctx, &b, &creds, &prefix).await? {
            if key != marker {
                delete(ctx, &b, &creds, &key).await?;
            }
        }
        delete(ctx, &b, &creds, &marker).await?;
    } else if !keys_under(ctx, &b, &creds, &prefix).await?.is_empty() {
        claim::left_alone(
            ctx,
            "s3_prefix",
            &format!("{name}/{prefix}"),
            "no marker for this tenant",
        );
    }
    Ok(())
}

async fn delete(
    ctx: &StepCtx,
    b: &Bucket,
    creds: &Credentials,
    key: &str,
) -> Result<(), StepError> {
    let url = b.delete_object(Some(creds), key).sign(SIGN_FOR);
    let resp = ctx.deps.http.delete(url).traced_send().await?;
    if resp.status().is_success() || resp.status() == reqwest::StatusCode::NOT_FOUND {
        return Ok(());
    }
    Err(unexpected(&format!("delete {key}"), resp).await)
}
