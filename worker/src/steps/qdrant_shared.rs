//! Qdrant in `shared` mode, Qdrant's own multitenancy design: one
//! collection per tier, `{prefix}_shared_{tier}`, with a keyword payload
//! index on `tenant_id` marked `is_tenant`, so each tenant's points are
//! stored together and a filter on the field is cheap. The tenant's points
//! carry its id (the tenant's UUID, never its reusable name) in that field;
//! the SaaS application writes them with it and reads through the filter
//! `tenant_connections` gives it.
//!
//! The collection is created on first use with metadata `landlord_shared` =
//! the name prefix in its create request; one of that name without it is
//! someone else's and refused. Undo and deprovisioning delete the tenant's
//! points by that filter and nothing else; the collection stays.

use super::claim::{foreign, left_alone};
use super::qdrant::{check_config, config, existing_marked, request_to};
use crate::clients::http::{TracedSend, unexpected};
use crate::step::{StepCtx, StepError};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const SHARED_KEY: &str = "landlord_shared";
pub const TENANT_FIELD: &str = "tenant_id";
const NOT_MARKED: &str = "no landlord_shared metadata for this deployment";

/// The shared collection of the run's tier.
fn collection(ctx: &StepCtx) -> String {
    let tier = ctx
        .run
        .plan
        .as_ref()
        .map_or("standard", |p| p.0.tier.as_str());
    format!("{}_shared_{tier}", ctx.deps.cfg.name_prefix.as_str())
}

/// The filter that selects the tenant's points, and nothing else.
pub fn tenant_filter(tenant_id: &str) -> Value {
    json!({ "must": [{ "key": TENANT_FIELD, "match": { "value": tenant_id } }] })
}

async fn ensure_collection(ctx: &StepCtx, name: &str) -> Result<(), StepError> {
    let cfg = config(ctx)?;
    let prefix = ctx.deps.cfg.name_prefix.as_str();
    let check = |found: Option<super::qdrant::Found>| match found {
        Some(f) if f.ours => check_config(cfg, name, &f.vectors),
        Some(_) => Err(foreign(&format!("qdrant collection {name}"), NOT_MARKED)),
        None => Err(StepError::transient(format!("collection {name} vanished"))),
    };
    if let Some(found) = existing_marked(ctx, name, SHARED_KEY, prefix).await? {
        return check(Some(found));
    }
    let body = json!({
        "vectors": { "size": cfg.vector_size, "distance": cfg.distance },
        "metadata": { SHARED_KEY: prefix },
    });
    let resp = request_to(ctx, Method::PUT, &format!("/collections/{name}"))?
        .json(&body)
        .traced_send()
        .await?;
    match resp.status() {
        s if s.is_success() => Ok(()),
        // Another tenant's first run created it at the same moment.
        StatusCode::CONFLICT => check(existing_marked(ctx, name, SHARED_KEY, prefix).await?),
        _ => Err(unexpected(&format!("create collection {name}"), resp).await),
    }
}

/// The tenant index; creating it again is a no-op for Qdrant.
async fn ensure_index(ctx: &StepCtx, name: &str) -> Result<(), StepError> {
    let body = json!({
        "field_name": TENANT_FIELD,
        "field_schema": { "type": "keyword", "is_tenant": true },
    });
    let resp = request_to(
        ctx,
        Method::PUT,
        &format!("/collections/{name}/index?wait=true"),
    )?
    .json(&body)
    .traced_send()
    .await?;
    if resp.status().is_success() {
        return Ok(());
    }
    Err(unexpected(&format!("index {TENANT_FIELD} of {name}"), resp).await)
}

pub(super) async fn run(ctx: &StepCtx) -> Result<Value, StepError> {
    let cfg = config(ctx)?;
    let name = collection(ctx);
    ensure_collection(ctx, &name).await?;
    ensure_index(ctx, &name).await?;
    let tenant_id = ctx.require_tenant_id()?.to_string();
    Ok(json!({
        "mode": "shared",
        "collection": name,
        "tenant_field": TENANT_FIELD,
        "tenant_value": tenant_id,
        "filter": tenant_filter(&tenant_id),
        "vector_size": cfg.vector_size,
        "distance": cfg.distance,
        "resources": [{ "kind": "qdrant_points", "name": format!("{name}/{TENANT_FIELD}={tenant_id}") }],
    }))
}

/// Deletes the tenant's points, only in our shared collection.
pub(super) async fn compensate(ctx: &StepCtx) -> Result<(), StepError> {
    let name = collection(ctx);
    let prefix = ctx.deps.cfg.name_prefix.as_str();
    match existing_marked(ctx, &name, SHARED_KEY, prefix).await? {
        None => return Ok(()),
        Some(found) if !found.ours => {
            left_alone(ctx, "qdrant_collection", &name, NOT_MARKED);
            return Ok(());
        }
        Some(_) => {}
    }
    let tenant_id = ctx.require_tenant_id()?.to_string();
    let resp = request_to(
        ctx,
        Method::POST,
        &format!("/collections/{name}/points/delete?wait=true"),
    )?
    .json(&json!({ "filter": tenant_filter(&tenant_id) }))
    .traced_send()
    .await?;
    if resp.status().is_success() || resp.status() == StatusCode::NOT_FOUND {
        return Ok(());
    }
    Err(unexpected(&format!("delete the tenant's points in {name}"), resp).await)
}
