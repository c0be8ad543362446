//! Record step: `tenant_connections` for postgres, mongodb and qdrant (no
//! secrets, only `secret_ref`) and the resource names on the tenant row.
//! Resources themselves are recorded by the engine with each step's
//! checkpoint, so a failed run still lists them.

use crate::step::{Step, StepCtx, StepError};
use async_trait::async_trait;
use serde_json::{Value, json};
use sqlx::PgConnection;
use uuid::Uuid;

pub struct Record;

fn text<'a>(v: Option<&'a Value>, field: &str) -> Option<&'a str> {
    v?.get(field)?.as_str()
}

struct Connection<'a> {
    service: &'static str,
    db_name: &'a str,
    host: Option<String>,
    port: Option<i32>,
    username: Option<&'a str>,
    secret_ref: Option<&'a str>,
}

async fn upsert(tx: &mut PgConnection, tenant_id: Uuid, c: &Connection<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO tenant_connections (id, tenant_id, service, db_name, host, port, username, secret_ref)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (tenant_id, service) DO UPDATE SET db_name = $4, host = $5, port = $6,
            username = $7, secret_ref = $8, updated_at = now()",
    )
    .bind(Uuid::now_v7())
    .bind(tenant_id)
    .bind(c.service)
    .bind(c.db_name)
    .bind(&c.host)
    .bind(c.port)
    .bind(c.username)
    .bind(c.secret_ref)
    .execute(tx)
    .await
    .map(drop)
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
                service: "postgres",
                db_name: db,
                host: text(pg, "host").map(str::to_owned),
                port: pg
                    .and_then(|p| p["port"].as_i64())
                    .and_then(|p| i32::try_from(p).ok()),
                username: text(pg, "role"),
                secret_ref: text(pg, "secret_ref"),
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
                service: "mongodb",
                db_name: db,
                host,
                port,
                username: text(mongo, "username"),
                secret_ref: text(mongo, "secret_ref"),
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
                service: "qdrant",
                db_name: collection,
                host,
                port,
                username: None,
                secret_ref: None,
            });
        }
        let mut tx = ctx.deps.master.begin().await?;
        for c in &connections {
            upsert(&mut tx, tenant_id, c).await?;
        }
        sqlx::query(
            "UPDATE tenants SET realm_name = $2, postgres_db = $3, mongo_db = $4, qdrant_collection = $5,
                storage_path = $6, updated_at = now() WHERE id = $1",
        )
        .bind(tenant_id)
        .bind(text(identity, "realm"))
        .bind(text(pg, "database"))
        .bind(text(mongo, "database"))
        .bind(text(qdrant, "collection"))
        .bind(text(storage, "path").or(text(storage, "bucket")))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(json!({ "connections": connections.iter().map(|c| c.service).collect::<Vec<_>>() }))
    }

    async fn compensate(&self, ctx: &StepCtx, _: Option<&Value>) -> Result<(), StepError> {
        if let Some(id) = ctx.tenant_id {
            sqlx::query("DELETE FROM tenant_connections WHERE tenant_id = $1")
                .bind(id)
                .execute(&ctx.deps.master)
                .await?;
        }
        Ok(())
    }
}
