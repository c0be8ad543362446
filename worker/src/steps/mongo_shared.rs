//! Mongo in `shared` mode: tenants by the thousand share one database,
//! `{prefix}_shared`, and each document carries its tenant's id in
//! `tenant_id` — the pattern MongoDB recommends for many small tenants
//! (a database per tenant costs files per collection and index; FerretDB
//! makes each collection a Postgres table, so thousands of tenant databases
//! are tens of thousands of tables).
//!
//! The database is created on first use by inserting its marker document
//! `_landlord {_id: "owner", shared: <prefix>}`; one of that name without it
//! is someone else's and refused. There is no per-tenant user: MongoDB has
//! no row-level access control, so isolation is the application's filter
//! on `tenant_id` (`tenant_connections` gives it). Undo and deprovisioning
//! delete the tenant's documents, by that filter, from every collection of
//! the database, and nothing else.

use super::claim::{foreign, left_alone};
use super::mongo::{client, is_duplicate_key, marker_of, mongo_error, mongo_span};
use crate::step::{StepCtx, StepError};
use mongodb::bson::{Document, doc};
use serde_json::{Value, json};
use std::future::IntoFuture;
use tracing::Instrument;

const MARKER: &str = "_landlord";
const MARKER_ID: &str = "owner";
pub const TENANT_FIELD: &str = "tenant_id";
const NOT_MARKED: &str = "no marker document for this deployment";

fn database(ctx: &StepCtx) -> String {
    format!("{}_shared", ctx.deps.cfg.name_prefix.as_str())
}

/// `None` when the database does not exist; whether it is our shared one.
async fn is_ours(ctx: &StepCtx, db: &mongodb::Database) -> Result<Option<bool>, StepError> {
    let prefix = ctx.deps.cfg.name_prefix.as_str();
    Ok(marker_of(db).await?.map(|marker| {
        marker
            .as_ref()
            .and_then(|m| m.get_str("shared").ok())
            .is_some_and(|p| p == prefix)
    }))
}

async fn ensure_database(ctx: &StepCtx, db: &mongodb::Database) -> Result<(), StepError> {
    let refuse = || foreign(&format!("mongo database {}", db.name()), NOT_MARKED);
    match is_ours(ctx, db).await? {
        Some(true) => return Ok(()),
        Some(false) => return Err(refuse()),
        None => {}
    }
    let inserted = db
        .collection::<Document>(MARKER)
        .insert_one(doc! { "_id": MARKER_ID, "shared": ctx.deps.cfg.name_prefix.as_str() })
        .into_future()
        .instrument(mongo_span("insert"))
        .await;
    match inserted {
        Ok(_) => Ok(()),
        // Another tenant's first run made it at the same moment.
        Err(e) if is_duplicate_key(&e) => match is_ours(ctx, db).await? {
            Some(true) => Ok(()),
            _ => Err(refuse()),
        },
        Err(e) => Err(mongo_error(e)),
    }
}

pub(super) async fn run(ctx: &StepCtx) -> Result<Value, StepError> {
    let name = database(ctx);
    let db = client(ctx)?.database(&name);
    ensure_database(ctx, &db).await?;
    let tenant_id = ctx.require_tenant_id()?.to_string();
    Ok(json!({
        "mode": "shared",
        "database": name,
        "tenant_field": TENANT_FIELD,
        "tenant_value": tenant_id,
        "filter": { TENANT_FIELD: tenant_id },
        "resources": [{ "kind": "mongo_documents", "name": format!("{name}/{TENANT_FIELD}={tenant_id}") }],
    }))
}

/// Deletes the tenant's documents from every collection of our shared
/// database.
pub(super) async fn compensate(ctx: &StepCtx) -> Result<(), StepError> {
    let name = database(ctx);
    let db = client(ctx)?.database(&name);
    match is_ours(ctx, &db).await? {
        None => return Ok(()),
        Some(false) => {
            left_alone(ctx, "mongo_database", &name, NOT_MARKED);
            return Ok(());
        }
        Some(true) => {}
    }
    let tenant_id = ctx.require_tenant_id()?.to_string();
    let collections = db
        .list_collection_names()
        .into_future()
        .instrument(mongo_span("listCollections"))
        .await
        .map_err(mongo_error)?;
    for c in collections.iter().filter(|c| *c != MARKER) {
        db.collection::<Document>(c)
            .delete_many(doc! { TENANT_FIELD: &tenant_id })
            .into_future()
            .instrument(mongo_span("delete"))
            .await
            .map_err(mongo_error)?;
    }
    Ok(())
}
