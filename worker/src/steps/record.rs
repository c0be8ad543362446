//! Record step: `tenant_connections` for postgres, mongodb and qdrant (no
//! secrets, only `secret_ref`) and the resource names on the tenant row.
//! Resources themselves are recorded by the engine with each step's
//! checkpoint, so a failed run still lists them.

use crate::step::{Step, StepCtx, StepError};
use async_trait::async_trait;
use landlord_shared::store::{self, Connection, Service};
use serde_json::{Value, json};

pub struct Record;

/// In a shared mode the application must write the tenant's records with
/// this field and value, and read them through this filter.
fn shared_options(out: Option<&Value>) -> Option<Value> {
    out.filter(|o| o["mode"] == "shared").map(|o| {
        json!({
            "tenant_field": o["tenant_field"],
            "tenant_value": o["tenant_value"],
            "filter": o["filter"],
        })
    })
}

fn text<'a>(v: Option<&'a Value>, field: &str) -> Option<&'a str> {
    v?.get(field)?.as_str()
}

/// Host and port of a URL-shaped address, for the connection row.
fn host_port(url: &str) -> (Option<String>, Option<i32>) {
    match url::Url::parse(url) {
        Ok(u) => (
            u.host_str().map(str::to_owned),
            u.port_or_known_default().map(i32::from),
        ),
        Err(_) => (None, None),
    }
}

#[async_trait]
impl Step for Record {
    fn name(&self) -> &'static str {
        "record"
    }

    async fn run(&self, ctx: &StepCtx) -> Result<Value, StepError> {
        let tenant_id = ctx.require_tenant_id()?;
        let (pg, mongo, qdrant) = (
            ctx.output_of("postgres"),
            ctx.output_of("mongo"),
            ctx.output_of("qdrant"),
        );
        let (identity, storage) = (ctx.output_of("identity"), ctx.output_of("storage"));
        let mut connections = Vec::new();
        if let Some(db) = text(pg, "database") {
            connections.push(Connection {
                service: Service::Postgres,
                db_name: db,
                host: text(pg, "host").map(str::to_owned),
                port: pg
                    .and_then(|p| p["port"].as_i64())
                    .and_then(|p| i32::try_from(p).ok()),
                username: text(pg, "role"),
                secret_ref: text(pg, "secret_ref"),
                options: text(pg, "schema")
                    .map(|schema| json!({ "schema": schema, "search_path": schema })),
            });
        }
        if let Some(db) = text(mongo, "database") {
            let (host, port) = ctx
                .deps
                .cfg
                .mongodb_admin_uri
                .as_deref()
                .map(host_port)
                .unwrap_or_default();
            connections.push(Connection {
                service: Service::Mongodb,
                db_name: db,
                host,
                port,
                username: text(mongo, "username"),
                secret_ref: text(mongo, "secret_ref"),
                options: shared_options(mongo),
            });
        }
        if let Some(collection) = text(qdrant, "collection") {
            let (host, port) = ctx
                .deps
                .cfg
                .qdrant
                .as_ref()
                .map(|q| host_port(&q.url))
                .unwrap_or_default();
            connections.push(Connection {
                service: Service::Qdrant,
                db_name: collection,
                host,
                port,
                username: None,
                secret_ref: None,
                options: shared_options(qdrant),
            });
        }
        let mut tx = ctx.deps.master.begin().await?;
        for c in &connections {
            store::upsert_connection(&mut *tx, tenant_id, c).await?;
        }
        let names = store::ResourceNames {
            realm: text(identity, "realm"),
            postgres_db: text(pg, "database"),
            mongo_db: text(mongo, "database"),
            qdrant_collection: text(qdrant, "collection"),
            storage_path: text(storage, "path").or(text(storage, "bucket")),
            template_key: text(pg, "template_key"),
            template_version: text(pg, "template_version"),
        };
        store::set_resource_names(&mut *tx, tenant_id, &names).await?;
        tx.commit().await?;
        Ok(
            json!({ "connections": connections.iter().map(|c| c.service.as_str()).collect::<Vec<_>>() }),
        )
    }

    async fn compensate(&self, ctx: &StepCtx, _: Option<&Value>) -> Result<(), StepError> {
        if let Some(id) = ctx.tenant_id {
            store::delete_connections(&ctx.deps.master, id).await?;
        }
        Ok(())
    }
}
