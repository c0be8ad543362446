//! A real worker process is SIGKILLed in the middle of a step; a second
//! process recovers the run without re-running completed steps and without
//! duplicating anything on the server.

use crate::harness::TestEnv;
use landlord_shared::model::ProvisionParams;
use std::time::{Duration, Instant};

/// Kills a worker (started with `vars`) after it did the postgres step's
/// work and before its checkpoint; a second worker with `vars` takes the
/// step over. The run's id, the time from SIGKILL until the step was
/// claimed again, and the second worker.
async fn kill_mid_postgres(
    env: &TestEnv,
    logs: &std::path::Path,
    vars: &[(&str, &str)],
) -> (uuid::Uuid, Duration, tokio::process::Child) {
    kill_mid_postgres_of(env, logs, vars, "crashy", None).await
}

/// `kill_mid_postgres` for `tenant` on `plan`; a plan in schema mode is
/// killed once its schema and role exist.
async fn kill_mid_postgres_of(
    env: &TestEnv,
    logs: &std::path::Path,
    vars: &[(&str, &str)],
    tenant: &str,
    plan: Option<&str>,
) -> (uuid::Uuid, Duration, tokio::process::Child) {
    let params = ProvisionParams {
        plan: plan.map(str::to_owned),
        ..Default::default()
    };
    let run = env.start_with(tenant, &params).await.run;
    // Process A does the postgres step's work, then lingers before it can
    // checkpoint: that is where it dies.
    let faults = [("LANDLORD_FAULTS", "postgres:sleep-after:60000")];
    let mut a = env.worker_process(&[vars, &faults].concat(), &logs.join("a.log"));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let pg = env.step(run.id, "postgres").await;
        let made = if plan == Some("standard") {
            env.schemas_in_pool(tenant).await == 1
        } else {
            env.database_exists(tenant).await
        };
        if pg.status == "running" && made && env.role_exists(tenant).await {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "worker A never reached the postgres step: {pg:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    a.start_kill().expect("SIGKILL");
    let status = a.wait().await.unwrap();
    let killed_at = Instant::now();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );

    let b = env.worker_process(vars, &logs.join("b.log"));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if env.step(run.id, "postgres").await.attempts >= 2 {
            return (run.id, killed_at.elapsed(), b);
        }
        assert!(Instant::now() < deadline, "no worker resumed the step");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_step_is_recovered_by_another_process() {
    let env = TestEnv::new(&[]).await;
    let logs = tempfile::tempdir().unwrap();
    let (run_id, resumed_after, mut b) = kill_mid_postgres(&env, logs.path(), &[]).await;
    let run = env.wait_finished(run_id, Duration::from_secs(60)).await;
    let _ = b.start_kill();
    eprintln!(
        "orphaned step resumed {resumed_after:?} after SIGKILL (heartbeat fallback {:?})",
        env.cfg.orphan_timeout()
    );
    assert_eq!(run.status, "completed", "{:?}", run.error);
    // Worker logs say "Step X/N" (seed 002's format).
    let b_log = std::fs::read_to_string(logs.path().join("b.log")).unwrap();
    assert!(
        b_log.contains("Step 4/11: Creating Postgres role and database from template"),
        "{b_log}"
    );
    assert!(
        // Logged when the attempt starts, so before the run can complete.
        b_log.contains("Step 11/11: Activating tenant"),
        "{b_log}"
    );

    assert_eq!(
        env.step(run.id, "validate").await.attempts,
        1,
        "completed steps are not re-run"
    );
    assert_eq!(env.step(run.id, "register").await.attempts, 1);
    let postgres = env.step(run.id, "postgres").await;
    assert_eq!(postgres.attempts, 2, "the interrupted step re-ran once");
    assert_eq!(
        postgres.lost_attempts, 1,
        "the killed attempt is counted lost, not against the retry budget"
    );
    for later in ["migrate", "storage", "record", "activate"] {
        assert_eq!(env.step(run.id, later).await.attempts, 1, "{later}");
    }
    // Nothing duplicated, on the server or in the master DB.
    assert_eq!(env.databases_and_roles("crashy").await, (1, 1));
    assert_eq!(
        env.count(
            "SELECT count(*) FROM secrets WHERE ref LIKE '%' || $1",
            "crashy"
        )
        .await,
        1
    );
    assert_eq!(
        env.count("SELECT count(*) FROM tenants WHERE name = $1", "crashy")
            .await,
        1
    );
    assert_eq!(
        env.count_all("SELECT count(*) FROM tenant_resources").await,
        3
    );
    assert_eq!(
        env.count(
            "SELECT count(*) FROM events WHERE type = $1",
            "tenant.provisioned"
        )
        .await,
        1
    );
    let folders: Vec<_> = std::fs::read_dir(env.storage.path()).unwrap().collect();
    assert_eq!(folders.len(), 1);
    // The two processes registered under distinct names.
    let workers: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT id) FROM apalis.workers WHERE worker_type = 'landlord::steps'",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(workers, 2);
    // The recovered run ends where an uninterrupted one does.
    assert_eq!(env.tenant_status("crashy").await.as_deref(), Some("active"));
}

/// A SIGKILLed worker's database session ends with it, and the other
/// worker's sweep re-queues its job: recovery does not wait for the
/// heartbeat timeout, here set to 1000 s. With `LANDLORD_SESSION_SWEEP_MS=0`
/// the step would stay lost for those 1000 s and the helper would time out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_workers_session_ends_and_its_job_is_requeued_without_heartbeat_timeout() {
    let env = TestEnv::new(&[]).await;
    let logs = tempfile::tempdir().unwrap();
    let slow_heartbeat = [
        ("LANDLORD_MISSED_HEARTBEATS", "1000"),
        ("LANDLORD_SESSION_SWEEP_MS", "200"),
    ];
    let (run_id, resumed_after, mut b) =
        kill_mid_postgres(&env, logs.path(), &slow_heartbeat).await;
    let run = env.wait_finished(run_id, Duration::from_secs(60)).await;
    assert_eq!(
        env.count_all("SELECT count(*) FROM worker_sessions").await,
        1,
        "the killed worker's sessions are forgotten; the live one's remains (its step queue's: \
         with no notification channel it takes no notify jobs)"
    );
    let _ = b.start_kill();
    eprintln!("orphaned step resumed {resumed_after:?} after SIGKILL, by session liveness");
    assert_eq!(run.status, "completed", "{:?}", run.error);
    let postgres = env.step(run_id, "postgres").await;
    assert_eq!((postgres.attempts, postgres.lost_attempts), (2, 1));
    assert_eq!(env.databases_and_roles("crashy").await, (1, 1));
}

/// The same kill in a pooled tenant's postgres step (the built-in
/// `standard` plan, schema mode): the second process adopts the schema and
/// role the first one made, by their marks; one of each remains, with the
/// tenant's tables, and the tenant can log in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_pooled_postgres_step_is_recovered_without_duplicates() {
    let env = TestEnv::new(&[]).await;
    let logs = tempfile::tempdir().unwrap();
    let (run_id, _, mut b) =
        kill_mid_postgres_of(&env, logs.path(), &[], "crashpool", Some("standard")).await;
    let run = env.wait_finished(run_id, Duration::from_secs(60)).await;
    let _ = b.start_kill();
    assert_eq!(run.status, "completed", "{:?}", run.error);
    let postgres = env.step(run_id, "postgres").await;
    assert_eq!((postgres.attempts, postgres.lost_attempts), (2, 1));
    assert_eq!(env.schemas_in_pool("crashpool").await, 1);
    assert_eq!(
        env.databases_and_roles("crashpool").await,
        (0, 1),
        "no database of its own, one role"
    );
    assert_eq!(
        env.count(
            "SELECT count(*) FROM secrets WHERE ref LIKE '%' || $1",
            "crashpool"
        )
        .await,
        1
    );
    assert_eq!(env.step(run_id, "check_schema").await.status, "completed");
    assert_eq!(
        env.tenant_status("crashpool").await.as_deref(),
        Some("active")
    );
}

/// Deprovisioning is resumable like provisioning: a worker SIGKILLed after
/// dropping the tenant's database, before checkpointing, is replaced by
/// another that finishes the run; the drop is simply done again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_hard_deprovisioning_is_recovered() {
    use landlord_shared::actions::{DeprovisionMode, start_deprovision};
    let env = TestEnv::new(&[]).await;
    let logs = tempfile::tempdir().unwrap();
    let worker = env.spawn_worker().await;
    let run = env.start("doomed").await.run;
    let run = env.wait_finished(run.id, Duration::from_secs(60)).await;
    assert_eq!(run.status, "completed");
    worker.shutdown().await;

    let mut a = env.worker_process(
        &[("LANDLORD_FAULTS", "drop_postgres:sleep-after:60000")],
        &logs.path().join("a.log"),
    );
    let hard = start_deprovision(&env.pool, &env.key("doomed"), DeprovisionMode::Hard, true)
        .await
        .unwrap()
        .run;
    let deadline = Instant::now() + Duration::from_secs(60);
    while env.step(hard.id, "drop_postgres").await.status != "running"
        || env.database_exists("doomed").await
    {
        assert!(
            Instant::now() < deadline,
            "worker A never dropped the database: {:#?}\n{}",
            env.steps(hard.id).await,
            std::fs::read_to_string(logs.path().join("a.log")).unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    a.start_kill().expect("SIGKILL");
    a.wait().await.unwrap();

    let mut b = env.worker_process(&[], &logs.path().join("b.log"));
    let done = env.wait_finished(hard.id, Duration::from_secs(60)).await;
    let _ = b.start_kill();
    assert_eq!(done.status, "completed", "{:?}", done.error);
    assert_eq!(env.step(hard.id, "drop_postgres").await.attempts, 2);
    assert_eq!(env.step(hard.id, "mark_deleting").await.attempts, 1);
    assert!(!env.database_exists("doomed").await);
    assert!(!env.role_exists("doomed").await);
    assert!(!env.folder_exists("doomed"));
    assert_eq!(env.count_all("SELECT count(*) FROM secrets").await, 0);
    assert_eq!(
        env.tenant_status("doomed").await.as_deref(),
        Some("deleted")
    );
}
