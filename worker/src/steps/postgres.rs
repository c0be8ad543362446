//! Postgres step: a login role with a generated password and a database
//! cloned from the template (seed 003), CONNECT revoked from PUBLIC.
//!
//! Everything runs under one advisory lock per template: Postgres refuses to
//! clone a template that another session is using (SQLSTATE 55006), so
//! clones of one template are serialized, and the lock also makes the
//! check-then-create of role and database race-free.

use crate::step::{Step, StepCtx, StepError};
use async_trait::async_trait;
use landlord_shared::secrets::{SecretStore, generate_password};
use landlord_shared::tenant::{PgIdent, quote_literal, template_db};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};

pub struct Postgres;

pub static TENANT_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/tenant");

/// Runs DDL, which cannot take bind parameters. Callers build it only from
/// `PgIdent`s (charset-checked, then quoted) and `quote_literal`ed values.
#[tracing::instrument(name = "postgres", skip_all, fields(otel.kind = "client", db.system = "postgresql", db.operation = "ddl"))]
pub(super) async fn exec_ddl(conn: &mut PgConnection, sql: String) -> Result<(), StepError> {
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(conn)
        .await?;
    Ok(())
}

/// A pool of one connection: sqlx's migrator wants an `Acquire` that is
/// general over lifetimes, which `&mut PgConnection` is not inside a `Send`
/// async trait method.
pub(super) async fn single_connection(opts: PgConnectOptions) -> Result<sqlx::PgPool, StepError> {
    Ok(sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect_with(opts)
        .await?)
}

/// Comment put on roles we create, so we never adopt or drop someone else's.
pub(super) fn ownership_comment(ctx: &StepCtx) -> String {
    format!("landlord tenant {}", ctx.key)
}

/// Options for a maintenance connection to database `db` on the tenant
/// server (template or tenant database).
pub(super) fn database_options(ctx: &StepCtx, db: &PgIdent) -> Result<PgConnectOptions, StepError> {
    Ok(admin_options(ctx)?.database(db.as_str()))
}

/// Maintenance connection options. Statement logging is off: `CREATE ROLE
/// … PASSWORD` carries a password, and sqlx logs statement text at debug.
pub(super) fn admin_options(ctx: &StepCtx) -> Result<PgConnectOptions, StepError> {
    let opts = ctx
        .deps
        .admin_options
        .as_ref()
        .ok_or_else(|| StepError::permanent("POSTGRES_ADMIN_URL is not configured"))?;
    Ok(opts.clone().log_statements(log::LevelFilter::Off))
}

fn secret_ref(db: &PgIdent) -> String {
    format!("postgres/{db}")
}

/// A maintenance connection holding the template lock until it is closed;
/// a crashed worker's lock goes away with its connection.
async fn locked_connection(ctx: &StepCtx) -> Result<PgConnection, StepError> {
    let mut conn = PgConnection::connect_with(&admin_options(ctx)?).await?;
    let template = template_db(&ctx.deps.cfg.name_prefix);
    sqlx::query("SELECT pg_advisory_lock(hashtext('landlord template ' || $1))")
        .bind(template.as_str())
        .execute(&mut conn)
        .await?;
    Ok(conn)
}

/// Builds the template once from `migrations/tenant/`. It is flagged as a
/// template only when complete, and then closed to connections so that no
/// stray session can block a clone.
#[tracing::instrument(name = "postgres", skip_all, fields(otel.kind = "client", db.system = "postgresql", db.operation = "ensure_template"))]
async fn ensure_template(conn: &mut PgConnection, ctx: &StepCtx) -> Result<(), StepError> {
    let template = template_db(&ctx.deps.cfg.name_prefix);
    let state: Option<bool> =
        sqlx::query_scalar("SELECT datistemplate FROM pg_database WHERE datname = $1")
            .bind(template.as_str())
            .fetch_optional(&mut *conn)
            .await?;
    if state == Some(true) {
        return Ok(());
    }
    if state.is_none() {
        exec_ddl(&mut *conn, format!("CREATE DATABASE {}", template.quoted())).await?;
    }
    let tpool = single_connection(database_options(ctx, &template)?).await?;
    let migrated = TENANT_MIGRATIONS.run(&tpool).await;
    // The session must be gone before anyone clones the template.
    tpool.close().await;
    migrated.map_err(|e| StepError::permanent(format!("template migration failed: {e}")))?;
    exec_ddl(
        &mut *conn,
        format!(
            "ALTER DATABASE {} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false",
            template.quoted()
        ),
    )
    .await?;
    tracing::info!(template = %template, "built template database");
    Ok(())
}

#[tracing::instrument(name = "postgres", skip_all, fields(otel.kind = "client", db.system = "postgresql", db.operation = "ensure_role"))]
async fn ensure_role(
    conn: &mut PgConnection,
    ctx: &StepCtx,
    secrets: &SecretStore,
) -> Result<(), StepError> {
    let role = ctx.names.postgres_role();
    let existing: Option<Option<String>> = sqlx::query_scalar(
        "SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = $1",
    )
    .bind(role.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    let comment = ownership_comment(ctx);
    if let Some(found) = &existing
        && found.as_deref() != Some(comment.as_str())
    {
        return Err(StepError::permanent(format!(
            "role {role} exists and is not managed by landlord"
        )));
    }
    // A re-run after a crash cannot know whether the old password was
    // stored, so it sets a fresh one and stores that: one secret, one role.
    let password = generate_password(32);
    secrets
        .put(
            &ctx.deps.master,
            &secret_ref(&ctx.names.postgres_db()),
            &password,
        )
        .await
        .map_err(|e| match e {
            landlord_shared::secrets::SecretError::Db(db) => StepError::from(db),
            other => StepError::permanent(other),
        })?;
    let verb = if existing.is_some() {
        "ALTER"
    } else {
        "CREATE"
    };
    exec_ddl(
        &mut *conn,
        format!(
            "{verb} ROLE {} WITH LOGIN PASSWORD {}",
            role.quoted(),
            quote_literal(password.expose_secret())
        ),
    )
    .await?;
    exec_ddl(
        &mut *conn,
        format!(
            "COMMENT ON ROLE {} IS {}",
            role.quoted(),
            quote_literal(&comment)
        ),
    )
    .await?;
    Ok(())
}

/// Owner of database `db`, if it exists.
async fn database_owner(
    conn: &mut PgConnection,
    db: &PgIdent,
) -> Result<Option<String>, StepError> {
    Ok(sqlx::query_scalar(
        "SELECT pg_get_userbyid(datdba)::text FROM pg_database WHERE datname = $1",
    )
    .bind(db.as_str())
    .fetch_optional(&mut *conn)
    .await?)
}

#[tracing::instrument(name = "postgres", skip_all, fields(otel.kind = "client", db.system = "postgresql", db.operation = "ensure_database"))]
async fn ensure_database(conn: &mut PgConnection, ctx: &StepCtx) -> Result<(), StepError> {
    let db = ctx.names.postgres_db();
    let role = ctx.names.postgres_role();
    match database_owner(conn, &db).await? {
        Some(owner) if owner == role.as_str() => {}
        Some(owner) => {
            return Err(StepError::permanent(format!(
                "database {db} exists and is owned by {owner}"
            )));
        }
        None => {
            let template = template_db(&ctx.deps.cfg.name_prefix);
            exec_ddl(
                &mut *conn,
                format!(
                    "CREATE DATABASE {} TEMPLATE {} OWNER {}",
                    db.quoted(),
                    template.quoted(),
                    role.quoted()
                ),
            )
            .await?;
        }
    }
    exec_ddl(
        &mut *conn,
        format!(
            "REVOKE CONNECT, TEMPORARY ON DATABASE {} FROM PUBLIC",
            db.quoted()
        ),
    )
    .await?;
    exec_ddl(
        &mut *conn,
        format!(
            "GRANT CONNECT ON DATABASE {} TO {}",
            db.quoted(),
            role.quoted()
        ),
    )
    .await?;
    Ok(())
}

#[async_trait]
impl Step for Postgres {
    fn name(&self) -> &'static str {
        "postgres"
    }

    async fn run(&self, ctx: &StepCtx) -> Result<Value, StepError> {
        let secrets = ctx
            .deps
            .secrets
            .as_ref()
            .ok_or_else(|| StepError::permanent("LANDLORD_SECRET_KEY is not configured"))?;
        let mut conn = locked_connection(ctx).await?;
        let result = async {
            ensure_template(&mut conn, ctx).await?;
            ensure_role(&mut conn, ctx, secrets).await?;
            ensure_database(&mut conn, ctx).await
        }
        .await;
        // Closing ends the session and so releases the lock.
        let _ = conn.close().await;
        result?;
        let db = ctx.names.postgres_db();
        let opts = admin_options(ctx)?;
        Ok(json!({
            "database": db,
            "role": ctx.names.postgres_role(),
            "secret_ref": secret_ref(&db),
            "template": template_db(&ctx.deps.cfg.name_prefix),
            "host": opts.get_host(),
            "port": opts.get_port(),
            "resources": [
                { "kind": "postgres_database", "name": db },
                { "kind": "postgres_role", "name": ctx.names.postgres_role() },
            ],
        }))
    }

    async fn compensate(&self, ctx: &StepCtx, _: Option<&Value>) -> Result<(), StepError> {
        let db = ctx.names.postgres_db();
        let role = ctx.names.postgres_role();
        let mut conn = locked_connection(ctx).await?;
        let result = async {
            if database_owner(&mut conn, &db).await?.as_deref() == Some(role.as_str()) {
                exec_ddl(
                    &mut conn,
                    format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", db.quoted()),
                )
                .await?;
            }
            let comment: Option<Option<String>> = sqlx::query_scalar(
                "SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = $1",
            )
            .bind(role.as_str())
            .fetch_optional(&mut conn)
            .await?;
            if comment.flatten().as_deref() == Some(ownership_comment(ctx).as_str()) {
                exec_ddl(&mut conn, format!("DROP ROLE IF EXISTS {}", role.quoted())).await?;
            }
            SecretStore::delete(&ctx.deps.master, &secret_ref(&db))
                .await
                .map_err(StepError::permanent)
        }
        .await;
        let _ = conn.close().await;
        result
    }
}
