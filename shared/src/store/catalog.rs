//! Reads of a Postgres server's own catalog — the tenant server's, where
//! the steps create databases, roles and schemas. They are checked at
//! compile time like the master database's queries: the catalog is the
//! same in every database. Names are compared as `text` (`$1::text`) so the
//! parameters are plain strings, not Postgres' `name` type.

use sqlx::PgExecutor;

/// A database as the server sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseInfo {
    pub is_template: bool,
    /// Its `COMMENT ON DATABASE`, where Landlord keeps its mark.
    pub comment: Option<String>,
    pub owner: String,
}

/// `None` when there is no such database.
pub async fn database_info(
    ex: impl PgExecutor<'_>,
    name: &str,
) -> sqlx::Result<Option<DatabaseInfo>> {
    sqlx::query_as!(
        DatabaseInfo,
        r#"SELECT datistemplate AS is_template, shobj_description(oid, 'pg_database') AS comment,
                  pg_get_userbyid(datdba)::text AS "owner!"
           FROM pg_database WHERE datname = $1::text"#,
        name
    )
    .fetch_optional(ex)
    .await
}

pub async fn database_exists(ex: impl PgExecutor<'_>, name: &str) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1::text) AS "found!""#,
        name
    )
    .fetch_one(ex)
    .await
}

/// The database the connection is in.
pub async fn current_database(ex: impl PgExecutor<'_>) -> sqlx::Result<String> {
    sqlx::query_scalar!(r#"SELECT current_database()::text AS "name!""#)
        .fetch_one(ex)
        .await
}

/// The comment on a role: `None` when there is no such role, `Some(None)`
/// when it has no comment.
pub async fn role_comment(
    ex: impl PgExecutor<'_>,
    role: &str,
) -> sqlx::Result<Option<Option<String>>> {
    sqlx::query_scalar!(
        "SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = $1::text",
        role
    )
    .fetch_optional(ex)
    .await
}

/// The comment on a schema of the connected database: `None` when absent,
/// `Some(None)` when unmarked.
pub async fn schema_comment(
    ex: impl PgExecutor<'_>,
    schema: &str,
) -> sqlx::Result<Option<Option<String>>> {
    sqlx::query_scalar!(
        "SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = $1::text",
        schema
    )
    .fetch_optional(ex)
    .await
}

/// The tables of a schema of the connected database.
pub async fn tables_in(ex: impl PgExecutor<'_>, schema: &str) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar!(
        r#"SELECT tablename::text AS "name!" FROM pg_tables WHERE schemaname = $1::text"#,
        schema
    )
    .fetch_all(ex)
    .await
}

/// The indexes of a schema of the connected database.
pub async fn indexes_in(ex: impl PgExecutor<'_>, schema: &str) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar!(
        r#"SELECT indexname::text AS "name!" FROM pg_indexes WHERE schemaname = $1::text"#,
        schema
    )
    .fetch_all(ex)
    .await
}

/// Ends every session of a role (NOLOGIN stops new ones only).
pub async fn terminate_sessions(ex: impl PgExecutor<'_>, role: &str) -> sqlx::Result<()> {
    sqlx::query!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1::text",
        role
    )
    .fetch_all(ex)
    .await
    .map(drop)
}

/// Holds, until the session ends, the advisory lock named `key`.
pub async fn advisory_lock(ex: impl PgExecutor<'_>, key: &str) -> sqlx::Result<()> {
    // pg_advisory_lock returns void, which has no Rust type: selected as
    // a row source, it gives one row to wait for.
    sqlx::query!(
        r#"SELECT true AS "locked!" FROM pg_advisory_lock(hashtext($1::text))"#,
        key
    )
    .fetch_one(ex)
    .await
    .map(drop)
}
