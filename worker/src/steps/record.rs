//! Record step: `tenant_connections` (no secrets, only `secret_ref`) and the
//! resource names on the tenant row. Resources themselves are recorded by
//! the engine with each step's checkpoint, so a failed run still lists them.

use crate::step::{Step, StepCtx, StepError};
use async_trait::async_trait;
use serde_json::{Value, json};
use uuid::Uuid;

pub struct Record;

fn text<'a>(v: Option<&'a Value>, field: &str) -> Option<&'a str> {
    v?.get(field)?.as_str()
}

#[async_trait]
impl Step for Record {
    fn name(&self) -> &'static str {
        "record"
    }

    async fn run(&self, ctx: &StepCtx) -> Result<Value, StepError> {
        let tenant_id = ctx.require_tenant_id()?;
        let pg = ctx.output_of("postgres");
        let storage = ctx.output_of("storage");
        let mut tx = ctx.deps.master.begin().await?;
        let mut services = Vec::new();
        if let Some(pg) = pg {
            let port = pg.get("port").and_then(Value::as_i64).map(|p| p as i32);
            sqlx::query(
                "INSERT INTO tenant_connections (id, tenant_id, service, db_name, host, port, username, secret_ref)
                 VALUES ($1, $2, 'postgres', $3, $4, $5, $6, $7)
                 ON CONFLICT (tenant_id, service) DO UPDATE SET db_name = $3, host = $4, port = $5,
                    username = $6, secret_ref = $7, updated_at = now()",
            )
            .bind(Uuid::now_v7())
            .bind(tenant_id)
            .bind(text(Some(pg), "database"))
            .bind(text(Some(pg), "host"))
            .bind(port)
            .bind(text(Some(pg), "role"))
            .bind(text(Some(pg), "secret_ref"))
            .execute(&mut *tx)
            .await?;
            services.push("postgres");
        }
        sqlx::query(
            "UPDATE tenants SET postgres_db = $2, storage_path = $3, updated_at = now() WHERE id = $1",
        )
        .bind(tenant_id)
        .bind(text(pg, "database"))
        .bind(text(storage, "path"))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(json!({ "connections": services }))
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
