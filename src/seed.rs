//! `landlord seed`: seed 001's demo tenant and its connection rows, from
//! the `SEED_*` variables (read once, here).

use landlord_shared::tenant::TenantKey;
use sqlx::PgPool;
use uuid::Uuid;

fn var(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

fn port(name: &str, default: &str) -> anyhow::Result<i32> {
    var(name, default)
        .parse()
        .map_err(|_| anyhow::anyhow!("{name} must be a port number"))
}

pub async fn seed(pool: &PgPool) -> anyhow::Result<()> {
    let key = TenantKey::parse(&var("SEED_TENANT_NAME", "demo"))
        .map_err(|e| anyhow::anyhow!("SEED_TENANT_NAME: {e}"))?;
    let db_name = format!("freeflow_{key}");
    let connections = [
        (
            "postgres",
            var("SEED_POSTGRES_HOST", "localhost"),
            port("SEED_POSTGRES_PORT", "5432")?,
            Some(var("SEED_POSTGRES_USER", "freeflow")),
            db_name.clone(),
        ),
        (
            "mongodb",
            var("SEED_MONGO_HOST", "localhost"),
            port("SEED_MONGO_PORT", "27017")?,
            None,
            db_name.clone(),
        ),
        (
            "qdrant",
            var("SEED_QDRANT_HOST", "localhost"),
            port("SEED_QDRANT_PORT", "6333")?,
            None,
            format!("freeflow_{key}_vectors"),
        ),
    ];
    let mut tx = pool.begin().await?;
    let id: Uuid = sqlx::query_scalar(
        "INSERT INTO tenants (id, name, realm_name, postgres_db, mongo_db, qdrant_collection, status)
         VALUES ($1, $2, $3, $4, $4, $5, 'active')
         ON CONFLICT (name) DO UPDATE SET updated_at = now() RETURNING id",
    )
    .bind(Uuid::now_v7())
    .bind(key.as_str())
    .bind(format!("freeflow-{key}"))
    .bind(&db_name)
    .bind(format!("freeflow_{key}_vectors"))
    .fetch_one(&mut *tx)
    .await?;
    for (service, host, port, user, db) in connections {
        sqlx::query(
            "INSERT INTO tenant_connections (id, tenant_id, service, db_name, host, port, username)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (tenant_id, service) DO UPDATE
                SET db_name = $4, host = $5, port = $6, username = $7, updated_at = now()",
        )
        .bind(Uuid::now_v7())
        .bind(id)
        .bind(service)
        .bind(db)
        .bind(host)
        .bind(port)
        .bind(user)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    println!("seeded tenant '{key}' ({id}) with 3 connections");
    Ok(())
}
