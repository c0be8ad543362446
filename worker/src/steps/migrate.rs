//! Migrate step: brings the clone to the current tenant schema (catch-up
//! when the template is older) and grants the tenant role its tables. In
//! schema mode it runs the same migrations inside the tenant's schema of
//! the pool (their history table lives there too), and seed 002's tables
//! and indexes are created for that tenant only.

use super::postgres::{database_options, exec_ddl, mode, single_connection, template_of};
use crate::step::{Step, StepCtx, StepError};
use async_trait::async_trait;
use landlord_shared::catalogue::PostgresMode;
use landlord_shared::tenant::PgIdent;
use serde_json::{Value, json};
use sqlx::PgPool;
use sqlx::postgres::PgConnectOptions;

/// Where the tenant's tables live: the connection options and the schema.
pub(super) fn target(ctx: &StepCtx) -> Result<(PgConnectOptions, PgIdent), StepError> {
    Ok(match mode(ctx) {
        PostgresMode::Database => (
            database_options(ctx, &ctx.names.postgres_db())?,
            PgIdent::public(),
        ),
        PostgresMode::Schema => {
            let schema = ctx.names.postgres_schema();
            let opts = database_options(ctx, &ctx.names.postgres_pool())?
                .options([("search_path", schema.as_str())]);
            (opts, schema)
        }
    })
}

pub struct Migrate;

/// Versions applied so far; none in a schema the migrations never ran in.
async fn applied(pool: &PgPool) -> Result<Vec<i64>, StepError> {
    let tracked =
        sqlx::query_scalar!(r#"SELECT to_regclass('_sqlx_migrations') IS NOT NULL AS "tracked!""#)
            .fetch_one(pool)
            .await?;
    if !tracked {
        return Ok(Vec::new());
    }
    Ok(
        sqlx::query_scalar!("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
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
        let role = ctx.names.postgres_role();
        let (opts, schema) = target(ctx)?;
        let pool = single_connection(opts).await?;
        let result = async {
            let before = applied(&pool).await?;
            template_of(ctx)?
                .migrator
                .run(&pool)
                .await
                .map_err(|e| StepError::permanent(format!("tenant migration failed: {e}")))?;
            let after = applied(&pool).await?;
            let mut conn = pool.acquire().await?;
            for grant in [
                format!(
                    "GRANT USAGE, CREATE ON SCHEMA {} TO {}",
                    schema.quoted(),
                    role.quoted()
                ),
                format!(
                    "GRANT ALL ON ALL TABLES IN SCHEMA {} TO {}",
                    schema.quoted(),
                    role.quoted()
                ),
                format!(
                    "GRANT ALL ON ALL SEQUENCES IN SCHEMA {} TO {}",
                    schema.quoted(),
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

    /// The tables live and die with the database or the schema (the
    /// postgres step's undo).
    async fn compensate(&self, _: &StepCtx, _: Option<&Value>) -> Result<(), StepError> {
        Ok(())
    }
}
