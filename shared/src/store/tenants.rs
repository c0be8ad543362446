//! Transitions of `tenants` and of what the master DB records about a
//! tenant's resources: `tenant_resources`, `tenant_connections` and the
//! `resource_claims` that cover a create whose mark comes later.

use super::status::{Service, TenantStatus};
use crate::model::{ResourceRef, Tenant};
use sqlx::PgExecutor;
use uuid::Uuid;

pub async fn tenant_by_name(ex: impl PgExecutor<'_>, name: &str) -> sqlx::Result<Option<Tenant>> {
    sqlx::query_as!(
        Tenant,
        r#"SELECT id, name, plan, realm_name, postgres_db, mongo_db, qdrant_collection, storage_path,
                  template_key, template_version,
                  status AS "status: TenantStatus", created_at, updated_at
           FROM tenants WHERE name = $1"#,
        name
    )
    .fetch_optional(ex)
    .await
}

pub async fn tenant_by_id(ex: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Option<Tenant>> {
    sqlx::query_as!(
        Tenant,
        r#"SELECT id, name, plan, realm_name, postgres_db, mongo_db, qdrant_collection, storage_path,
                  template_key, template_version,
                  status AS "status: TenantStatus", created_at, updated_at
           FROM tenants WHERE id = $1"#,
        id
    )
    .fetch_optional(ex)
    .await
}

/// The tenant's id and status, its row locked until the caller commits.
pub async fn lock_tenant(
    ex: impl PgExecutor<'_>,
    name: &str,
) -> sqlx::Result<Option<(Uuid, TenantStatus)>> {
    let row = sqlx::query!(
        r#"SELECT id, status AS "status: TenantStatus" FROM tenants WHERE name = $1 FOR UPDATE"#,
        name
    )
    .fetch_optional(ex)
    .await?;
    Ok(row.map(|r| (r.id, r.status)))
}

/// Writes the tenant row for a provisioning run, or takes over one that is
/// pending provisioning (a lead's), provisioning, suspended or deleted, and
/// links the run to it, in one statement. `None`, nothing written, when
/// the row is active or being deleted (the caller reports its status).
pub async fn register_tenant_for_run(
    ex: impl PgExecutor<'_>,
    name: &str,
    plan: Option<&str>,
    run_id: Uuid,
) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar!(
        r#"WITH t AS (
               INSERT INTO tenants (id, name, plan, status) VALUES ($1, $2, $3, 'provisioning')
               ON CONFLICT (name) DO UPDATE
                  SET status = 'provisioning', plan = COALESCE(EXCLUDED.plan, tenants.plan),
                      updated_at = now()
                  WHERE tenants.status IN ('pending_provision', 'provisioning', 'suspended', 'deleted')
               RETURNING id),
           linked AS (
               UPDATE workflow_runs r SET tenant_id = t.id, updated_at = now()
               FROM t WHERE r.id = $4)
           SELECT id AS "id!" FROM t"#,
        Uuid::now_v7(),
        name,
        plan,
        run_id
    )
    .fetch_optional(ex)
    .await
}

/// Seed 001's demo tenant, `active` with the names given; an existing row
/// of that name is kept as it is.
pub async fn seed_tenant(
    ex: impl PgExecutor<'_>,
    name: &str,
    names: &ResourceNames<'_>,
) -> sqlx::Result<Uuid> {
    sqlx::query_scalar!(
        "INSERT INTO tenants (id, name, realm_name, postgres_db, mongo_db, qdrant_collection, storage_path, status)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'active')
         ON CONFLICT (name) DO UPDATE SET updated_at = now() RETURNING id",
        Uuid::now_v7(),
        name,
        names.realm,
        names.postgres_db,
        names.mongo_db,
        names.qdrant_collection,
        names.storage_path
    )
    .fetch_one(ex)
    .await
}

/// Moves a tenant from one of `from` to `to`; the status it has now when
/// it moved, `None` when it was in none of `from`.
pub async fn move_tenant(
    ex: impl PgExecutor<'_>,
    id: Uuid,
    from: &[TenantStatus],
    to: TenantStatus,
) -> sqlx::Result<Option<TenantStatus>> {
    let from: Vec<String> = from.iter().map(|s| s.as_str().to_owned()).collect();
    sqlx::query_scalar!(
        r#"UPDATE tenants SET status = $2, updated_at = now()
           WHERE id = $1 AND status = ANY($3) RETURNING status AS "status: TenantStatus""#,
        id,
        to.as_str(),
        &from as &[String]
    )
    .fetch_optional(ex)
    .await
}

/// Moves a tenant by name (an undo of `register` knows only the name).
pub async fn move_tenant_named(
    ex: impl PgExecutor<'_>,
    name: &str,
    from: &[TenantStatus],
    to: TenantStatus,
) -> sqlx::Result<bool> {
    let from: Vec<String> = from.iter().map(|s| s.as_str().to_owned()).collect();
    let done = sqlx::query!(
        "UPDATE tenants SET status = $2, updated_at = now() WHERE name = $1 AND status = ANY($3)",
        name,
        to.as_str(),
        &from as &[String]
    )
    .execute(ex)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Sets a tenant's status whatever it was (a failed or cancelled
/// provisioning run suspends the tenant it registered).
pub async fn set_tenant_status(
    ex: impl PgExecutor<'_>,
    id: Uuid,
    status: TenantStatus,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE tenants SET status = $2, updated_at = now() WHERE id = $1",
        id,
        status.as_str()
    )
    .execute(ex)
    .await
    .map(drop)
}

/// The names of the tenant's resources, on its row.
pub struct ResourceNames<'a> {
    pub realm: Option<&'a str>,
    pub postgres_db: Option<&'a str>,
    pub mongo_db: Option<&'a str>,
    pub qdrant_collection: Option<&'a str>,
    pub storage_path: Option<&'a str>,
    /// The template key and version the tenant database was cloned from.
    pub template_key: Option<&'a str>,
    pub template_version: Option<&'a str>,
}

pub async fn set_resource_names(
    ex: impl PgExecutor<'_>,
    id: Uuid,
    names: &ResourceNames<'_>,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE tenants SET realm_name = $2, postgres_db = $3, mongo_db = $4, qdrant_collection = $5,
            storage_path = $6, template_key = $7, template_version = $8, updated_at = now()
         WHERE id = $1",
        id,
        names.realm,
        names.postgres_db,
        names.mongo_db,
        names.qdrant_collection,
        names.storage_path,
        names.template_key,
        names.template_version
    )
    .execute(ex)
    .await
    .map(drop)
}

/// A row of `tenant_connections`: where the application reaches a service
/// (no secret, only where the secret is kept).
pub struct Connection<'a> {
    pub service: Service,
    pub db_name: &'a str,
    pub host: Option<String>,
    pub port: Option<i32>,
    pub username: Option<&'a str>,
    pub secret_ref: Option<&'a str>,
    /// What a client needs besides host, port and database: the schema and
    /// `search_path` of a pooled Postgres tenant.
    pub options: Option<serde_json::Value>,
}

pub async fn upsert_connection(
    ex: impl PgExecutor<'_>,
    tenant_id: Uuid,
    c: &Connection<'_>,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO tenant_connections (id, tenant_id, service, db_name, host, port, username, secret_ref, options)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (tenant_id, service) DO UPDATE SET db_name = $4, host = $5, port = $6,
            username = $7, secret_ref = $8, options = $9, updated_at = now()",
        Uuid::now_v7(),
        tenant_id,
        c.service.as_str(),
        c.db_name,
        c.host,
        c.port,
        c.username,
        c.secret_ref,
        c.options
    )
    .execute(ex)
    .await
    .map(drop)
}

pub async fn delete_connections(ex: impl PgExecutor<'_>, tenant_id: Uuid) -> sqlx::Result<()> {
    sqlx::query!(
        "DELETE FROM tenant_connections WHERE tenant_id = $1",
        tenant_id
    )
    .execute(ex)
    .await
    .map(drop)
}

/// Resources named in a checkpoint's `"resources"` array.
pub fn resources_in(output: &serde_json::Value) -> Vec<ResourceRef> {
    output
        .get("resources")
        .and_then(|r| serde_json::from_value(r.clone()).ok())
        .unwrap_or_default()
}

pub async fn mark_resources_deleted(
    ex: impl PgExecutor<'_>,
    tenant_id: Uuid,
    step: &str,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE tenant_resources SET deleted_at = now()
         WHERE tenant_id = $1 AND step = $2 AND deleted_at IS NULL",
        tenant_id,
        step
    )
    .execute(ex)
    .await
    .map(drop)
}

/// (step, kind) of every resource the tenant still holds.
pub async fn live_resources(
    ex: impl PgExecutor<'_>,
    tenant_id: Uuid,
) -> sqlx::Result<Vec<(String, String)>> {
    let rows = sqlx::query!(
        "SELECT DISTINCT step, kind FROM tenant_resources WHERE tenant_id = $1 AND deleted_at IS NULL",
        tenant_id
    )
    .fetch_all(ex)
    .await?;
    Ok(rows.into_iter().map(|r| (r.step, r.kind)).collect())
}

/// (kind, name) of what the tenant still holds from one step.
pub async fn live_resources_of_step(
    ex: impl PgExecutor<'_>,
    tenant_id: Uuid,
    step: &str,
) -> sqlx::Result<Vec<(String, String)>> {
    let rows = sqlx::query!(
        "SELECT kind, name FROM tenant_resources
         WHERE tenant_id = $1 AND step = $2 AND deleted_at IS NULL ORDER BY kind, name",
        tenant_id,
        step
    )
    .fetch_all(ex)
    .await?;
    Ok(rows.into_iter().map(|r| (r.kind, r.name)).collect())
}

/// Claims a resource the deployment's tenants share (a shared bucket)
/// before its create: the first claim stands, whichever tenant's run made
/// it, and every tenant may then adopt an interrupted create.
pub async fn claim_shared_resource(
    ex: impl PgExecutor<'_>,
    kind: &str,
    name: &str,
    tenant_id: Uuid,
    run_id: Uuid,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO resource_claims (kind, name, tenant_id, run_id) VALUES ($1, $2, $3, $4)
         ON CONFLICT (kind, name) DO NOTHING",
        kind,
        name,
        tenant_id,
        run_id
    )
    .execute(ex)
    .await
    .map(drop)
}

/// Whether anyone claimed `kind`/`name`.
pub async fn is_claimed_by_any(
    ex: impl PgExecutor<'_>,
    kind: &str,
    name: &str,
) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM resource_claims WHERE kind = $1 AND name = $2) AS "claimed!""#,
        kind,
        name
    )
    .fetch_one(ex)
    .await
}

/// Claims `kind`/`name` for the tenant before a create; a claim of the
/// same tenant is renewed. False when another tenant holds it.
pub async fn claim_resource(
    ex: impl PgExecutor<'_>,
    kind: &str,
    name: &str,
    tenant_id: Uuid,
    run_id: Uuid,
) -> sqlx::Result<bool> {
    let claimed = sqlx::query_scalar!(
        "INSERT INTO resource_claims (kind, name, tenant_id, run_id) VALUES ($1, $2, $3, $4)
         ON CONFLICT (kind, name) DO UPDATE SET run_id = EXCLUDED.run_id, claimed_at = now()
            WHERE resource_claims.tenant_id = EXCLUDED.tenant_id
         RETURNING tenant_id",
        kind,
        name,
        tenant_id,
        run_id
    )
    .fetch_optional(ex)
    .await?;
    Ok(claimed.is_some())
}

pub async fn is_claimed(
    ex: impl PgExecutor<'_>,
    kind: &str,
    name: &str,
    tenant_id: Uuid,
) -> sqlx::Result<bool> {
    let found = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM resource_claims
                          WHERE kind = $1 AND name = $2 AND tenant_id = $3) AS "found!""#,
        kind,
        name,
        tenant_id
    )
    .fetch_one(ex)
    .await?;
    Ok(found)
}

pub async fn release_claim(
    ex: impl PgExecutor<'_>,
    kind: &str,
    name: &str,
    tenant_id: Uuid,
) -> sqlx::Result<()> {
    sqlx::query!(
        "DELETE FROM resource_claims WHERE kind = $1 AND name = $2 AND tenant_id = $3",
        kind,
        name,
        tenant_id
    )
    .execute(ex)
    .await
    .map(drop)
}
