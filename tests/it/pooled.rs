//! Schema mode (seed 002): pooled tenants in one database, each in its own
//! schema with its own login role, checked on the real server with the
//! tenants' real passwords.

use crate::harness::{TestEnv, admin_url};
use landlord_shared::actions::{DeprovisionMode, rollback_run, start_deprovision};
use landlord_shared::model::ProvisionParams;
use landlord_shared::secrets::SecretStore;
use secrecy::ExposeSecret;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(90);

pub const CATALOGUE: &str = r#"
default = "silo"

[plans.silo]
tier = "enterprise"
steps = ["postgres", "migrate", "check_schema", "storage"]

[plans.pooled]
tier = "standard"
steps = ["postgres", "migrate", "check_schema", "storage"]
[plans.pooled.postgres]
mode = "schema"
"#;

/// An environment whose catalogue has `silo` (default) and `pooled`.
pub async fn pooled_env(dir: &tempfile::TempDir) -> TestEnv {
    TestEnv::with_catalogue(dir, CATALOGUE, false).await
}

fn pooled() -> ProvisionParams {
    ProvisionParams {
        plan: Some("pooled".into()),
        ..Default::default()
    }
}

/// A connection as the tenant's own role, with the password Landlord keeps
/// for it.
pub async fn connect_as(
    env: &TestEnv,
    tenant: &str,
    db: &str,
) -> Result<PgConnection, sqlx::Error> {
    let role = env.db_name(tenant);
    let store = SecretStore::from_base64(env.cfg.secret_key.as_ref().unwrap()).unwrap();
    let password = store
        .get(&env.pool, &format!("postgres/{role}"))
        .await
        .unwrap();
    let opts = admin_url()
        .parse::<PgConnectOptions>()
        .unwrap()
        .username(&role)
        .password(password.expose_secret())
        .database(db);
    PgConnection::connect_with(&opts).await
}

fn sqlstate(r: Result<impl std::fmt::Debug, sqlx::Error>) -> String {
    match r {
        Err(sqlx::Error::Database(e)) => e.code().unwrap_or_default().into_owned(),
        other => format!("not a database error: {other:?}"),
    }
}

pub async fn scalar(conn: &mut PgConnection, sql: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(conn)
        .await
}

pub async fn schema_exists(env: &TestEnv, schema: &str) -> bool {
    let mut conn = admin_in(env, &pool_db(env)).await;
    let n = sqlx::query_scalar::<_, i64>("SELECT count(*) FROM pg_namespace WHERE nspname = $1")
        .bind(schema)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    n == 1
}

pub fn pool_db(env: &TestEnv) -> String {
    format!("{}_pool", env.prefix)
}

async fn admin_in(_env: &TestEnv, db: &str) -> PgConnection {
    let opts = admin_url()
        .parse::<PgConnectOptions>()
        .unwrap()
        .database(db);
    PgConnection::connect_with(&opts).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pooled_tenant_can_use_its_own_schema_only() {
    let dir = tempfile::tempdir().unwrap();
    let env = pooled_env(&dir).await;
    let worker = env.spawn_worker().await;
    let runs = [
        env.start_with("alpha", &pooled()).await.run,
        env.start_with("bravo", &pooled()).await.run,
        env.start("siloed").await.run,
    ];
    for run in &runs {
        let done = env.wait_finished(run.id, WAIT).await;
        assert_eq!(
            done.status, "completed",
            "{}: {:?}",
            run.tenant_name, done.error
        );
    }
    worker.shutdown().await;
    let check = env.step(runs[0].id, "check_schema").await.output.unwrap();
    assert_eq!(check["schema"], "tenant_alpha");
    assert_eq!(
        (check["tables"].as_i64(), check["indexes"].as_i64()),
        (Some(12), Some(18))
    );
    let pg = env.step(runs[0].id, "postgres").await.output.unwrap();
    assert_eq!(
        (pg["mode"].as_str(), pg["database"].as_str()),
        (Some("schema"), Some(pool_db(&env).as_str()))
    );
    assert!(
        !env.database_exists("alpha").await,
        "a pooled tenant has no database of its own"
    );
    let options: serde_json::Value = sqlx::query_scalar(
        "SELECT c.options FROM tenant_connections c JOIN tenants t ON t.id = c.tenant_id
         WHERE t.name = 'alpha' AND c.service = 'postgres'",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(
        options,
        serde_json::json!({ "schema": "tenant_alpha", "search_path": "tenant_alpha" })
    );

    let mut alpha = connect_as(&env, "alpha", &pool_db(&env))
        .await
        .expect("alpha logs in to the pool");
    // Its own schema, by the pinned search_path.
    let path: String = sqlx::query_scalar("SHOW search_path")
        .fetch_one(&mut alpha)
        .await
        .unwrap();
    assert_eq!(path, "tenant_alpha");
    sqlx::raw_sql("INSERT INTO docbasket (name) VALUES ('inbox'); CREATE TABLE mine (i int)")
        .execute(&mut alpha)
        .await
        .expect("alpha writes and creates in its own schema");
    assert_eq!(
        scalar(&mut alpha, "SELECT count(*) FROM schemas")
            .await
            .unwrap(),
        2,
        "seeded"
    );
    // Nothing of bravo's: not read, not listed, not created in.
    assert_eq!(
        sqlstate(scalar(&mut alpha, "SELECT count(*) FROM tenant_bravo.users").await),
        "42501"
    );
    assert_eq!(
        sqlstate(
            sqlx::raw_sql("CREATE TABLE tenant_bravo.planted (i int)")
                .execute(&mut alpha)
                .await
        ),
        "42501"
    );
    let listed =
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'tenant_bravo'";
    assert_eq!(scalar(&mut alpha, listed).await.unwrap(), 0);
    // Nor the pool's public schema.
    assert_eq!(
        sqlstate(
            sqlx::raw_sql("CREATE TABLE public.planted (i int)")
                .execute(&mut alpha)
                .await
        ),
        "42501"
    );
    // Even with search_path moved, bravo's tables stay out of reach.
    sqlx::raw_sql("SET search_path = tenant_bravo")
        .execute(&mut alpha)
        .await
        .unwrap();
    assert_eq!(
        sqlstate(scalar(&mut alpha, "SELECT count(*) FROM users").await),
        "42P01"
    );
    alpha.close().await.unwrap();

    // Another tenant's database and the master database refuse alpha.
    assert!(
        connect_as(&env, "alpha", &env.db_name("siloed"))
            .await
            .is_err()
    );
    assert!(
        connect_as(&env, "alpha", &format!("{}_master", env.prefix))
            .await
            .is_err()
    );
    // The silo tenant cannot get into the pool.
    assert!(connect_as(&env, "siloed", &pool_db(&env)).await.is_err());
}

/// What `first` has in the pool, and how many tenant schemas and roles of
/// this environment exist.
async fn census(env: &TestEnv) -> (i64, i64, i64, i64) {
    let mut c = admin_in(env, &pool_db(env)).await;
    let tables = scalar(
        &mut c,
        "SELECT count(*) FROM pg_tables WHERE schemaname = 'tenant_first'",
    )
    .await
    .unwrap();
    let rows = scalar(&mut c, "SELECT count(*) FROM tenant_first.docbasket")
        .await
        .unwrap();
    let schemas = scalar(
        &mut c,
        "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'tenant\\_%'",
    )
    .await
    .unwrap();
    let roles = scalar(
        &mut c,
        &format!(
            "SELECT count(*) FROM pg_roles WHERE rolname LIKE '{}\\_%'",
            env.prefix
        ),
    )
    .await
    .unwrap();
    c.close().await.unwrap();
    (tables, rows, schemas, roles)
}

/// Rolls back the middle of three pooled tenants and hard-deprovisions the
/// third: the first keeps its schema, tables, rows and role.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undoing_pooled_tenants_leaves_their_neighbours_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let env = pooled_env(&dir).await;
    let worker = env.spawn_worker().await;
    let first = env.start_with("first", &pooled()).await.run;
    assert_eq!(env.wait_finished(first.id, WAIT).await.status, "completed");
    let mut conn = connect_as(&env, "first", &pool_db(&env)).await.unwrap();
    sqlx::raw_sql("INSERT INTO docbasket (name) VALUES ('a'), ('b'), ('c')")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    worker.shutdown().await;

    // first's tables, its rows, one tenant schema, first's role and the
    // pool's owner role.
    let before = census(&env).await;
    assert_eq!(before, (13, 3, 1, 2), "first alone in the pool");

    let failing = env
        .spawn_worker_with(&[("LANDLORD_FAULTS", "storage:permanent")])
        .await;
    let middle = env.start_with("middle", &pooled()).await.run;
    assert_eq!(env.wait_finished(middle.id, WAIT).await.status, "failed");
    failing.shutdown().await;
    assert!(schema_exists(&env, "tenant_middle").await);

    let worker = env.spawn_worker().await;
    rollback_run(&env.pool, middle.id, env.cfg.notify.outbox())
        .await
        .unwrap();
    assert_eq!(
        env.wait_finished(middle.id, WAIT).await.status,
        "compensated"
    );
    let third = env.start_with("third", &pooled()).await.run;
    assert_eq!(env.wait_finished(third.id, WAIT).await.status, "completed");
    assert!(schema_exists(&env, "tenant_third").await);
    let hard = start_deprovision(&env.pool, &env.key("third"), DeprovisionMode::Hard, true)
        .await
        .unwrap()
        .run;
    let hard = env.wait_finished(hard.id, WAIT).await;
    assert_eq!(hard.status, "completed", "{:?}", hard.error);
    worker.shutdown().await;

    for gone in ["middle", "third"] {
        assert!(
            !schema_exists(&env, &format!("tenant_{gone}")).await,
            "{gone}'s schema"
        );
        assert!(!env.role_exists(gone).await, "{gone}'s role");
    }
    let secrets = env
        .count(
            "SELECT count(*) FROM secrets WHERE ref LIKE 'postgres/' || $1 || '\\_%'",
            &env.prefix,
        )
        .await;
    assert_eq!(secrets, 1, "first's password only");
    assert_eq!(census(&env).await, before, "first is untouched");
    let mut conn = connect_as(&env, "first", &pool_db(&env))
        .await
        .expect("first still logs in");
    assert_eq!(
        scalar(&mut conn, "SELECT count(*) FROM docbasket")
            .await
            .unwrap(),
        3
    );
    conn.close().await.unwrap();
}
