//! Master-database migrations: ours, then apalis' own (schema `apalis`).

use sqlx::PgPool;

pub static MASTER: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/master");

pub async fn migrate_master(pool: &PgPool) -> anyhow::Result<()> {
    MASTER.run(pool).await?;
    apalis_postgres::PostgresStorage::setup(pool).await?;
    Ok(())
}

/// True when every master migration this binary knows is applied.
pub async fn master_is_current(pool: &PgPool) -> sqlx::Result<bool> {
    let applied: Vec<i64> =
        sqlx::query_scalar!("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(pool)
            .await?;
    Ok(MASTER.iter().all(|m| applied.contains(&m.version)))
}
