//! Template databases (seed 003): one per template key and version, built
//! once from the key's migrations, checked, flagged as a template, closed to
//! connections and recorded in `tenant_templates` before anyone clones it.
//!
//! The version is derived from the migrations themselves (the last one's
//! number and a hash of every checksum), so adding or changing a migration
//! makes a new template beside the old one; tenants cloned from the old one
//! keep saying so (`tenants.template_version`).

use crate::steps::check_schema::{TENANT_INDEXES, TENANT_TABLES, missing};
use landlord_shared::store;
use landlord_shared::store::catalog;
use landlord_shared::tenant::{NamePrefix, PgIdent, quote_literal};
use sha2::{Digest, Sha256};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgConnection, PgPool};
use std::borrow::Cow;

/// The tables and seed rows every tenant starts with.
pub static TENANT_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/tenant");
/// What the `crm` template adds on top of them.
static CRM_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/templates/crm");

/// Tables only some templates have, checked with the common ones.
const CRM_TABLES: &[&str] = &["accounts", "contacts", "deals"];

/// One template key's recipe.
pub struct Template {
    pub key: &'static str,
    pub migrator: Migrator,
    extra_tables: &'static [&'static str],
}

/// Why a template could not be made ready.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error("{0}")]
    Broken(String),
}

/// The template of `key`, if this binary has it (`catalogue::TEMPLATE_KEYS`).
pub fn template(key: &str) -> Option<Template> {
    let (key, sets, extra_tables): (&'static str, Vec<&Migrator>, &'static [&'static str]) =
        match key {
            "basic" => ("basic", vec![&TENANT_MIGRATIONS], &[]),
            "crm" => ("crm", vec![&TENANT_MIGRATIONS, &CRM_MIGRATIONS], CRM_TABLES),
            _ => return None,
        };
    let migrations = sets.iter().flat_map(|m| m.iter().cloned()).collect();
    Some(Template {
        key,
        migrator: Migrator {
            migrations: Cow::Owned(migrations),
            ..Migrator::DEFAULT
        },
        extra_tables,
    })
}

impl Template {
    /// `{last migration}.{8 hex of the checksums' hash}`.
    pub fn version(&self) -> String {
        version_of(&self.migrator)
    }

    /// `{prefix}_tpl_{key}_{hash}`: at most 20 + 5 + 5 + 1 + 8 characters.
    pub fn database(&self, prefix: &NamePrefix) -> PgIdent {
        let version = self.version();
        let hash = version.rsplit('.').next().unwrap_or_default();
        let name = format!("{}_tpl_{}_{hash}", prefix.as_str(), self.key);
        PgIdent::generated(&name).unwrap_or_else(|| {
            unreachable!("a prefix, a known key and hex make an identifier: {name}")
        })
    }

    fn versions(&self) -> Vec<i64> {
        self.migrator.iter().map(|m| m.version).collect()
    }
}

/// The version a set of migrations builds.
pub fn version_of(migrator: &Migrator) -> String {
    let mut hash = Sha256::new();
    for m in migrator.iter() {
        hash.update(m.version.to_be_bytes());
        hash.update(&m.checksum);
    }
    let last = migrator.iter().map(|m| m.version).max().unwrap_or(0);
    let digest = hash.finalize();
    let hex: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
    format!("{last}.{hex}")
}

/// The comment on a template database of ours.
fn mark(t: &Template) -> String {
    format!("landlord template {} {}", t.key, t.version())
}

/// The comment on the role that owns our template databases.
const OWNER_MARK: &str = "landlord templates";

/// `{prefix}_tpl_owner`: the NOLOGIN role our templates are created with.
/// CREATE DATABASE cannot share a transaction with its COMMENT, so a build
/// cut off between the two (a crash, Postgres restarting) leaves a database
/// with no comment; its owner, marked in the role's own transaction, still
/// says it is ours.
fn owner(prefix: &NamePrefix) -> PgIdent {
    let name = format!("{}_tpl_owner", prefix.as_str());
    PgIdent::generated(&name)
        .unwrap_or_else(|| unreachable!("a prefix and a suffix make an identifier: {name}"))
}

/// Creates the templates' owner role with its mark, once; refuses a role
/// of that name that is not ours.
async fn ensure_owner(conn: &mut PgConnection, owner: &PgIdent) -> Result<(), TemplateError> {
    use sqlx::Connection;
    match catalog::role_comment(&mut *conn, owner.as_str()).await? {
        Some(Some(c)) if c == OWNER_MARK => Ok(()),
        Some(_) => Err(TemplateError::Broken(format!(
            "role {owner} exists and is not Landlord's (no comment marking it as the templates' owner)"
        ))),
        None => {
            let mut tx = conn.begin().await?;
            exec(&mut tx, format!("CREATE ROLE {} NOLOGIN", owner.quoted())).await?;
            let comment = format!(
                "COMMENT ON ROLE {} IS {}",
                owner.quoted(),
                quote_literal(OWNER_MARK)
            );
            exec(&mut tx, comment).await?;
            Ok(tx.commit().await?)
        }
    }
}

/// A ready template: recorded, and flagged on the server.
pub struct Ready {
    pub key: &'static str,
    pub version: String,
    pub database: PgIdent,
    /// False when an earlier build was found ready.
    pub built: bool,
}

/// Holds, until `conn` closes, the lock under which `name` (a template or
/// the pool) is checked and created: Postgres refuses to clone a template
/// another session is using, so clones of one template are serialized too.
pub async fn lock(conn: &mut PgConnection, name: &PgIdent) -> Result<(), sqlx::Error> {
    catalog::advisory_lock(conn, &format!("landlord template {name}")).await
}

/// `landlord templates build`: makes the template of `key` ready outside
/// any run, under the same lock as the postgres step.
pub async fn build(
    admin: &PgConnectOptions,
    master: &PgPool,
    prefix: &NamePrefix,
    key: &str,
) -> Result<Ready, TemplateError> {
    use sqlx::{ConnectOptions, Connection};
    let t = template(key)
        .ok_or_else(|| TemplateError::Broken(format!("this binary has no template '{key}'")))?;
    let admin = admin.clone().log_statements(log::LevelFilter::Off);
    let mut conn = PgConnection::connect_with(&admin).await?;
    lock(&mut conn, &t.database(prefix)).await?;
    let ready = ensure(&mut conn, &admin, master, prefix, &t).await;
    let _ = conn.close().await;
    ready
}

async fn exec(conn: &mut PgConnection, sql: String) -> Result<(), sqlx::Error> {
    // DDL with quoted identifiers: it cannot take bind parameters.
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(conn)
        .await
        .map(drop)
}

/// Makes `t` ready on the server `conn` is connected to (as the admin,
/// holding the template's lock): found ready, or built, checked and recorded.
/// A database of that name that is not recorded is an interrupted build of
/// ours (by its comment, or, cut off before the comment, by its owner) and
/// is built again; otherwise it is someone else's and refused.
pub async fn ensure(
    conn: &mut PgConnection,
    admin: &PgConnectOptions,
    master: &PgPool,
    prefix: &NamePrefix,
    t: &Template,
) -> Result<Ready, TemplateError> {
    let db = t.database(prefix);
    let version = t.version();
    let found = catalog::database_info(&mut *conn, db.as_str()).await?;
    let recorded = store::template_recorded(master, t.key, &version, db.as_str()).await?;
    let ready = |built| Ready {
        key: t.key,
        version: version.clone(),
        database: db.clone(),
        built,
    };
    if found.as_ref().is_some_and(|d| d.is_template) && recorded {
        return Ok(ready(false));
    }
    // Only a build (or a database to judge) needs the owner role.
    let owner = owner(prefix);
    ensure_owner(conn, &owner).await?;
    if let Some(d) = found {
        let ours = d.comment.as_deref() == Some(mark(t).as_str())
            || (d.comment.is_none() && d.owner == owner.as_str());
        if !ours {
            return Err(TemplateError::Broken(format!(
                "database {db} exists and is not Landlord's template \
                 (no comment marking it, and not owned by {owner})"
            )));
        }
        if d.is_template {
            exec(
                conn,
                format!("ALTER DATABASE {} WITH IS_TEMPLATE false", db.quoted()),
            )
            .await?;
        }
        exec(conn, format!("DROP DATABASE {} WITH (FORCE)", db.quoted())).await?;
    }
    let create = format!("CREATE DATABASE {} OWNER {}", db.quoted(), owner.quoted());
    exec(conn, create).await?;
    exec(
        conn,
        format!(
            "COMMENT ON DATABASE {} IS {}",
            db.quoted(),
            quote_literal(&mark(t))
        ),
    )
    .await?;
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(admin.clone().database(db.as_str()))
        .await?;
    let checked = build_and_check(&pool, t).await;
    // The session must be gone before anyone clones the template.
    pool.close().await;
    checked?;
    exec(
        conn,
        format!(
            "ALTER DATABASE {} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false",
            db.quoted()
        ),
    )
    .await?;
    store::record_template(master, t.key, &version, db.as_str(), &t.versions()).await?;
    tracing::info!(template = %db, key = t.key, version = %version, "built template database");
    Ok(ready(true))
}

/// Runs the key's migrations, then checks what they should have left: each
/// migration applied with its checksum, every table and index.
async fn build_and_check(pool: &PgPool, t: &Template) -> Result<(), TemplateError> {
    t.migrator
        .run(pool)
        .await
        .map_err(|e| TemplateError::Broken(format!("template migration failed: {e}")))?;
    let applied: Vec<(i64, Vec<u8>)> = sqlx::query!(
        "SELECT version, checksum FROM _sqlx_migrations WHERE success ORDER BY version"
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|m| (m.version, m.checksum))
    .collect();
    let mut wanted: Vec<(i64, Vec<u8>)> = t
        .migrator
        .iter()
        .map(|m| (m.version, m.checksum.to_vec()))
        .collect();
    wanted.sort();
    if applied != wanted {
        return Err(TemplateError::Broken(format!(
            "template {} applied {} migrations, expected {}",
            t.key,
            applied.len(),
            wanted.len()
        )));
    }
    let tables = catalog::tables_in(pool, "public").await?;
    let indexes = catalog::indexes_in(pool, "public").await?;
    let wanted_tables: Vec<&str> = TENANT_TABLES
        .iter()
        .chain(t.extra_tables)
        .copied()
        .collect();
    let (no_tables, no_indexes) = (
        missing(&wanted_tables, &tables),
        missing(TENANT_INDEXES, &indexes),
    );
    if !no_tables.is_empty() || !no_indexes.is_empty() {
        return Err(TemplateError::Broken(format!(
            "template {} is incomplete: missing tables [{}], missing indexes [{}]",
            t.key,
            no_tables.join(", "),
            no_indexes.join(", ")
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use landlord_shared::catalogue::TEMPLATE_KEYS;

    #[test]
    fn every_catalogue_template_key_has_a_recipe_with_a_stable_version() {
        let prefix = NamePrefix::parse("freeflow").unwrap();
        for key in TEMPLATE_KEYS {
            let t = template(key).unwrap_or_else(|| panic!("no recipe for {key}"));
            assert_eq!(t.version(), template(key).unwrap().version());
            assert!(
                t.database(&prefix)
                    .as_str()
                    .starts_with(&format!("freeflow_tpl_{key}_"))
            );
        }
        assert_ne!(
            template("basic").unwrap().version(),
            template("crm").unwrap().version()
        );
        let first_only = Migrator {
            migrations: Cow::Owned(vec![TENANT_MIGRATIONS.iter().next().unwrap().clone()]),
            ..Migrator::DEFAULT
        };
        assert_ne!(
            version_of(&first_only),
            template("basic").unwrap().version()
        );
    }
}
