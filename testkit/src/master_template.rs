//! A migrated master database that every test environment clones, built
//! once per migration set: a clone (`CREATE DATABASE … TEMPLATE`) copies
//! files, where migrating a new database runs every migration again.

use sha2::{Digest, Sha256};
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection};
use std::path::Path;
use tokio::sync::OnceCell;

/// Template names start with this; tests/sweep.sh drops them before a run.
pub const PREFIX: &str = "landlord_test_master_";

static NAME: OnceCell<String> = OnceCell::const_new();

/// The template's name, built on first use in this process. Several test
/// binaries may ask at once: a Postgres advisory lock makes one build it.
pub async fn name(admin_url: &str) -> &'static str {
    NAME.get_or_init(|| async { build(admin_url).await })
        .await
        .as_str()
}

/// Everything a migrated master database depends on: our migrations, and
/// the lock file that pins apalis-postgres (whose migrations run too).
fn fingerprint() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files: Vec<_> = std::fs::read_dir(root.join("migrations/master"))
        .expect("read migrations/master")
        .map(|e| e.expect("migration entry").path())
        .collect();
    files.sort();
    files.push(root.join("Cargo.lock"));
    let mut hash = Sha256::new();
    for f in files {
        hash.update(f.file_name().expect("file name").as_encoded_bytes());
        hash.update(std::fs::read(&f).expect("read a migration"));
    }
    hex::encode(&hash.finalize()[..8])
}

async fn build(admin_url: &str) -> String {
    let name = format!("{PREFIX}{}", fingerprint());
    let mut admin = PgConnection::connect(admin_url)
        .await
        .expect("admin connection");
    // Session-level: held until this connection closes, panics included.
    // Test code: runtime SQL (the compile-checked set is the product's).
    sqlx::query("SELECT pg_advisory_lock(hashtext('landlord_test_master_template'))")
        .execute(&mut admin)
        .await
        .expect("template lock");
    let built: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&name)
            .fetch_one(&mut admin)
            .await
            .expect("look for the template");
    if !built {
        // Built under another name and renamed when complete, so a crash
        // mid-build never leaves a half-migrated template to clone.
        let partial = format!("{name}_partial");
        for sql in [
            format!("DROP DATABASE IF EXISTS {partial} WITH (FORCE)"),
            format!("CREATE DATABASE {partial}"),
        ] {
            ddl(&mut admin, sql.clone())
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
        let url = with_database(admin_url, &partial);
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect(&url)
            .await
            .expect("template connection");
        landlord_shared::migrate::migrate_master(&pool)
            .await
            .expect("migrate the template");
        pool.close().await;
        ddl(
            &mut admin,
            format!("ALTER DATABASE {partial} RENAME TO {name}"),
        )
        .await
        .expect("name the built template");
    }
    let _ = admin.close().await;
    name
}

/// DDL on names we generated or read from the catalogue, quoted: it
/// cannot take bind parameters.
pub(crate) async fn ddl<'c>(ex: impl sqlx::PgExecutor<'c>, sql: String) -> sqlx::Result<()> {
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(ex)
        .await
        .map(drop)
}

pub fn with_database(url: &str, db: &str) -> String {
    let (base, _) = url.rsplit_once('/').expect("url has a database");
    format!("{base}/{db}")
}
