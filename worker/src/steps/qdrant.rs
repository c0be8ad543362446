//! Qdrant step: collection `{prefix}_{tenant}_vectors` with the configured
//! vector size and distance. An existing collection with the same config is
//! success; a different config is a permanent error. Undo deletes it.

use crate::clients::http::TracedSend;
use crate::clients::http::unexpected;
use crate::step::{Step, StepCtx, StepError};
use async_trait::async_trait;
use landlord_shared::config::QdrantConfig;
use reqwest::{Method, RequestBuilder, StatusCode};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

pub struct Qdrant;

fn config(ctx: &StepCtx) -> Result<&QdrantConfig, StepError> {
    ctx.deps
        .cfg
        .qdrant
        .as_ref()
        .ok_or_else(|| StepError::permanent("QDRANT_URL is not configured"))
}

fn request(ctx: &StepCtx, method: Method, collection: &str) -> Result<RequestBuilder, StepError> {
    let cfg = config(ctx)?;
    let req = ctx
        .deps
        .http
        .request(method, format!("{}/collections/{collection}", cfg.url));
    Ok(match &cfg.api_key {
        Some(key) => req.header("api-key", key.expose_secret()),
        None => req,
    })
}

/// The collection's (size, distance), or `None` when it does not exist.
async fn existing(ctx: &StepCtx, collection: &str) -> Result<Option<(u64, String)>, StepError> {
    let resp = request(ctx, Method::GET, collection)?.traced_send().await?;
    match resp.status() {
        StatusCode::NOT_FOUND => Ok(None),
        s if s.is_success() => {
            let body: Value = resp.json().await?;
            let vectors = &body["result"]["config"]["params"]["vectors"];
            Ok(Some((
                vectors["size"].as_u64().unwrap_or_default(),
                vectors["distance"].as_str().unwrap_or_default().to_owned(),
            )))
        }
        _ => Err(unexpected(&format!("GET collection {collection}"), resp).await),
    }
}

fn check_config(
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
        let cfg = config(ctx)?;
        let collection = ctx.names.qdrant_collection();
        match existing(ctx, &collection).await? {
            Some(found) => check_config(cfg, &collection, &found)?,
            None => {
                let body =
                    json!({ "vectors": { "size": cfg.vector_size, "distance": cfg.distance } });
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
                        check_config(cfg, &collection, &found)?;
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
        let collection = ctx.names.qdrant_collection();
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
