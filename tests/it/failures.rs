//! Retries, permanent failures with and without rollback, timeouts and
//! panics, injected with LANDLORD_FAULTS and checked on the real server.

use crate::harness::TestEnv;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_retry_as_later_jobs_then_succeed() {
    let env = TestEnv::new(&[("LANDLORD_FAULTS", "postgres:transient:2")]).await;
    let worker = env.spawn_worker().await;
    let run = env.start("flaky").await.run;
    let run = env.wait_finished(run.id, WAIT).await;
    assert_eq!(run.status, "completed", "{:?}", run.error);
    let pg = env.step(run.id, "postgres").await;
    assert_eq!(pg.attempts, 3);
    assert_eq!(
        env.step(run.id, "register").await.attempts,
        1,
        "earlier steps are not re-run"
    );
    let retries = env
        .count(
            "SELECT count(*) FROM tenant_provision_logs WHERE run_id::text = $1 AND status = 'retrying'",
            run.id,
        )
        .await;
    assert_eq!(retries, 2);
    // The first attempt ran in-process, carried on from the step before;
    // each retry was its own job (apalis never re-fetched one), scheduled
    // for later rather than run at once.
    let jobs: Vec<_> = env
        .settled_jobs(run.id)
        .await
        .into_iter()
        .filter(|j| j.0 == 3)
        .collect();
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    assert!(jobs.iter().all(|j| j.3 == 1 && j.2 == "Done"), "{jobs:?}");
    // Each retry's run_at lies at least the retry delay after the previous
    // attempt started: it waited in the queue, not in a worker slot.
    let times: Vec<(chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>)> =
        sqlx::query_as(
            "SELECT run_at, lock_at FROM apalis.jobs
         WHERE convert_from(job, 'UTF8')::jsonb->>'run_id' = $1
           AND (convert_from(job, 'UTF8')::jsonb->>'position')::int = 3 ORDER BY run_at",
        )
        .bind(run.id.to_string())
        .fetch_all(&env.pool)
        .await
        .unwrap();
    let first_attempt = pg.started_at.expect("the step started");
    let starts: Vec<_> = std::iter::once(first_attempt)
        .chain(times.iter().map(|t| t.1))
        .collect();
    for (start, (next_run, _)) in starts.iter().zip(&times) {
        assert!(
            *next_run - *start >= chrono::Duration::milliseconds(200),
            "{first_attempt:?} {times:?}"
        );
    }
    assert!(env.database_exists("flaky").await);
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhausted_retries_fail_the_run_and_suspend_the_tenant() {
    let env = TestEnv::new(&[("LANDLORD_FAULTS", "storage:transient:9")]).await;
    let worker = env.spawn_worker().await;
    let run = env.start("doomed").await.run;
    let run = env.wait_finished(run.id, WAIT).await;
    assert_eq!(run.status, "failed");
    assert!(
        run.error
            .as_deref()
            .unwrap()
            .contains("step storage failed"),
        "{:?}",
        run.error
    );
    assert_eq!(
        env.step(run.id, "storage").await.attempts,
        3,
        "PROVISION_RETRY_ATTEMPTS = 3"
    );
    assert_eq!(
        env.tenant_status("doomed").await.as_deref(),
        Some("suspended")
    );
    let (kind, payload): (String, serde_json::Value) =
        sqlx::query_as("SELECT type, payload FROM events WHERE run_id = $1")
            .bind(run.id)
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!(kind, "tenant.provisioning_failed");
    assert_eq!(payload["failedStep"], "storage");
    assert_eq!(payload["tenantName"], "doomed");
    let errors = env
        .count(
            "SELECT count(*) FROM tenant_provision_logs WHERE run_id::text = $1 AND status = 'error'",
            run.id,
        )
        .await;
    assert_eq!(errors, 1);
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_failure_without_rollback_keeps_and_lists_resources() {
    let env = TestEnv::new(&[("LANDLORD_FAULTS", "record:permanent")]).await;
    let worker = env.spawn_worker().await;
    let run = env.start("keeper").await.run;
    let run = env.wait_finished(run.id, WAIT).await;
    assert_eq!(run.status, "failed");
    assert_eq!(
        env.step(run.id, "record").await.attempts,
        1,
        "permanent errors are not retried"
    );
    assert_eq!(
        env.tenant_status("keeper").await.as_deref(),
        Some("suspended")
    );
    assert!(env.database_exists("keeper").await);
    assert!(env.role_exists("keeper").await);
    assert!(env.folder_exists("keeper"));
    let listed = env
        .count(
            "SELECT count(*) FROM tenant_resources r JOIN tenants t ON t.id = r.tenant_id
             WHERE t.name = $1 AND r.deleted_at IS NULL",
            "keeper",
        )
        .await;
    assert_eq!(listed, 3);
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_failure_with_rollback_removes_everything() {
    // The failing step has done its work before failing: its partial
    // resources must go too.
    let env = TestEnv::new(&[
        ("ROLLBACK_ON_FAILURE", "true"),
        ("LANDLORD_FAULTS", "storage:permanent-after"),
    ])
    .await;
    let worker = env.spawn_worker().await;
    let run = env.start("undone").await.run;
    let run = env.wait_finished(run.id, WAIT).await;
    assert_eq!(run.status, "compensated", "{:?}", run.error);
    assert!(!env.database_exists("undone").await, "database dropped");
    assert!(!env.role_exists("undone").await, "role dropped");
    assert!(!env.folder_exists("undone"), "folder removed");
    let secrets = env
        .count(
            "SELECT count(*) FROM secrets WHERE ref LIKE '%' || $1",
            "undone",
        )
        .await;
    assert_eq!(secrets, 0, "secret deleted");
    assert_eq!(
        env.tenant_status("undone").await.as_deref(),
        Some("deleted")
    );
    let steps = env.steps(run.id).await;
    let undone: Vec<_> = steps
        .iter()
        .filter(|s| s.status == "compensated")
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(
        undone,
        [
            "validate",
            "register",
            "postgres",
            "migrate",
            "check_schema",
            "storage"
        ]
    );
    // Reverse order: each undo happened after the one of the later step.
    let mut times: Vec<_> = steps
        .iter()
        .filter_map(|s| s.compensated_at.map(|t| (s.position, t)))
        .collect();
    times.sort_by_key(|(p, _)| -p);
    assert!(times.windows(2).all(|w| w[0].1 <= w[1].1), "{times:?}");
    let live = env
        .count(
            "SELECT count(*) FROM tenant_resources r JOIN tenants t ON t.id = r.tenant_id
             WHERE t.name = $1 AND r.deleted_at IS NULL",
            "undone",
        )
        .await;
    assert_eq!(live, 0);
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_and_panics_are_failed_attempts_not_stuck_jobs() {
    let env = TestEnv::new(&[
        ("LANDLORD_FAULTS", "storage:hang,record:panic"),
        ("LANDLORD_STEP_TIMEOUT_SECS", "1"),
        ("PROVISION_RETRY_ATTEMPTS", "2"),
    ])
    .await;
    let worker = env.spawn_worker().await;
    let hung = env.start("hangs").await.run;
    let hung = env.wait_finished(hung.id, WAIT).await;
    assert_eq!(hung.status, "failed");
    let storage = env.step(hung.id, "storage").await;
    assert_eq!(storage.attempts, 2);
    assert!(storage.last_error.unwrap().contains("timed out"));

    let env2 = TestEnv::new(&[
        ("LANDLORD_FAULTS", "record:panic"),
        ("PROVISION_RETRY_ATTEMPTS", "2"),
    ])
    .await;
    let worker2 = env2.spawn_worker().await;
    let panicked = env2.start("panics").await.run;
    let panicked = env2.wait_finished(panicked.id, WAIT).await;
    assert_eq!(panicked.status, "failed");
    let record = env2.step(panicked.id, "record").await;
    assert_eq!(record.attempts, 2);
    assert!(record.last_error.unwrap().contains("panicked"));
    for (e, id) in [(&env, hung.id), (&env2, panicked.id)] {
        e.settled_jobs(id).await;
    }
    worker.shutdown().await;
    worker2.shutdown().await;
}
