//! What a passing test env leaves behind goes when it is dropped: its
//! databases and roles, and its Keycloak realms. Every realm costs
//! Keycloak on every later call (the master realm gains a client and roles
//! per realm), so a suite that kept its realms slowed itself down as it
//! went, and a kept stack grew by about sixty a run.

use crate::master_template::ddl;
use landlord_shared::config::KeycloakConfig;
use landlord_shared::tenant::quote_ident;
use landlord_worker::clients::keycloak::Keycloak;
use sqlx::Connection;

/// Starts the cleanup of everything named by `prefix`. Drop cannot await,
/// so it runs on a thread of its own that nobody waits for: waiting would
/// block the test's runtime, a connection that runtime is still opening
/// would then never finish authenticating, and Postgres could not complete
/// the DROP DATABASE (every backend must answer its barrier) until the
/// 60 s authentication timeout. What a thread cut short at exit leaves,
/// tests/sweep.sh drops.
pub(crate) fn spawn(admin_url: String, prefix: String, keycloak: Option<KeycloakConfig>) {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("cleanup runtime");
        if let Err(e) = runtime.block_on(drop_named(&admin_url, &prefix)) {
            eprintln!("test env {prefix}: cleanup left something: {e}");
        }
        if let Some(kc) = keycloak
            && let Err(e) = runtime.block_on(delete_realms_of(kc, &prefix))
        {
            eprintln!("test env {prefix}: realms left: {e}");
        }
    });
}

/// Drops the databases and roles named `{prefix}_…`; a role that still
/// owns something elsewhere stays for the sweep.
async fn drop_named(admin_url: &str, prefix: &str) -> Result<(), sqlx::Error> {
    let mut conn = sqlx::PgConnection::connect(admin_url).await?;
    let pattern = format!("{prefix}\\_%");
    let databases: Vec<(String, bool)> =
        sqlx::query_as("SELECT datname, datistemplate FROM pg_database WHERE datname LIKE $1")
            .bind(&pattern)
            .fetch_all(&mut conn)
            .await?;
    for (db, template) in databases {
        let db = quote_ident(&db);
        if template {
            ddl(&mut conn, format!("ALTER DATABASE {db} IS_TEMPLATE false")).await?;
        }
        ddl(
            &mut conn,
            format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"),
        )
        .await?;
    }
    let roles: Vec<String> =
        sqlx::query_scalar("SELECT rolname FROM pg_roles WHERE rolname LIKE $1")
            .bind(&pattern)
            .fetch_all(&mut conn)
            .await?;
    for role in roles {
        // Roles owning nothing left go; see the sweep for the rest.
        let _ = ddl(
            &mut conn,
            format!("DROP ROLE IF EXISTS {}", quote_ident(&role)),
        )
        .await;
    }
    conn.close().await
}

/// Deletes every realm named `{prefix}-…` or `{prefix}_…` (tenant realms,
/// the shared realm, a test's own), all at once: one by one a delete takes
/// seconds of mostly waiting.
async fn delete_realms_of(
    cfg: KeycloakConfig,
    prefix: &str,
) -> Result<(), landlord_worker::step::StepError> {
    let kc = &Keycloak::new(cfg, reqwest::Client::new());
    let realms = kc.get_json("?briefRepresentation=true").await?;
    let ours = realms
        .as_ref()
        .and_then(|r| r.as_array())
        .into_iter()
        .flatten()
        .filter_map(|r| r["realm"].as_str())
        .filter(|r| {
            r.strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with(['-', '_']))
        });
    let deletes = ours.map(|realm| async move { kc.delete(&format!("/{realm}")).await });
    futures::future::try_join_all(deletes).await.map(drop)
}
