//! Storage in `prefix` mode: tenants share one bucket per deployment,
//! `{prefix}-shared-files`, each under `{tenant}/`, with credentials of its
//! own that reach nothing else — an IAM user `{prefix}-{tenant}` whose
//! inline policy allows object reads, writes and deletes under
//! `{tenant}/*` and listing with that prefix only.
//!
//! Marks: the bucket holds `.landlord-shared` (written after the create,
//! so the name is claimed first, as for a tenant bucket), the tenant's
//! prefix holds `{tenant}/.landlord-tenant-{id}`, and the user's inline
//! policy is named `landlord-{tenant id}`. A prefix with objects but not
//! our marker, or a user without our policy, is someone else's: refused,
//! and left alone by undo. Undo deletes the objects under the prefix (the
//! marker last), then the user's keys, policy and the user; the bucket and
//! the other tenants stay. Without `S3_ENDPOINT` a prefix of the storage
//! root is a folder, which the dedicated mode already makes.

use super::claim;
use super::identity::secrets;
use super::storage::{SIGN_FOR, bucket};
use crate::clients::http::{TracedSend, unexpected};
use crate::clients::iam::{Iam, failed, values};
use crate::step::{StepCtx, StepError};
use landlord_shared::config::S3Config;
use landlord_shared::secrets::SecretStore;
use rusty_s3::actions::{ListObjectsV2, S3Action};
use rusty_s3::{Bucket, Credentials};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

const SHARED_MARKER: &str = ".landlord-shared";
const SHARED_KIND: &str = "s3_shared_bucket";
const USER_KIND: &str = "iam_user";

fn bucket_name(ctx: &StepCtx) -> String {
    format!("{}-shared-files", ctx.deps.cfg.name_prefix.as_str())
}

fn tenant_prefix(ctx: &StepCtx) -> String {
    format!("{}/", ctx.key)
}

fn user_name(ctx: &StepCtx) -> String {
    format!("{}-{}", ctx.deps.cfg.name_prefix.as_str(), ctx.key)
}

fn policy_name(ctx: &StepCtx) -> Result<String, StepError> {
    Ok(format!("landlord-{}", ctx.require_tenant_id()?))
}

fn marker(ctx: &StepCtx) -> Result<String, StepError> {
    Ok(format!(
        "{}.landlord-tenant-{}",
        tenant_prefix(ctx),
        ctx.require_tenant_id()?
    ))
}

fn secret_ref(user: &str) -> String {
    format!("s3/{user}")
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

/// What the tenant's credentials may do: objects under its prefix, and a
/// listing of the bucket only with that prefix.
fn policy(bucket: &str, prefix: &str) -> String {
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                "Resource": [format!("arn:aws:s3:::{bucket}/{prefix}*")],
            },
            {
                "Effect": "Allow",
                "Action": ["s3:ListBucket"],
                "Resource": [format!("arn:aws:s3:::{bucket}")],
                "Condition": { "StringLike": { "s3:prefix": [format!("{prefix}*")] } },
            },
        ],
    })
    .to_string()
}

/// `None` when there is no such user; whether it carries our policy.
async fn user_is_ours(iam: &Iam<'_>, user: &str, policy: &str) -> Result<Option<bool>, StepError> {
    let found = iam.call("GetUser", &[("UserName", user)]).await?;
    if found.is("NoSuchEntity") {
        return Ok(None);
    }
    if !found.status.is_success() {
        return Err(failed("GetUser", &found));
    }
    let has = iam
        .call(
            "GetUserPolicy",
            &[("UserName", user), ("PolicyName", policy)],
        )
        .await?;
    if has.status.is_success() {
        return Ok(Some(true));
    }
    if has.is("NoSuchEntity") {
        return Ok(Some(false));
    }
    Err(failed("GetUserPolicy", &has))
}

/// The user with its policy, and one access key whose secret is in the
/// secret store. A key made by an attempt that died before storing its
/// secret is deleted and made again.
async fn ensure_user(ctx: &StepCtx, iam: &Iam<'_>, bucket: &str) -> Result<String, StepError> {
    let user = user_name(ctx);
    let policy_name = policy_name(ctx)?;
    match user_is_ours(iam, &user, &policy_name).await? {
        Some(true) => {}
        Some(false) if claim::is_claimed(ctx, USER_KIND, &user).await? => {}
        Some(false) => {
            return Err(claim::foreign(
                &format!("IAM user {user}"),
                "no landlord policy for this tenant",
            ));
        }
        None => {
            claim::claim(ctx, USER_KIND, &user).await?;
            let made = iam.call("CreateUser", &[("UserName", &user)]).await?;
            if !made.status.is_success() && !made.is("EntityAlreadyExists") {
                return Err(failed("CreateUser", &made));
            }
        }
    }
    let document = policy(bucket, &tenant_prefix(ctx));
    iam.ok(
        "PutUserPolicy",
        &[
            ("UserName", &user),
            ("PolicyName", &policy_name),
            ("PolicyDocument", &document),
        ],
    )
    .await?;
    let secrets = secrets(ctx)?;
    let listed = iam.ok("ListAccessKeys", &[("UserName", &user)]).await?;
    let keys = values(&listed.body, "AccessKeyId");
    if let Ok(stored) = secrets.get(&ctx.deps.master, &secret_ref(&user)).await
        && let Some((id, _)) = stored.expose_secret().split_once(':')
        && keys.iter().any(|k| k == id)
    {
        return Ok(id.to_owned());
    }
    for key in &keys {
        iam.ok(
            "DeleteAccessKey",
            &[("UserName", &user), ("AccessKeyId", key)],
        )
        .await?;
    }
    let made = iam.ok("CreateAccessKey", &[("UserName", &user)]).await?;
    let (Some(id), Some(secret)) = (
        values(&made.body, "AccessKeyId").into_iter().next(),
        values(&made.body, "SecretAccessKey").into_iter().next(),
    ) else {
        return Err(StepError::transient(
            "CreateAccessKey answered without a key",
        ));
    };
    secrets
        .put(
            &ctx.deps.master,
            &secret_ref(&user),
            &SecretString::from(format!("{id}:{secret}")),
        )
        .await
        .map_err(StepError::transient)?;
    Ok(id)
}

pub(super) async fn run(ctx: &StepCtx, s3: &S3Config) -> Result<Value, StepError> {
    let (b, creds) = ensure_bucket(ctx, s3).await?;
    ensure_prefix(ctx, &b, &creds).await?;
    let iam = Iam::new(&ctx.deps.http, s3);
    let key_id = ensure_user(ctx, &iam, b.name()).await?;
    let user = user_name(ctx);
    Ok(json!({
        "mode": "prefix",
        "bucket": b.name(),
        "prefix": tenant_prefix(ctx),
        "endpoint": s3.endpoint,
        "access_key_id": key_id,
        "secret_ref": secret_ref(&user),
        "resources": [
            { "kind": "s3_prefix", "name": format!("{}/{}", b.name(), tenant_prefix(ctx)) },
            { "kind": USER_KIND, "name": user },
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
    let iam = Iam::new(&ctx.deps.http, s3);
    let user = user_name(ctx);
    let policy_name = policy_name(ctx)?;
    let found = user_is_ours(&iam, &user, &policy_name).await?;
    let ours = match found {
        None => false,
        Some(true) => true,
        Some(false) => claim::is_claimed(ctx, USER_KIND, &user).await?,
    };
    if ours {
        let listed = iam.ok("ListAccessKeys", &[("UserName", &user)]).await?;
        for key in values(&listed.body, "AccessKeyId") {
            iam.ok(
                "DeleteAccessKey",
                &[("UserName", &user), ("AccessKeyId", &key)],
            )
            .await?;
        }
        let dropped = iam
            .call(
                "DeleteUserPolicy",
                &[("UserName", &user), ("PolicyName", &policy_name)],
            )
            .await?;
        if !dropped.status.is_success() && !dropped.is("NoSuchEntity") {
            return Err(failed("DeleteUserPolicy", &dropped));
        }
        let gone = iam.call("DeleteUser", &[("UserName", &user)]).await?;
        if !gone.status.is_success() && !gone.is("NoSuchEntity") {
            return Err(failed("DeleteUser", &gone));
        }
    } else if found.is_some() {
        claim::left_alone(ctx, USER_KIND, &user, "no landlord policy for this tenant");
    }
    claim::release(ctx, USER_KIND, &user).await?;
    SecretStore::delete(&ctx.deps.master, &secret_ref(&user))
        .await
        .map_err(StepError::transient)
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
