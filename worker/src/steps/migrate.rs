//! Migrate step: brings the clone to the current tenant schema (catch-up
//! when the template is older) and grants the tenant role its tables.

use super::postgres::{TENANT_MIGRATIONS, database_options, exec_ddl, single_connection};
use crate::step::{Step, StepCtx, StepError};
use async_trait::async_trait;
use serde_json::{Value, json};
use sqlx::PgPool;

pub struct Migrate;

async fn applied(pool: &PgPool) -> Result<Vec<i64>, StepError> {
    Ok(
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(pool)
            .await?,
    )
}

#[async_trait]
impl Step for Migrate {
    fn name(&self) -> &'static str {
        "migrate"
    }

    async fn run(&self, ctx: &StepCtx) -> Result<Value, StepError> {
        let db = ctx.names.postgres_db();
        let role = ctx.names.postgres_role();
        let pool = single_connection(database_options(ctx, &db)?).await?;
        let result = async {
            let before = applied(&pool).await?;
            TENANT_MIGRATIONS
                .run(&pool)
                .await
                .map_err(|e| StepError::permanent(format!("tenant migration failed: {e}")))?;
            let after = applied(&pool).await?;
            let mut conn = pool.acquire().await?;
            for grant in [
                format!("GRANT USAGE, CREATE ON SCHEMA public TO {}", role.quoted()),
                format!(
                    "GRANT ALL ON ALL TABLES IN SCHEMA public TO {}",
                    role.quoted()
                ),
                format!(
                    "GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {}",
                    role.quoted()
                ),
            ] {
                exec_ddl(&mut conn, grant).await?;
            }
            Ok::<_, StepError>((before, after))
        }
        .await;
        pool.close().await;
        let (before, after) = result?;
        let caught_up: Vec<i64> = after
            .iter()
            .filter(|v| !before.contains(v))
            .copied()
            .collect();
        Ok(json!({ "version": after.last(), "caught_up": caught_up }))
    }

    /// The schema lives and dies with the database (postgres step's undo).
    async fn compensate(&self, _: &StepCtx, _: Option<&Value>) -> Result<(), StepError> {
        Ok(())
    }
}
