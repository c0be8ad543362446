//! Postgres in schema mode (seed 002): the tenant's tables live in schema
//! `tenant_{key}` of one pooled database, `{prefix}_pool`, created once and
//! marked as Landlord's. The tenant's login role may connect to the pool and
//! use its own schema only: PUBLIC has neither CONNECT on the pool nor any
//! right on its `public` schema, the role gets USAGE and CREATE on its own
//! schema alone, and its `search_path` in the pool is pinned to it.
//!
//! The schema carries the tenant's mark (`COMMENT ON SCHEMA`, in the
//! transaction that creates it); undo drops a schema only with that mark.

use super::claim::{foreign, left_alone};
use super::postgres::{
    admin_options, database_options, ensure_role, exec_ddl, ownership_comment, role_comment,
};
use crate::step::{StepCtx, StepError};
use landlord_shared::secrets::SecretStore;
use landlord_shared::store::catalog;
use landlord_shared::tenant::{PgIdent, quote_literal};
use sqlx::{Connection, PgConnection};

/// The comment on the pooled database and on the role that owns it.
const POOL_MARK: &str = "landlord pool";

/// The comment on database `db`, and its owner; `None` when absent.
async fn database_comment(
    conn: &mut PgConnection,
    db: &PgIdent,
) -> Result<Option<(Option<String>, String)>, StepError> {
    Ok(catalog::database_info(&mut *conn, db.as_str())
        .await?
        .map(|d| (d.comment, d.owner)))
}

/// Creates the pooled database once. Its owner is a NOLOGIN role created
/// with its mark in one transaction, so a crash between CREATE DATABASE and
/// its COMMENT still leaves a pool we recognise.
async fn ensure_pool(conn: &mut PgConnection, ctx: &StepCtx) -> Result<(), StepError> {
    let pool = ctx.names.postgres_pool();
    let owner = ctx.names.postgres_pool_owner();
    let owner_mark = role_comment(conn, &owner).await?;
    match owner_mark.as_ref() {
        Some(Some(c)) if c == POOL_MARK => {}
        Some(_) => {
            return Err(foreign(
                &format!("postgres role {owner}"),
                "no comment marking it as the owner of Landlord's pool",
            ));
        }
        None => {
            let mut tx = conn.begin().await?;
            exec_ddl(&mut tx, format!("CREATE ROLE {} NOLOGIN", owner.quoted())).await?;
            exec_ddl(
                &mut tx,
                format!(
                    "COMMENT ON ROLE {} IS {}",
                    owner.quoted(),
                    quote_literal(POOL_MARK)
                ),
            )
            .await?;
            tx.commit().await?;
        }
    }
    match database_comment(conn, &pool).await? {
        Some((comment, by)) if comment.as_deref() == Some(POOL_MARK) || by == owner.as_str() => {}
        Some(_) => {
            return Err(foreign(
                &format!("postgres database {pool}"),
                "neither marked as Landlord's pool nor owned by its pool role",
            ));
        }
        None => {
            exec_ddl(
                &mut *conn,
                format!("CREATE DATABASE {} OWNER {}", pool.quoted(), owner.quoted()),
            )
            .await?;
        }
    }
    for ddl in [
        format!(
            "COMMENT ON DATABASE {} IS {}",
            pool.quoted(),
            quote_literal(POOL_MARK)
        ),
        format!(
            "REVOKE CONNECT, TEMPORARY ON DATABASE {} FROM PUBLIC",
            pool.quoted()
        ),
    ] {
        exec_ddl(&mut *conn, ddl).await?;
    }
    Ok(())
}

/// The comment on schema `schema` of the connected database: `None` when
/// absent, `Some(None)` when unmarked.
async fn schema_comment(
    conn: &mut PgConnection,
    schema: &PgIdent,
) -> Result<Option<Option<String>>, StepError> {
    Ok(catalog::schema_comment(&mut *conn, schema.as_str()).await?)
}

/// In the pool: `public` closed to everyone, the tenant's schema created
/// with its mark, the role's rights on it and its pinned `search_path`.
async fn ensure_schema(pool_conn: &mut PgConnection, ctx: &StepCtx) -> Result<(), StepError> {
    let schema = ctx.names.postgres_schema();
    let role = ctx.names.postgres_role();
    let mark = ownership_comment(ctx)?;
    exec_ddl(
        &mut *pool_conn,
        "REVOKE ALL ON SCHEMA public FROM PUBLIC".to_owned(),
    )
    .await?;
    match schema_comment(pool_conn, &schema).await? {
        Some(Some(c)) if c == mark => {}
        Some(_) => {
            return Err(foreign(
                &format!("postgres schema {schema}"),
                "no comment marking it for this tenant",
            ));
        }
        None => {
            let mut tx = pool_conn.begin().await?;
            exec_ddl(&mut tx, format!("CREATE SCHEMA {}", schema.quoted())).await?;
            exec_ddl(
                &mut tx,
                format!(
                    "COMMENT ON SCHEMA {} IS {}",
                    schema.quoted(),
                    quote_literal(&mark)
                ),
            )
            .await?;
            tx.commit().await?;
        }
    }
    let pool = ctx.names.postgres_pool();
    for ddl in [
        format!(
            "GRANT CONNECT ON DATABASE {} TO {}",
            pool.quoted(),
            role.quoted()
        ),
        format!(
            "GRANT USAGE, CREATE ON SCHEMA {} TO {}",
            schema.quoted(),
            role.quoted()
        ),
        format!(
            "ALTER ROLE {} IN DATABASE {} SET search_path = {}",
            role.quoted(),
            pool.quoted(),
            schema.quoted()
        ),
    ] {
        exec_ddl(&mut *pool_conn, ddl).await?;
    }
    Ok(())
}

/// The postgres step's work in schema mode, on a connection holding the
/// pool's lock.
pub(super) async fn run(
    conn: &mut PgConnection,
    ctx: &StepCtx,
    secrets: &SecretStore,
) -> Result<(), StepError> {
    ensure_pool(conn, ctx).await?;
    ensure_role(conn, ctx, secrets).await?;
    let mut pool_conn =
        PgConnection::connect_with(&database_options(ctx, &ctx.names.postgres_pool())?).await?;
    let result = ensure_schema(&mut pool_conn, ctx).await;
    let _ = pool_conn.close().await;
    result
}

/// Undo in the pool, before the role is dropped: the tenant's schema (only
/// with our mark) and everything the role owns or was granted there. The
/// pool itself stays: other tenants live in it.
pub(super) async fn undo(conn: &mut PgConnection, ctx: &StepCtx) -> Result<(), StepError> {
    let pool = ctx.names.postgres_pool();
    if database_comment(conn, &pool).await?.is_none() {
        return Ok(());
    }
    let schema = ctx.names.postgres_schema();
    let role = ctx.names.postgres_role();
    let mark = ownership_comment(ctx)?;
    let role_is_ours = role_comment(conn, &role).await?.flatten().as_deref() == Some(mark.as_str());
    let mut pool_conn =
        PgConnection::connect_with(&admin_options(ctx)?.database(pool.as_str())).await?;
    let result = async {
        match schema_comment(&mut pool_conn, &schema).await? {
            Some(Some(c)) if c == mark => {
                exec_ddl(
                    &mut pool_conn,
                    format!("DROP SCHEMA IF EXISTS {} CASCADE", schema.quoted()),
                )
                .await?;
            }
            Some(_) => left_alone(
                ctx,
                "postgres_schema",
                &format!("{pool}.{schema}"),
                "no comment marking it for this tenant",
            ),
            None => {}
        }
        if role_is_ours {
            // Revokes its CONNECT on the pool too (a shared object), which
            // would otherwise keep DROP ROLE from succeeding.
            exec_ddl(&mut pool_conn, format!("DROP OWNED BY {}", role.quoted())).await?;
        }
        Ok(())
    }
    .await;
    let _ = pool_conn.close().await;
    result
}
