//! Operator actions against the real stack: soft and hard deprovisioning,
//! cancel at a step boundary (with and without compensation) and rollback
//! of a failed run. What is left is checked on the servers themselves.

use crate::harness::TestEnv;
use crate::probe::Probe;
use landlord_shared::actions::{
    ActionError, DeprovisionMode, cancel_run, rollback_run, start_deprovision,
};
use landlord_shared::model::Run;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(180);

async fn role_can_login(env: &TestEnv, tenant: &str) -> bool {
    sqlx::query_scalar("SELECT rolcanlogin FROM pg_roles WHERE rolname = $1")
        .bind(env.db_name(tenant))
        .fetch_one(&env.admin)
        .await
        .unwrap()
}

async fn deprovision(env: &TestEnv, tenant: &str, mode: DeprovisionMode, force: bool) -> Run {
    let started = start_deprovision(&env.pool, &env.key(tenant), mode, force)
        .await
        .unwrap();
    assert!(started.created);
    env.wait_finished(started.run.id, WAIT).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soft_then_hard_deprovisioning_of_an_active_tenant() {
    let env = TestEnv::full_stack(&[]).await;
    let probe = Probe::new(&env).await;
    let worker = env.spawn_worker().await;
    let run = env.start("gone").await.run;
    assert_eq!(env.wait_finished(run.id, WAIT).await.status, "completed");
    let key = env.key("gone");

    // An active tenant is only deprovisioned on purpose.
    let refused = start_deprovision(&env.pool, &key, DeprovisionMode::Soft, false).await;
    assert!(
        matches!(&refused, Err(ActionError::Conflict(m)) if m.contains("force")),
        "{refused:?}"
    );
    assert_eq!(env.tenant_status("gone").await.as_deref(), Some("active"));

    let soft = deprovision(&env, "gone", DeprovisionMode::Soft, true).await;
    assert_eq!(soft.status, "completed", "{:?}", soft.error);
    assert_eq!(env.tenant_status("gone").await.as_deref(), Some("deleted"));
    let realm = probe
        .kc
        .get_json(&format!("/{}", probe.names("gone").realm()))
        .await
        .unwrap()
        .expect("soft keeps the realm");
    assert_eq!(realm["enabled"], false);
    assert!(env.database_exists("gone").await, "soft keeps the data");
    assert!(!role_can_login(&env, "gone").await);
    for (kind, exists) in probe.everything("gone").await {
        assert!(exists, "soft deprovisioning removed the {kind}");
    }
    // Asking again returns the same run.
    let again = start_deprovision(&env.pool, &key, DeprovisionMode::Soft, true)
        .await
        .unwrap();
    assert!(!again.created);
    assert_eq!(again.run.id, soft.id);

    // Soft-deleted data can still be dropped for good.
    let hard = deprovision(&env, "gone", DeprovisionMode::Hard, false).await;
    assert_eq!(hard.status, "completed", "{:?}", hard.error);
    assert_eq!(env.tenant_status("gone").await.as_deref(), Some("deleted"));
    for (kind, exists) in probe.everything("gone").await {
        assert!(!exists, "hard deprovisioning left the {kind}");
    }
    assert_eq!(env.count_all("SELECT count(*) FROM secrets").await, 0);
    assert_eq!(
        env.count_all("SELECT count(*) FROM tenant_connections")
            .await,
        0
    );
    assert_eq!(
        env.count_all("SELECT count(*) FROM tenant_resources WHERE deleted_at IS NULL")
            .await,
        0
    );
    assert_eq!(
        env.count_all("SELECT count(*) FROM events WHERE type = 'tenant.deprovisioned'")
            .await,
        2
    );
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hard_deprovisioning_of_a_failed_tenant_drops_what_it_holds() {
    let env = TestEnv::full_stack(&[("LANDLORD_FAULTS", "storage:permanent")]).await;
    let probe = Probe::new(&env).await;
    let worker = env.spawn_worker().await;
    let run = env.start("half").await.run;
    let failed = env.wait_finished(run.id, WAIT).await;
    assert_eq!(
        (failed.status.as_str(), failed.error.as_deref()),
        (
            "failed",
            Some("step storage failed: injected permanent fault")
        )
    );
    assert_eq!(
        env.tenant_status("half").await.as_deref(),
        Some("suspended")
    );
    assert!(env.database_exists("half").await);

    let hard = deprovision(&env, "half", DeprovisionMode::Hard, false).await;
    assert_eq!(hard.status, "completed", "{:?}", hard.error);
    for (kind, exists) in probe.everything("half").await {
        assert!(!exists, "hard deprovisioning left the {kind}");
    }
    assert_eq!(env.tenant_status("half").await.as_deref(), Some("deleted"));
    worker.shutdown().await;
}

/// Starts a run whose `postgres` step sleeps after its work, cancels it
/// while that attempt is in flight, and waits for the run to settle.
async fn cancel_during_postgres(env: &TestEnv, tenant: &str, compensate: bool) -> Run {
    let run = env.start(tenant).await.run;
    let deadline = tokio::time::Instant::now() + WAIT;
    while env.step(run.id, "postgres").await.status != "running" {
        assert!(
            tokio::time::Instant::now() < deadline,
            "postgres never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let asked = cancel_run(&env.pool, run.id, compensate).await.unwrap();
    assert_eq!(asked.cancel_requested, Some(compensate));
    env.wait_finished(run.id, WAIT).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_at_the_next_step_boundary() {
    let env = TestEnv::new(&[("LANDLORD_FAULTS", "postgres:sleep-after:1500")]).await;
    let worker = env.spawn_worker().await;
    let run = cancel_during_postgres(&env, "halt", false).await;
    assert_eq!(run.status, "cancelled");
    // The step in flight finished; the next one never started.
    assert_eq!(env.step(run.id, "postgres").await.status, "completed");
    let migrate = env.step(run.id, "migrate").await;
    assert_eq!((migrate.status.as_str(), migrate.attempts), ("pending", 0));
    assert_eq!(
        env.tenant_status("halt").await.as_deref(),
        Some("suspended")
    );
    assert!(
        env.database_exists("halt").await,
        "cancel alone keeps resources"
    );
    let again = cancel_run(&env.pool, run.id, false).await;
    assert!(matches!(again, Err(ActionError::Conflict(_))), "{again:?}");

    // A cancelled run resumes where it stopped.
    let resumed = landlord_shared::actions::retry_run(&env.pool, run.id)
        .await
        .unwrap();
    let done = env.wait_finished(resumed.id, WAIT).await;
    assert_eq!(done.status, "completed", "{:?}", done.error);
    assert_eq!(env.step(run.id, "postgres").await.attempts, 1);
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_with_compensation_undoes_what_the_run_did() {
    let env = TestEnv::new(&[("LANDLORD_FAULTS", "postgres:sleep-after:1500")]).await;
    let worker = env.spawn_worker().await;
    let run = cancel_during_postgres(&env, "undone", true).await;
    assert_eq!(run.status, "compensated", "{:?}", run.error);
    assert!(!env.database_exists("undone").await);
    assert!(!env.role_exists("undone").await);
    assert_eq!(
        env.tenant_status("undone").await.as_deref(),
        Some("deleted")
    );
    assert_eq!(env.count_all("SELECT count(*) FROM secrets").await, 0);
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_of_a_failed_run_removes_its_resources() {
    let env = TestEnv::new(&[("LANDLORD_FAULTS", "storage:permanent")]).await;
    let worker = env.spawn_worker().await;
    let run = env.start("back").await.run;
    let failed = env.wait_finished(run.id, WAIT).await;
    assert_eq!(failed.status, "failed");
    assert!(env.database_exists("back").await);

    let (a, b) = tokio::join!(
        rollback_run(&env.pool, run.id, env.cfg.notify.outbox()),
        rollback_run(&env.pool, run.id, env.cfg.notify.outbox())
    );
    assert_eq!(a.unwrap().status, "compensating");
    assert_eq!(b.unwrap().status, "compensating");
    let done = env.wait_finished(run.id, WAIT).await;
    assert_eq!(done.status, "compensated", "{:?}", done.error);
    assert!(!env.database_exists("back").await);
    assert!(!env.role_exists("back").await);
    assert!(!env.folder_exists("back"));
    assert_eq!(env.tenant_status("back").await.as_deref(), Some("deleted"));
    // Each step was undone once, however many rollback requests came.
    let undo_attempts: i64 = env
        .count(
            "SELECT coalesce(max(undo_attempts), 0)::bigint FROM workflow_steps WHERE run_id::text = $1",
            run.id,
        )
        .await;
    assert_eq!(undo_attempts, 1);
    // A compensated run stays compensated.
    assert_eq!(
        rollback_run(&env.pool, run.id, env.cfg.notify.outbox())
            .await
            .unwrap()
            .status,
        "compensated"
    );
    worker.shutdown().await;
}
