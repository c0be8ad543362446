//! Postgres step: a login role with a generated password and a database
//! cloned from the template (seed 003), CONNECT revoked from PUBLIC; in the
//! plan's schema mode, a schema in the pooled database instead
//! (`postgres_schema.rs`).
//! Both carry a comment with the tenant's id; a role or database of the
//! same name without it is someone else's and is never adopted or dropped.
//!
//! Everything runs under one advisory lock per template: Postgres refuses to
//! clone a template that another session is using (SQLSTATE 55006), so
//! clones of one template are serialized, and the lock also makes the
//! check-then-create of role and database race-free.

use super::claim::{foreign, left_alone, mark_text};
use crate::step::{Step, StepCtx, StepError};
use crate::templates::{self, Template, TemplateError};
use async_trait::async_trait;
use landlord_shared::catalogue::PostgresMode;
use landlord_shared::secrets::{SecretStore, generate_password};
use landlord_shared::store::catalog;
use landlord_shared::tenant::{PgIdent, quote_literal};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};

pub struct Postgres;

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

/// Comment put on roles and databases we create, keyed on the tenant's
/// id, so we never adopt or drop someone else's of the same name.
pub(super) fn ownership_comment(ctx: &StepCtx) -> Result<String, StepError> {
    Ok(mark_text(ctx.require_tenant_id()?))
}

/// The comment on role `role`: `None` when there is no such role,
/// `Some(None)` when it has no comment.
pub(super) async fn role_comment(
    conn: &mut PgConnection,
    role: &PgIdent,
) -> Result<Option<Option<String>>, StepError> {
    Ok(catalog::role_comment(&mut *conn, role.as_str()).await?)
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

/// Keyed on the role, which both modes name alike.
fn secret_ref(role: &PgIdent) -> String {
    format!("postgres/{role}")
}

/// How the run's plan isolates the tenant in Postgres; runs from before
/// plans existed had databases.
pub(super) fn mode(ctx: &StepCtx) -> PostgresMode {
    ctx.run
        .plan
        .as_ref()
        .map_or(PostgresMode::Database, |p| p.0.postgres.mode)
}

/// A maintenance connection holding the lock on `name` (the template, or
/// the pool) until it is closed; a crashed worker's lock goes away with its
/// connection.
async fn locked_connection(ctx: &StepCtx, name: &PgIdent) -> Result<PgConnection, StepError> {
    let mut conn = PgConnection::connect_with(&admin_options(ctx)?).await?;
    templates::lock(&mut conn, name).await?;
    Ok(conn)
}

/// The recipe of the run's template key (`basic` for runs from before
/// plans existed).
pub(super) fn template_of(ctx: &StepCtx) -> Result<Template, StepError> {
    let key = ctx
        .run
        .plan
        .as_ref()
        .map_or("basic", |p| p.0.postgres.template.as_str());
    templates::template(key)
        .ok_or_else(|| StepError::permanent(format!("this worker has no template '{key}'")))
}

impl From<TemplateError> for StepError {
    fn from(e: TemplateError) -> Self {
        match e {
            TemplateError::Db(e) => e.into(),
            TemplateError::Broken(msg) => StepError::permanent(msg),
        }
    }
}

/// Creates the role with its mark in one transaction (role DDL is
/// transactional), or takes over our own after a crash; a role of the same
/// name without our mark is refused.
#[tracing::instrument(name = "postgres", skip_all, fields(otel.kind = "client", db.system = "postgresql", db.operation = "ensure_role"))]
pub(super) async fn ensure_role(
    conn: &mut PgConnection,
    ctx: &StepCtx,
    secrets: &SecretStore,
) -> Result<(), StepError> {
    let role = ctx.names.postgres_role();
    let comment = ownership_comment(ctx)?;
    let existing = role_comment(conn, &role).await?;
    if let Some(found) = &existing
        && found.as_deref() != Some(comment.as_str())
    {
        return Err(foreign(
            &format!("postgres role {role}"),
            "no comment marking it for this tenant",
        ));
    }
    // A re-run after a crash cannot know whether the old password was
    // stored, so it sets a fresh one and stores that: one secret, one role.
    let password = generate_password(32);
    secrets
        .put(
            &ctx.deps.master,
            &secret_ref(&ctx.names.postgres_role()),
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
    let mut tx = conn.begin().await?;
    exec_ddl(
        &mut tx,
        format!(
            "{verb} ROLE {} WITH LOGIN PASSWORD {} CONNECTION LIMIT {}",
            role.quoted(),
            quote_literal(password.expose_secret()),
            ctx.deps.cfg.tenant_connection_limit
        ),
    )
    .await?;
    exec_ddl(
        &mut tx,
        format!(
            "COMMENT ON ROLE {} IS {}",
            role.quoted(),
            quote_literal(&comment)
        ),
    )
    .await?;
    tx.commit().await?;
    deny_master(conn, ctx, &role).await
}

/// A library that does not exist, as a per-database session default.
const NO_CONNECT_LIBRARY: &str = "landlord_tenant_role_may_not_connect_here";

/// Keeps the tenant's role out of the master database when it lives on the
/// tenant server. CONNECT there comes from PUBLIC, which is not ours to
/// revoke, and Postgres has no per-role deny; so the role gets, in that
/// database only, a superuser-only session default naming a library that
/// does not exist: its sessions there end at start-up with FATAL, and the
/// role cannot reset the setting itself. DROP ROLE removes it.
async fn deny_master(
    conn: &mut PgConnection,
    ctx: &StepCtx,
    role: &PgIdent,
) -> Result<(), StepError> {
    let master = catalog::current_database(&ctx.deps.master).await?;
    let shared = catalog::database_exists(&mut *conn, &master).await?;
    if !shared {
        return Ok(());
    }
    let sql = format!(
        "ALTER ROLE {} IN DATABASE {} SET session_preload_libraries = {}",
        role.quoted(),
        landlord_shared::tenant::quote_ident(&master),
        quote_literal(NO_CONNECT_LIBRARY)
    );
    // DDL (identifiers quoted into the text): it cannot be checked at
    // compile time or take bind parameters; not exec_ddl, for its error.
    match sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(conn).await {
        Ok(_) => Ok(()),
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42501") => {
            Err(StepError::permanent(format!(
                "cannot keep role {role} out of the master database {master}: the admin role \
                 needs superuser or GRANT SET ON PARAMETER session_preload_libraries"
            )))
        }
        Err(e) => Err(e.into()),
    }
}

/// Whether database `db` is ours: it carries our comment, or it is owned by
/// our (marked) role — CREATE DATABASE cannot share a transaction with its
/// comment, so a crash between the two leaves only the owner to tell.
/// `None` when it does not exist.
async fn database_is_ours(
    conn: &mut PgConnection,
    ctx: &StepCtx,
    db: &PgIdent,
) -> Result<Option<bool>, StepError> {
    let found = catalog::database_info(&mut *conn, db.as_str()).await?;
    let Some(catalog::DatabaseInfo { comment, owner, .. }) = found else {
        return Ok(None);
    };
    let mark = ownership_comment(ctx)?;
    if comment.as_deref() == Some(mark.as_str()) {
        return Ok(Some(true));
    }
    let role = ctx.names.postgres_role();
    let owner_is_ours = owner == role.as_str()
        && role_comment(conn, &role).await?.flatten().as_deref() == Some(mark.as_str());
    Ok(Some(owner_is_ours))
}

#[tracing::instrument(name = "postgres", skip_all, fields(otel.kind = "client", db.system = "postgresql", db.operation = "ensure_database"))]
async fn ensure_database(
    conn: &mut PgConnection,
    ctx: &StepCtx,
    template: &PgIdent,
) -> Result<(), StepError> {
    let db = ctx.names.postgres_db();
    let role = ctx.names.postgres_role();
    match database_is_ours(conn, ctx, &db).await? {
        Some(true) => {}
        Some(false) => {
            return Err(foreign(
                &format!("postgres database {db}"),
                "neither marked for this tenant nor owned by its role",
            ));
        }
        None => {
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
            "COMMENT ON DATABASE {} IS {}",
            db.quoted(),
            quote_literal(&ownership_comment(ctx)?)
        ),
    )
    .await?;
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
        let mode = mode(ctx);
        let recipe = template_of(ctx)?;
        let prefix = &ctx.deps.cfg.name_prefix;
        let template = recipe.database(prefix);
        let lock = match mode {
            PostgresMode::Database => template.clone(),
            PostgresMode::Schema => ctx.names.postgres_pool(),
        };
        let mut conn = locked_connection(ctx, &lock).await?;
        let result = async {
            match mode {
                PostgresMode::Database => {
                    let admin = admin_options(ctx)?;
                    templates::ensure(&mut conn, &admin, &ctx.deps.master, prefix, &recipe).await?;
                    ensure_role(&mut conn, ctx, secrets).await?;
                    ensure_database(&mut conn, ctx, &template).await
                }
                PostgresMode::Schema => super::postgres_schema::run(&mut conn, ctx, secrets).await,
            }
        }
        .await;
        // Closing ends the session and so releases the lock.
        let _ = conn.close().await;
        result?;
        let (template_key, template_version) = (recipe.key, recipe.version());
        let role = ctx.names.postgres_role();
        let opts = admin_options(ctx)?;
        Ok(match mode {
            PostgresMode::Database => {
                let db = ctx.names.postgres_db();
                json!({
                    "mode": "database",
                    "database": db,
                    "role": role,
                    "secret_ref": secret_ref(&role),
                    "template": template,
                    "template_key": template_key,
                    "template_version": template_version,
                    "host": opts.get_host(),
                    "port": opts.get_port(),
                    "resources": [
                        { "kind": "postgres_database", "name": db },
                        { "kind": "postgres_role", "name": role },
                    ],
                })
            }
            PostgresMode::Schema => {
                let (pool, schema) = (ctx.names.postgres_pool(), ctx.names.postgres_schema());
                json!({
                    "mode": "schema",
                    "database": pool,
                    "schema": schema,
                    "template_key": template_key,
                    "template_version": template_version,
                    "role": role,
                    "secret_ref": secret_ref(&role),
                    "host": opts.get_host(),
                    "port": opts.get_port(),
                    "resources": [
                        { "kind": "postgres_schema", "name": format!("{pool}.{schema}") },
                        { "kind": "postgres_role", "name": role },
                    ],
                })
            }
        })
    }

    async fn compensate(&self, ctx: &StepCtx, _: Option<&Value>) -> Result<(), StepError> {
        let db = ctx.names.postgres_db();
        let role = ctx.names.postgres_role();
        let mark = ownership_comment(ctx)?;
        let lock = match template_of(ctx) {
            Ok(t) => t.database(&ctx.deps.cfg.name_prefix),
            Err(_) => ctx.names.postgres_db(),
        };
        let mut conn = locked_connection(ctx, &lock).await?;
        let result = async {
            // Both modes' resources are looked for, each by its own name and
            // mark: a hard deprovisioning run carries no plan.
            super::postgres_schema::undo(&mut conn, ctx).await?;
            match database_is_ours(&mut conn, ctx, &db).await? {
                Some(true) => {
                    exec_ddl(
                        &mut conn,
                        format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", db.quoted()),
                    )
                    .await?;
                }
                Some(false) => left_alone(
                    ctx,
                    "postgres_database",
                    db.as_str(),
                    "neither marked for this tenant nor owned by its role",
                ),
                None => {}
            }
            match role_comment(&mut conn, &role).await? {
                Some(Some(c)) if c == mark => {
                    exec_ddl(&mut conn, format!("DROP ROLE IF EXISTS {}", role.quoted())).await?;
                }
                Some(_) => left_alone(
                    ctx,
                    "postgres_role",
                    role.as_str(),
                    "no comment marking it for this tenant",
                ),
                None => {}
            }
            SecretStore::delete(&ctx.deps.master, &secret_ref(&role))
                .await
                .map_err(StepError::permanent)
        }
        .await;
        let _ = conn.close().await;
        result
    }
}
