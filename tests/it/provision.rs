//! The happy path and idempotent starts, checked on the real server.

use crate::harness::TestEnv;
use landlord_shared::secrets::SecretStore;
use secrecy::ExposeSecret;
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use std::str::FromStr;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provisions_postgres_and_storage_end_to_end() {
    let env = TestEnv::new(&[]).await;
    let worker = env.spawn_worker().await;
    let started = env.start("acme").await;
    let run = env.wait_finished(started.run.id, WAIT).await;
    assert_eq!(run.status, "completed", "{:?}", run.error);
    assert_eq!(env.tenant_status("acme").await.as_deref(), Some("active"));

    let steps = env.steps(run.id).await;
    let by_name = |n: &str| steps.iter().find(|s| s.name == n).unwrap();
    for skipped in ["identity", "mongo", "qdrant"] {
        let s = by_name(skipped);
        assert_eq!(s.status, "skipped");
        assert!(
            s.last_error.as_deref().unwrap().contains("not configured"),
            "{s:?}"
        );
    }
    for done in [
        "validate", "register", "postgres", "migrate", "storage", "record", "activate",
    ] {
        assert_eq!(by_name(done).status, "completed", "{done}");
        assert_eq!(by_name(done).attempts, 1, "{done}");
    }

    // The tenant role logs in with the password from the secret store and
    // sees the template's schema and seed data.
    let pg = by_name("postgres").output.clone().unwrap();
    let secret_ref = pg["secret_ref"].as_str().unwrap();
    let store = SecretStore::from_base64(env.cfg.secret_key.as_ref().unwrap()).unwrap();
    let password = store.get(&env.pool, secret_ref).await.unwrap();
    let tenant_opts = PgConnectOptions::from_str(&crate::harness::admin_url())
        .unwrap()
        .username(&env.db_name("acme"))
        .password(password.expose_secret())
        .database(&env.db_name("acme"));
    let mut conn = PgConnection::connect_with(&tenant_opts)
        .await
        .expect("tenant login");
    let schemas: i64 = sqlx::query_scalar("SELECT count(*) FROM schemas")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(schemas, 2, "seed rows cloned from the template");
    sqlx::query("INSERT INTO users (email) VALUES ('a@acme.test')")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();

    // No password in the master DB outside the encrypted secrets table.
    let leaked: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT output::text AS t FROM workflow_steps
           UNION ALL SELECT row_to_json(c)::text FROM tenant_connections c
           UNION ALL SELECT message FROM tenant_provision_logs) x WHERE t LIKE '%' || $1 || '%'",
    )
    .bind(password.expose_secret())
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(leaked, 0);

    // CONNECT is revoked from PUBLIC: a second tenant's role cannot connect.
    let other = env.start("beta").await;
    assert_eq!(
        env.wait_finished(other.run.id, WAIT).await.status,
        "completed"
    );
    let beta_pw = store
        .get(&env.pool, &format!("postgres/{}", env.db_name("beta")))
        .await
        .unwrap();
    let cross = PgConnectOptions::from_str(&crate::harness::admin_url())
        .unwrap()
        .username(&env.db_name("beta"))
        .password(beta_pw.expose_secret())
        .database(&env.db_name("acme"));
    let err = PgConnection::connect_with(&cross)
        .await
        .expect_err("cross-tenant connect refused");
    assert!(err.to_string().contains("permission denied"), "{err}");

    assert!(env.folder_exists("acme"));
    let conn_row: (String, Option<String>, Option<String>) = sqlx::query_as(
        "SELECT db_name, username, secret_ref FROM tenant_connections c JOIN tenants t ON t.id = c.tenant_id
         WHERE t.name = 'acme' AND c.service = 'postgres'",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(conn_row.0, env.db_name("acme"));
    assert_eq!(conn_row.2.as_deref(), Some(secret_ref));
    let resources = env
        .count(
            "SELECT count(*) FROM tenant_resources r JOIN tenants t ON t.id = r.tenant_id
             WHERE t.name = $1 AND deleted_at IS NULL",
            "acme",
        )
        .await;
    assert_eq!(resources, 3, "database, role, folder");
    let events = env
        .count(
            "SELECT count(*) FROM events WHERE run_id::text = $1 AND type = 'tenant.provisioned'",
            run.id,
        )
        .await;
    assert_eq!(events, 1);
    let logs = env
        .count(
            "SELECT count(*) FROM tenant_provision_logs WHERE run_id::text = $1 AND status = 'success'",
            run.id,
        )
        .await;
    assert_eq!(logs, 8);
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_starts_make_one_run() {
    let env = TestEnv::new(&[]).await;
    let starts = (0..50).map(|_| env.start("dupe"));
    let results = futures::future::join_all(starts).await;
    let ids: std::collections::HashSet<_> = results.iter().map(|s| s.run.id).collect();
    assert_eq!(ids.len(), 1, "every caller gets the same run");
    assert_eq!(
        results.iter().filter(|s| s.created).count(),
        1,
        "exactly one created it"
    );
    let runs = env
        .count(
            "SELECT count(*) FROM workflow_runs WHERE tenant_name = $1",
            "dupe",
        )
        .await;
    assert_eq!(runs, 1);
    let run_id = results[0].run.id;
    assert_eq!(
        env.jobs_of(run_id).await.len(),
        1,
        "one first job, not fifty"
    );

    let worker = env.spawn_worker().await;
    let run = env.wait_finished(run_id, WAIT).await;
    assert_eq!(run.status, "completed");
    // Starting again after completion still returns the same run.
    let again = env.start("dupe").await;
    assert!(!again.created);
    assert_eq!(again.run.id, run_id);
    // Each step ran once, all carried on by the worker that took the
    // run's one job: the queue saw one job, not one per step.
    let jobs = env.settled_jobs(run_id).await;
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    let steps = env.steps(run_id).await;
    assert!(steps.iter().all(|s| s.attempts <= 1), "{steps:?}");
    assert!(
        jobs.iter().all(|j| j.3 == 1),
        "no job was fetched twice: {jobs:?}"
    );
    assert!(env.database_exists("dupe").await);
    worker.shutdown().await;
}
