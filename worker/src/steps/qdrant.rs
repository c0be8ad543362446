//! Qdrant step: collection `{prefix}_{tenant}_vectors` with the configured
//! vector size and distance, marked with `metadata.landlord_tenant` = the
//! tenant's id in the create request. An existing collection is ours only
//! with that mark (the same config is not enough); ours with a different
//! config is a permanent error. Undo deletes ours only. A plan in `shared`
//! mode uses `qdrant_shared` instead.

use super::claim::{foreign, left_alone};
use crate::clients::http::TracedSend;
use crate::clients::http::unexpected;
use crate::step::{Step, StepCtx, StepError};
use async_trait::async_trait;
use landlord_shared::catalogue::QdrantMode;
use landlord_shared::config::QdrantConfig;
use reqwest::{Method, RequestBuilder, StatusCode};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

pub struct Qdrant;

/// How the run's plan keeps the tenant's vectors; runs from before plans
/// had collections of their own.
fn mode(ctx: &StepCtx) -> QdrantMode {
    ctx.run
        .plan
        .as_ref()
        .map_or(QdrantMode::Collection, |p| p.0.qdrant)
}

pub(super) fn config(ctx: &StepCtx) -> Result<&QdrantConfig, StepError> {
    ctx.deps
        .cfg
        .qdrant
        .as_ref()
        .ok_or_else(|| StepError::permanent("QDRANT_URL is not configured"))
}

fn request(ctx: &StepCtx, method: Method, collection: &str) -> Result<RequestBuilder, StepError> {
    request_to(ctx, method, &format!("/collections/{collection}"))
}

/// A request to `path` on the Qdrant server, with the API key.
pub(super) fn request_to(
    ctx: &StepCtx,
    method: Method,
    path: &str,
) -> Result<RequestBuilder, StepError> {
    let cfg = config(ctx)?;
    let req = ctx.deps.http.request(method, format!("{}{path}", cfg.url));
    Ok(match &cfg.api_key {
        Some(key) => req.header("api-key", key.expose_secret()),
        None => req,
    })
}

/// Key of our mark in the collection's `metadata` (v1.19
/// `CreateCollection.metadata`, returned as `CollectionConfig.metadata`).
const MARK_KEY: &str = "landlord_tenant";
const NOT_MARKED: &str = "no landlord_tenant metadata for this tenant";

/// An existing collection: its (size, distance) and whether it carries our
/// mark.
pub(super) struct Found {
    pub(super) vectors: (u64, String),
    pub(super) ours: bool,
}

/// The collection as the server shows it, or `None` when it does not exist.
async fn existing(ctx: &StepCtx, collection: &str) -> Result<Option<Found>, StepError> {
    let tenant_id = ctx.require_tenant_id()?.to_string();
    existing_marked(ctx, collection, MARK_KEY, &tenant_id).await
}

/// The collection, `ours` when its metadata has `key` = `value`.
pub(super) async fn existing_marked(
    ctx: &StepCtx,
    collection: &str,
    key: &str,
    value: &str,
) -> Result<Option<Found>, StepError> {
    let resp = request(ctx, Method::GET, collection)?.traced_send().await?;
    match resp.status() {
        StatusCode::NOT_FOUND => Ok(None),
        s if s.is_success() => {
            let body: Value = resp.json().await?;
            let config = &body["result"]["config"];
            let vectors = &config["params"]["vectors"];
            Ok(Some(Found {
                vectors: (
                    vectors["size"].as_u64().unwrap_or_default(),
                    vectors["distance"].as_str().unwrap_or_default().to_owned(),
                ),
                ours: config["metadata"][key].as_str() == Some(value),
            }))
        }
        _ => Err(unexpected(&format!("GET collection {collection}"), resp).await),
    }
}

/// Ours (mark first: the same config is not enough) with the wanted config.
fn check_found(cfg: &QdrantConfig, collection: &str, found: &Found) -> Result<(), StepError> {
    if !found.ours {
        return Err(foreign(
            &format!("qdrant collection {collection}"),
            NOT_MARKED,
        ));
    }
    check_config(cfg, collection, &found.vectors)
}

pub(super) fn check_config(
    cfg: &QdrantConfig,
    collection: &str,
    found: &(u64, String),
) -> Result<(), StepError> {
    if found.0 == cfg.vector_size && found.1 == cfg.distance {
        return Ok(());
    }
    Err(StepError::permanent(format!(
        "collection {collection} exists with size {} / {} (wanted {} / {})",
        found.0, found.1, cfg.vector_size, cfg.distance
    )))
}

#[async_trait]
impl Step for Qdrant {
    fn name(&self) -> &'static str {
        "qdrant"
    }

    async fn run(&self, ctx: &StepCtx) -> Result<Value, StepError> {
        if mode(ctx) == QdrantMode::Shared {
            return super::qdrant_shared::run(ctx).await;
        }
        let cfg = config(ctx)?;
        let collection = ctx.names.qdrant_collection();
        match existing(ctx, &collection).await? {
            Some(found) => check_found(cfg, &collection, &found)?,
            None => {
                let body = json!({
                    "vectors": { "size": cfg.vector_size, "distance": cfg.distance },
                    "metadata": { MARK_KEY: ctx.require_tenant_id()?.to_string() },
                });
                let resp = request(ctx, Method::PUT, &collection)?
                    .json(&body)
                    .traced_send()
                    .await?;
                match resp.status() {
                    s if s.is_success() => {}
                    // Created concurrently or by an interrupted attempt.
                    StatusCode::CONFLICT => {
                        let found = existing(ctx, &collection)
                            .await?
                            .ok_or_else(|| StepError::transient("collection vanished"))?;
                        check_found(cfg, &collection, &found)?;
                    }
                    _ => {
                        return Err(
                            unexpected(&format!("create collection {collection}"), resp).await
                        );
                    }
                }
            }
        }
        Ok(json!({
            "collection": collection,
            "vector_size": cfg.vector_size,
            "distance": cfg.distance,
            "resources": [{ "kind": "qdrant_collection", "name": collection }],
        }))
    }

    async fn compensate(&self, ctx: &StepCtx, _: Option<&Value>) -> Result<(), StepError> {
        if mode(ctx) == QdrantMode::Shared {
            return super::qdrant_shared::compensate(ctx).await;
        }
        let collection = ctx.names.qdrant_collection();
        match existing(ctx, &collection).await? {
            None => return Ok(()),
            Some(found) if !found.ours => {
                // Someone else's, even with the same config: untouched.
                left_alone(ctx, "qdrant_collection", &collection, NOT_MARKED);
                return Ok(());
            }
            Some(_) => {}
        }
        let resp = request(ctx, Method::DELETE, &collection)?
            .traced_send()
            .await?;
        // Deleting a missing collection answers 200 with `result: false`.
        if resp.status().is_success() || resp.status() == StatusCode::NOT_FOUND {
            return Ok(());
        }
        Err(unexpected(&format!("delete collection {collection}"), resp).await)
    }
}
