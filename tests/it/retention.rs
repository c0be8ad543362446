//! Retention: a worker prunes what is past its age — finished queue jobs,
//! delivered events, finished runs' provision logs, never-verified leads
//! with their verification secret, and (kept longest) audit rows — and
//! leaves everything newer.

use crate::harness::{TestEnv, create_token, wait_until};
use landlord_shared::model::ProvisionParams;
use landlord_shared::secrets::SecretStore;
use secrecy::SecretString;
use std::time::Duration;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(60);

async fn exec(env: &TestEnv, sql: &str, run: Uuid) {
    sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .bind(run)
        .execute(&env.pool)
        .await
        .unwrap();
}

async fn count(env: &TestEnv, sql: &str, run: Uuid) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .bind(run)
        .fetch_one(&env.pool)
        .await
        .unwrap()
}

const JOBS: &str = "SELECT count(*) FROM apalis.jobs
    WHERE convert_from(job, 'UTF8')::jsonb->>'run_id' = $1::text";
const EVENTS: &str = "SELECT count(*) FROM events WHERE run_id = $1";
const LOGS: &str = "SELECT count(*) FROM tenant_provision_logs WHERE run_id = $1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_past_their_age_are_pruned_and_newer_ones_stay() {
    // Deliveries need a channel to be marked delivered.
    let receiver = crate::receiver::Receiver::start(0).await;
    let env = TestEnv::new(&[("WEBHOOK_URL", &receiver.url("/hooks"))]).await;
    let worker = env
        .spawn_worker_with(&[("LANDLORD_RETENTION_INTERVAL_SECS", "0")])
        .await;
    let old = env
        .provision_ok("oldco", &ProvisionParams::default(), WAIT)
        .await;
    let new = env
        .provision_ok("newco", &ProvisionParams::default(), WAIT)
        .await;
    for run in [old, new] {
        wait_until("the run's events delivered", 30, async || {
            count(
                &env,
                "SELECT count(*) FROM events WHERE run_id = $1 AND delivered_at IS NULL",
                run,
            )
            .await
                == 0
        })
        .await;
        env.settled_jobs(run).await;
    }
    worker.shutdown().await;
    create_token(&env, "tenants:read").await;
    create_token(&env, "tenants:read").await;

    // The old tenant's rows are 40 days old; one audit row 400 days, one 40.
    let days_40 = "now() - interval '40 days'";
    exec(
        &env,
        &format!(
            "UPDATE events SET created_at = {days_40}, delivered_at = {days_40} WHERE run_id = $1"
        ),
        old,
    )
    .await;
    exec(
        &env,
        &format!("UPDATE tenant_provision_logs SET created_at = {days_40} WHERE run_id = $1"),
        old,
    )
    .await;
    exec(
        &env,
        &format!("UPDATE apalis.jobs SET done_at = {days_40} WHERE convert_from(job, 'UTF8')::jsonb->>'run_id' = $1::text"),
        old,
    )
    .await;
    sqlx::query(
        "UPDATE audit_log SET at = now() - CASE WHEN id = (SELECT id FROM audit_log ORDER BY at, id LIMIT 1)
            THEN interval '400 days' ELSE interval '40 days' END",
    )
    .execute(&env.pool)
    .await
    .unwrap();
    // A lead never verified, expired 40 days ago, with its secret; and a
    // verified one as old.
    let store = SecretStore::from_base64(env.cfg.secret_key.as_ref().unwrap()).unwrap();
    for (verified, email) in [(false, "never@example.com"), (true, "kept@example.com")] {
        let id = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO leads (id, email, first_name, last_name, company_name, address,
                client_addr, verification_hash, expires_at, verified_at, created_at)
             VALUES ($1, $2, 'A', 'B', 'C', '{}', '127.0.0.1', 'x', now() - interval '40 days',
                CASE WHEN $3 THEN now() - interval '41 days' END, now() - interval '41 days')",
        )
        .bind(id)
        .bind(email)
        .bind(verified)
        .execute(&env.pool)
        .await
        .unwrap();
        store
            .put(
                &env.pool,
                &format!("leads/{id}/verification"),
                &SecretString::from("t"),
            )
            .await
            .unwrap();
    }
    let (new_jobs, new_events, new_logs) = (
        count(&env, JOBS, new).await,
        count(&env, EVENTS, new).await,
        count(&env, LOGS, new).await,
    );
    assert!(new_jobs > 0 && new_events > 0 && new_logs > 0);
    assert!(count(&env, JOBS, old).await > 0 && count(&env, EVENTS, old).await > 0);

    let worker = env
        .spawn_worker_with(&[("LANDLORD_RETENTION_INTERVAL_SECS", "1")])
        .await;
    wait_until("the old rows pruned", 30, async || {
        count(&env, JOBS, old).await == 0
            && count(&env, EVENTS, old).await == 0
            && count(&env, LOGS, old).await == 0
    })
    .await;
    worker.shutdown().await;

    assert_eq!(count(&env, JOBS, new).await, new_jobs, "newer jobs stay");
    assert_eq!(
        count(&env, EVENTS, new).await,
        new_events,
        "newer events stay"
    );
    assert_eq!(count(&env, LOGS, new).await, new_logs, "newer logs stay");
    let audit = env.count_all("SELECT count(*) FROM audit_log").await;
    assert_eq!(
        audit, 1,
        "the 400-day-old audit row went, the 40-day-old one stayed"
    );
    let leads: Vec<String> = sqlx::query_scalar("SELECT email FROM leads")
        .fetch_all(&env.pool)
        .await
        .unwrap();
    assert_eq!(leads, ["kept@example.com"]);
    let secrets = env
        .count_all("SELECT count(*) FROM secrets WHERE ref LIKE 'leads/%'")
        .await;
    assert_eq!(
        secrets, 1,
        "the pruned lead's verification secret went with it"
    );
    // The tenants themselves and their runs are not retention's business.
    assert_eq!(env.count_all("SELECT count(*) FROM workflow_runs").await, 2);
}
