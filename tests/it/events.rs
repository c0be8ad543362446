//! Every terminal state of a run writes exactly one event, in the same
//! transaction as the status change, so a signup flow always learns how its
//! tenant's run ended; and a name whose provisioning was rolled back can be
//! provisioned again.

use crate::harness::TestEnv;
use landlord_shared::actions::{DeprovisionMode, cancel_run, retry_run, start_deprovision};
use landlord_shared::model::Run;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(90);

/// The event type each terminal status reports.
fn expected(run: &Run) -> &'static str {
    match (run.kind.as_str(), run.status.as_str()) {
        ("provision", "completed") => "tenant.provisioned",
        ("provision", "failed") => "tenant.provisioning_failed",
        ("provision", "cancelled") => "tenant.provisioning_cancelled",
        (_, "compensated") => "tenant.rolled_back",
        (_, "compensation_failed") => "tenant.rollback_failed",
        (_, "completed") => "tenant.deprovisioned",
        (_, "failed") => "tenant.deprovisioning_failed",
        other => panic!("unexpected terminal state {other:?}"),
    }
}

async fn events_of(env: &TestEnv, run: &Run, kind: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events WHERE run_id = $1 AND type = $2")
        .bind(run.id)
        .bind(kind)
        .fetch_one(&env.pool)
        .await
        .unwrap()
}

/// One event of the run's terminal state, and the delivery job for it.
async fn assert_one_event(env: &TestEnv, run: &Run) {
    let kind = expected(run);
    assert_eq!(
        events_of(env, run, kind).await,
        1,
        "{} {}: {kind}",
        run.tenant_name,
        run.status
    );
}

async fn wait_step_running(env: &TestEnv, run: &Run, step: &str) {
    let deadline = Instant::now() + WAIT;
    while env.step(run.id, step).await.status != "running" {
        assert!(Instant::now() < deadline, "{step} never ran");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_terminal_state_has_exactly_one_event() {
    let env = TestEnv::new(&[]).await;
    let mut finished = Vec::new();

    // completed
    let worker = env.spawn_worker().await;
    let ok = env.start("evok").await.run;
    finished.push(env.wait_finished(ok.id, WAIT).await);
    worker.shutdown().await;

    // failed, then retried to completion: one event for each ending.
    let worker = env
        .spawn_worker_with(&[("LANDLORD_FAULTS", "activate:permanent")])
        .await;
    let bad = env.start("evfail").await.run;
    let failed = env.wait_finished(bad.id, WAIT).await;
    assert_eq!(failed.status, "failed");
    assert_one_event(&env, &failed).await;
    worker.shutdown().await;
    let worker = env.spawn_worker().await;
    retry_run(&env.pool, bad.id).await.unwrap();
    let retried = env.wait_finished(bad.id, WAIT).await;
    assert_eq!(retried.status, "completed", "{:?}", retried.error);
    assert_eq!(
        events_of(&env, &retried, "tenant.provisioning_failed").await,
        1
    );
    finished.push(retried);
    worker.shutdown().await;

    // cancelled, with and without compensation
    let worker = env
        .spawn_worker_with(&[("LANDLORD_FAULTS", "postgres:sleep-after:2000")])
        .await;
    for (tenant, compensate) in [("evcancel", false), ("evcancelundo", true)] {
        let run = env.start(tenant).await.run;
        wait_step_running(&env, &run, "postgres").await;
        cancel_run(&env.pool, run.id, compensate).await.unwrap();
        let done = env.wait_finished(run.id, WAIT).await;
        let want = if compensate {
            "compensated"
        } else {
            "cancelled"
        };
        assert_eq!(done.status, want, "{:?}", done.error);
        finished.push(done);
    }
    worker.shutdown().await;

    // deprovisioning: completed, and failed
    let worker = env.spawn_worker().await;
    let soft = start_deprovision(&env.pool, &env.key("evok"), DeprovisionMode::Soft, true)
        .await
        .unwrap()
        .run;
    finished.push(env.wait_finished(soft.id, WAIT).await);
    worker.shutdown().await;
    let worker = env
        .spawn_worker_with(&[("LANDLORD_FAULTS", "drop_storage:permanent")])
        .await;
    let hard = start_deprovision(&env.pool, &env.key("evok"), DeprovisionMode::Hard, true)
        .await
        .unwrap()
        .run;
    let hard = env.wait_finished(hard.id, WAIT).await;
    assert_eq!(hard.status, "failed");
    finished.push(hard);
    worker.shutdown().await;

    // With rollback: compensated, and compensation_failed.
    let rolling = TestEnv::new(&[("ROLLBACK_ON_FAILURE", "true")]).await;
    let worker = rolling
        .spawn_worker_with(&[(
            "LANDLORD_FAULTS",
            "storage:permanent,postgres:undo-permanent",
        )])
        .await;
    let run = rolling.start("evundo").await.run;
    let undo_failed = rolling.wait_finished(run.id, WAIT).await;
    assert_eq!(
        undo_failed.status, "compensation_failed",
        "{:?}",
        undo_failed.error
    );
    assert_one_event(&rolling, &undo_failed).await;
    assert_eq!(
        events_of(&rolling, &undo_failed, "tenant.provisioning_failed").await,
        1
    );
    worker.shutdown().await;
    let worker = rolling
        .spawn_worker_with(&[("LANDLORD_FAULTS", "storage:permanent")])
        .await;
    let run = rolling.start("evroll").await.run;
    let rolled = rolling.wait_finished(run.id, WAIT).await;
    assert_eq!(rolled.status, "compensated", "{:?}", rolled.error);
    assert_one_event(&rolling, &rolled).await;
    assert_eq!(
        events_of(&rolling, &rolled, "tenant.provisioning_failed").await,
        1
    );
    worker.shutdown().await;

    // Nothing of the rolled-back tenant is left, so its name is free again.
    assert!(!rolling.database_exists("evroll").await);
    let worker = rolling.spawn_worker().await;
    let again = rolling.start("evroll").await;
    assert!(again.created, "a new run for a rolled-back name");
    assert_ne!(again.run.id, rolled.id);
    let again = rolling.wait_finished(again.run.id, WAIT).await;
    assert_eq!(again.status, "completed", "{:?}", again.error);
    assert_eq!(
        rolling.tenant_status("evroll").await.as_deref(),
        Some("active")
    );
    assert_one_event(&rolling, &again).await;
    // The rolled-back run keeps its history and its one event.
    let old = landlord_shared::store::run_by_id(&rolling.pool, rolled.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(old.status, "compensated");
    assert_one_event(&rolling, &old).await;
    worker.shutdown().await;

    for run in &finished {
        let now = landlord_shared::store::run_by_id(&env.pool, run.id)
            .await
            .unwrap()
            .unwrap();
        assert_one_event(&env, &now).await;
    }
    // And no terminal run of either database lacks its event.
    for e in [&env, &rolling] {
        let silent: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM workflow_runs r
             WHERE r.status NOT IN ('running', 'compensating')
               AND NOT EXISTS (SELECT 1 FROM events e WHERE e.run_id = r.id)",
        )
        .fetch_one(&e.pool)
        .await
        .unwrap();
        assert_eq!(silent, 0);
    }
}
