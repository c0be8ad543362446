//! `landlord seed`: seed 001's demo tenant and its connection rows, from
//! the `SEED_*` variables (read once, here).

use landlord_shared::store::{self, Service};
use landlord_shared::tenant::TenantKey;
use sqlx::PgPool;

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
            Service::Postgres,
            var("SEED_POSTGRES_HOST", "localhost"),
            port("SEED_POSTGRES_PORT", "5432")?,
            Some(var("SEED_POSTGRES_USER", "freeflow")),
            db_name.clone(),
        ),
        (
            Service::Mongodb,
            var("SEED_MONGO_HOST", "localhost"),
            port("SEED_MONGO_PORT", "27017")?,
            None,
            db_name.clone(),
        ),
        (
            Service::Qdrant,
            var("SEED_QDRANT_HOST", "localhost"),
            port("SEED_QDRANT_PORT", "6333")?,
            None,
            format!("freeflow_{key}_vectors"),
        ),
    ];
    let mut tx = pool.begin().await?;
    let names = store::ResourceNames {
        realm: Some(&format!("freeflow-{key}")),
        postgres_db: Some(&db_name),
        mongo_db: Some(&db_name),
        qdrant_collection: Some(&format!("freeflow_{key}_vectors")),
        storage_path: None,
        template_key: None,
        template_version: None,
    };
    let id = store::seed_tenant(&mut *tx, key.as_str(), &names).await?;
    for (service, host, port, user, db) in &connections {
        let row = store::Connection {
            service: *service,
            db_name: db,
            host: Some(host.clone()),
            port: Some(*port),
            username: user.as_deref(),
            secret_ref: None,
            options: None,
        };
        store::upsert_connection(&mut *tx, id, &row).await?;
    }
    tx.commit().await?;
    println!("seeded tenant '{key}' ({id}) with 3 connections");
    Ok(())
}
