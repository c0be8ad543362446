//! Fencing: a worker that was presumed dead and wakes up late commits
//! nothing. Process A is SIGSTOPped in the middle of a step, past the
//! orphan timeout; process B takes the step over; A is SIGCONTed while B's
//! attempt still runs, and A's outcome is refused.

use crate::harness::{TestEnv, wait_until};
use std::time::Duration;
use tokio::process::Child;

fn signal(child: &Child, sig: &str) {
    let pid = child.id().expect("worker is running").to_string();
    let status = std::process::Command::new("kill")
        .args([sig, &pid])
        .status()
        .expect("kill");
    assert!(status.success(), "kill {sig} {pid}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_worker_that_wakes_late_commits_nothing() {
    let env = TestEnv::new(&[]).await;
    let logs = tempfile::tempdir().unwrap();
    let (a_log, b_log) = (logs.path().join("a.log"), logs.path().join("b.log"));
    let run = env.start("fenced").await.run;
    // A does the postgres step's work, then lingers before its checkpoint.
    let mut a = env.worker_process(&[("LANDLORD_FAULTS", "postgres:sleep-after:6000")], &a_log);
    wait_until("A inside the postgres step", 60, async || {
        env.step(run.id, "postgres").await.status == "running"
            && env.database_exists("fenced").await
            && env.role_exists("fenced").await
    })
    .await;
    signal(&a, "-STOP");

    // B re-runs the step (idempotently) and lingers longer than A has left.
    let mut b = env.worker_process(&[("LANDLORD_FAULTS", "postgres:sleep-after:8000")], &b_log);
    wait_until("B claimed the step A holds", 60, async || {
        env.step(run.id, "postgres").await.attempts == 2
    })
    .await;
    signal(&a, "-CONT");
    wait_until("A's late outcome refused", 30, async || {
        std::fs::read_to_string(&a_log)
            .unwrap_or_default()
            .contains("attempt outcome refused")
    })
    .await;
    let run = env.wait_finished(run.id, Duration::from_secs(60)).await;
    assert_eq!(run.status, "completed", "{:?}", run.error);
    // A stays up (a refusal is not a crash) and does nothing more.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(a.try_wait().unwrap().is_none(), "A is still running");
    let _ = a.start_kill();
    let _ = b.start_kill();

    let a_text = std::fs::read_to_string(&a_log).unwrap();
    let b_text = std::fs::read_to_string(&b_log).unwrap();
    let complete = "Step 4/11 complete";
    assert!(!a_text.contains(complete), "A checkpointed: {a_text}");
    assert!(b_text.contains(complete), "B checkpointed: {b_text}");
    let postgres = env.step(run.id, "postgres").await;
    assert_eq!(postgres.status, "completed");
    assert_eq!(
        (postgres.attempts, postgres.lost_attempts),
        (2, 1),
        "A's attempt counts as lost, B's as the one that reported"
    );
    for later in ["migrate", "storage", "record", "activate"] {
        assert_eq!(env.step(run.id, later).await.attempts, 1, "{later}");
    }
    // One checkpoint, no job left behind, nothing duplicated.
    let checkpoints = postgres_checkpoints(&env, run.id).await;
    assert_eq!(checkpoints, 1);
    let jobs = env
        .count(
            "SELECT count(*) FROM apalis.jobs
             WHERE status NOT IN ('Done', 'Killed', 'Failed')
               AND convert_from(job, 'UTF8')::jsonb->>'run_id' = $1",
            run.id,
        )
        .await;
    assert_eq!(jobs, 0, "no second next job");
    assert_eq!(env.databases_and_roles("fenced").await, (1, 1));
}

/// A worker paused after it took a run's job but before it claimed the
/// step loses the job to another worker, and when it wakes claims nothing:
/// the run keeps one driver, the job's holder, and no live attempt is
/// miscounted as lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_worker_that_lost_its_job_claims_nothing() {
    let env = TestEnv::new(&[]).await;
    let logs = tempfile::tempdir().unwrap();
    let (a_log, b_log) = (logs.path().join("a.log"), logs.path().join("b.log"));
    let run = env.start("unheld").await.run;
    // A reaches the postgres step, then waits before claiming it.
    let mut a = env.worker_process(&[("LANDLORD_FAULTS", "postgres:delay-claim:5000")], &a_log);
    wait_until("A at the postgres step", 60, async || {
        env.step(run.id, "register").await.status == "completed"
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    signal(&a, "-STOP");
    assert_eq!(env.step(run.id, "postgres").await.attempts, 0);

    // B takes the job over once A is presumed dead, and holds the step.
    let mut b = env.worker_process(&[("LANDLORD_FAULTS", "postgres:sleep-after:8000")], &b_log);
    wait_until("B claimed the step", 60, async || {
        env.step(run.id, "postgres").await.attempts == 1
    })
    .await;
    // A wakes past its delay while B still runs the step.
    tokio::time::sleep(Duration::from_secs(2)).await;
    signal(&a, "-CONT");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let postgres = env.step(run.id, "postgres").await;
    assert_eq!(
        (postgres.attempts, postgres.lost_attempts),
        (1, 0),
        "A claimed B's live step: {postgres:?}"
    );
    let run = env.wait_finished(run.id, Duration::from_secs(60)).await;
    assert_eq!(run.status, "completed", "{:?}", run.error);
    let _ = a.start_kill();
    let _ = b.start_kill();
    let b_text = std::fs::read_to_string(&b_log).unwrap();
    assert!(
        b_text.contains("Step 11/11 complete"),
        "B drove the run: {b_text}"
    );
    let postgres = env.step(run.id, "postgres").await;
    assert_eq!((postgres.attempts, postgres.lost_attempts), (1, 0));
}

/// apalis presumes a slow worker dead and hands its job out again; the
/// same worker takes it back, so one process holds two deliveries of the
/// run's job. The first one's outcome is refused; its ack must not mark
/// the job done while the second still drives the run, or a crash of the
/// worker right then would leave the run with no job to resume it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_delivered_twice_to_one_worker_survives_its_crash() {
    let env = TestEnv::new(&[]).await;
    let logs = tempfile::tempdir().unwrap();
    let (a_log, b_log) = (logs.path().join("a.log"), logs.path().join("b.log"));
    let run = env.start("twice").await.run;
    let mut a = env.worker_process(&[("LANDLORD_FAULTS", "postgres:sleep-after:8000")], &a_log);
    wait_until("A inside the postgres step", 60, async || {
        env.step(run.id, "postgres").await.status == "running"
    })
    .await;
    // Three seconds into A's first attempt: it reports five seconds before
    // the second one does.
    tokio::time::sleep(Duration::from_secs(3)).await;
    // What apalis does to the jobs of a worker whose heartbeats it missed
    // (queries/backend/reenqueue_orphaned.sql), with A still alive.
    let requeued = sqlx::query(
        "UPDATE apalis.jobs SET status = 'Pending', done_at = NULL, lock_by = NULL,
                lock_at = NULL, attempts = attempts + 1
         WHERE status IN ('Queued', 'Running') AND convert_from(job, 'UTF8')::jsonb->>'run_id' = $1",
    )
    .bind(run.id.to_string())
    .execute(&env.pool)
    .await
    .unwrap()
    .rows_affected();
    assert_eq!(requeued, 1);
    wait_until("A's second delivery claimed the step", 30, async || {
        env.step(run.id, "postgres").await.attempts == 2
    })
    .await;
    wait_until("A's first delivery refused", 30, async || {
        std::fs::read_to_string(&a_log)
            .unwrap_or_default()
            .contains("attempt outcome refused")
    })
    .await;
    // The second delivery still sleeps in the step: the job is not done.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(env.step(run.id, "postgres").await.status, "running");
    let jobs = env.jobs_of(run.id).await;
    assert!(
        jobs.iter().any(|j| j.2 == "Running" || j.2 == "Queued"),
        "the first delivery's ack closed the job the second still drives: {jobs:?}"
    );
    signal(&a, "-KILL");
    let _ = a.wait().await;

    let mut b = env.worker_process(&[], &b_log);
    let run = env.wait_finished(run.id, Duration::from_secs(90)).await;
    assert_eq!(run.status, "completed", "{:?}", run.error);
    let _ = b.start_kill();
    assert_eq!(env.databases_and_roles("twice").await, (1, 1));
    let checkpoints = postgres_checkpoints(&env, run.id).await;
    assert_eq!(checkpoints, 1);
}

/// The postgres step's success lines in the run's provision log: one per
/// committed checkpoint.
async fn postgres_checkpoints(env: &TestEnv, run: uuid::Uuid) -> i64 {
    env.count(
        "SELECT count(*) FROM tenant_provision_logs
         WHERE step = 'postgres' AND status = 'success' AND run_id::text = $1",
        run,
    )
    .await
}

/// Whatever closes a run's job too early (apalis acks by worker name, and
/// records a delivery's lock late, so a refused delivery can close the job
/// another worker still drives), a worker's crash must not strand the run:
/// the workers' sweep finds the unfinished run without a live job and gives
/// it one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_job_was_closed_under_its_driver_is_resumed_after_a_crash() {
    let env = TestEnv::new(&[]).await;
    let logs = tempfile::tempdir().unwrap();
    let (a_log, b_log) = (logs.path().join("a.log"), logs.path().join("b.log"));
    let run = env.start("closed").await.run;
    let mut a = env.worker_process(&[("LANDLORD_FAULTS", "postgres:sleep-after:8000")], &a_log);
    wait_until("A inside the postgres step", 60, async || {
        env.step(run.id, "postgres").await.status == "running"
    })
    .await;
    // The job closed under A, as a refused delivery elsewhere would.
    let closed = sqlx::query(
        "UPDATE apalis.jobs SET status = 'Done', done_at = now()
         WHERE status IN ('Queued', 'Running') AND convert_from(job, 'UTF8')::jsonb->>'run_id' = $1",
    )
    .bind(run.id.to_string())
    .execute(&env.pool)
    .await
    .unwrap()
    .rows_affected();
    assert_eq!(closed, 1);
    signal(&a, "-KILL");
    let _ = a.wait().await;

    let mut b = env.worker_process(&[], &b_log);
    let run = env.wait_finished(run.id, Duration::from_secs(60)).await;
    let _ = b.start_kill();
    assert_eq!(run.status, "completed", "{:?}", run.error);
    let b_text = std::fs::read_to_string(&b_log).unwrap();
    assert!(
        b_text.contains("resumed a run left without a queue job"),
        "{b_text}"
    );
    assert_eq!(postgres_checkpoints(&env, run.id).await, 1);
    assert_eq!(env.databases_and_roles("closed").await, (1, 1));
}
