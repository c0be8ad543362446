//! The template registry (`tenant_templates`, seed 003).

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgExecutor;

/// A template database that was built and checked.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct TemplateRow {
    pub key: String,
    pub version: String,
    pub database: String,
    pub migrations: Vec<i64>,
    pub built_at: DateTime<Utc>,
    /// Tenants cloned from it.
    pub tenants: i64,
}

/// Records a template once it is built and checked; building the same key
/// and version again (its database was lost) refreshes the row.
pub async fn record_template(
    ex: impl PgExecutor<'_>,
    key: &str,
    version: &str,
    database: &str,
    migrations: &[i64],
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO tenant_templates (key, version, database, migrations) VALUES ($1, $2, $3, $4)
         ON CONFLICT (key, version) DO UPDATE SET database = $3, migrations = $4, built_at = now()",
        key,
        version,
        database,
        migrations
    )
    .execute(ex)
    .await
    .map(drop)
}

/// Whether this key and version were built and checked into `database`.
pub async fn template_recorded(
    ex: impl PgExecutor<'_>,
    key: &str,
    version: &str,
    database: &str,
) -> sqlx::Result<bool> {
    let found = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM tenant_templates WHERE key = $1 AND version = $2 AND database = $3) AS "found!""#,
        key,
        version,
        database
    )
    .fetch_one(ex)
    .await?;
    Ok(found)
}

/// Every recorded template, newest first per key, with its tenant count.
pub async fn templates(ex: impl PgExecutor<'_>) -> sqlx::Result<Vec<TemplateRow>> {
    sqlx::query_as!(
        TemplateRow,
        r#"SELECT t.key, t.version, t.database, t.migrations, t.built_at,
                  (SELECT count(*) FROM tenants n
                   WHERE n.template_key = t.key AND n.template_version = t.version) AS "tenants!"
           FROM tenant_templates t ORDER BY t.key, t.built_at DESC"#
    )
    .fetch_all(ex)
    .await
}
