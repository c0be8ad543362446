//! Chaos: full-stack runs on two real worker processes, one of them
//! SIGKILLed every few seconds and started again. Every run completes with
//! no operator action (a crash is not a failed attempt) and nothing is
//! duplicated on the servers or in the master database.

use crate::harness::TestEnv;
use crate::probe::Probe;
use landlord_shared::model::{AdminContact, ProvisionParams};
use rand::Rng;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::Child;
use uuid::Uuid;

const TENANTS: usize = 20;

fn spawn(env: &TestEnv, logs: &std::path::Path, n: usize) -> Child {
    env.landlord()
        .arg("worker")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(logs.join(format!("worker-{n}.log"))).unwrap())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn landlord worker")
}

async fn running_steps(env: &TestEnv) -> Vec<(Uuid, i32, i32)> {
    sqlx::query_as("SELECT run_id, position, attempts FROM workflow_steps WHERE status = 'running'")
        .fetch_all(&env.pool)
        .await
        .unwrap()
}

/// Time until every step that was running when a worker died has been
/// claimed again or has finished (an upper bound on recovery: the steps of
/// the surviving worker are in the set too).
async fn recovered(env: &TestEnv, at_kill: &[(Uuid, i32, i32)], killed: Instant) -> Duration {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let now = running_steps(env).await;
        let stuck = at_kill
            .iter()
            .any(|s| now.iter().any(|n| n.0 == s.0 && n.1 == s.1 && n.2 == s.2));
        if !stuck {
            return killed.elapsed();
        }
        assert!(
            Instant::now() < deadline,
            "steps never recovered: {at_kill:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_sigkills_of_workers_end_with_every_run_completed() {
    let env = TestEnv::full_stack(&[]).await;
    let probe = Probe::new(&env).await;
    let logs = tempfile::tempdir().unwrap();
    let mut workers = vec![spawn(&env, logs.path(), 0), spawn(&env, logs.path(), 1)];
    let mut spawned = 2;
    let mut runs = Vec::new();
    for i in 0..TENANTS {
        let tenant = format!("chaos{i:02}");
        let params = ProvisionParams {
            plan: None,
            domains: vec![format!("{tenant}.example.com")],
            admin: Some(AdminContact {
                email: format!("admin@{tenant}.example.com"),
                first_name: "Chaos".into(),
                last_name: "Monkey".into(),
            }),
        };
        runs.push((
            tenant.clone(),
            env.start_with(&tenant, &params).await.run.id,
        ));
    }
    let started = Instant::now();
    let mut recoveries = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let unfinished: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM workflow_runs WHERE status IN ('running', 'compensating')",
        )
        .fetch_one(&env.pool)
        .await
        .unwrap();
        if unfinished == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{unfinished} runs unfinished after 10 minutes"
        );
        let pause = Duration::from_millis(rand::rng().random_range(2000..5000));
        tokio::time::sleep(pause).await;
        let victim = rand::rng().random_range(0..workers.len());
        let at_kill = running_steps(&env).await;
        workers[victim].start_kill().expect("SIGKILL");
        let status = workers[victim].wait().await.unwrap();
        let killed = Instant::now();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9)
        );
        workers[victim] = spawn(&env, logs.path(), spawned);
        spawned += 1;
        recoveries.push(recovered(&env, &at_kill, killed).await);
    }
    let took = started.elapsed();
    // Every job is acknowledged in the end: none stranded `Running` by a
    // killed worker (notifications included).
    let settle = Instant::now() + Duration::from_secs(60);
    loop {
        let open: i64 = env
            .count_all("SELECT count(*) FROM apalis.jobs WHERE status <> 'Done'")
            .await;
        if open == 0 {
            break;
        }
        assert!(Instant::now() < settle, "{open} jobs never finished");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for w in &mut workers {
        let _ = w.start_kill();
    }
    let kills = recoveries.len();
    recoveries.sort();
    let lost: i64 = env
        .count_all("SELECT coalesce(sum(lost_attempts + undo_lost_attempts), 0)::bigint FROM workflow_steps")
        .await;
    eprintln!(
        "chaos: {TENANTS} runs, {kills} SIGKILLs, {lost} attempts lost with their worker, all runs ended in {took:?}; \
         recovery median {:?}, max {:?}",
        percentile(&recoveries, 0.5),
        recoveries.last().copied().unwrap_or_default()
    );
    assert!(
        kills >= 5,
        "only {kills} kills: the chaos was too short to mean much"
    );

    for (tenant, id) in &runs {
        let run = landlord_shared::db::run_by_id(&env.pool, *id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            run.status,
            "completed",
            "{tenant}: {:?}\n{:#?}",
            run.error,
            env.steps(*id).await
        );
        assert_eq!(env.tenant_status(tenant).await.as_deref(), Some("active"));
        for (kind, exists) in probe.everything(tenant).await {
            assert!(exists, "{tenant}: {kind} missing");
        }
        // One admin user and one client in the realm, one of each row.
        let realm = probe.names(tenant).realm();
        let users = probe
            .kc
            .get_json(&format!("/{realm}/users?briefRepresentation=true"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(users.as_array().map(Vec::len), Some(1), "{tenant}: {users}");
        let clients = probe
            .kc
            .get_json(&format!("/{realm}/clients?clientId={tenant}-app"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(clients.as_array().map(Vec::len), Some(1), "{tenant}");
        assert_eq!(
            env.count("SELECT count(*) FROM events WHERE type = 'tenant.provisioned' AND run_id::text = $1", id).await,
            1
        );
        assert_eq!(
            env.count("SELECT count(*) FROM tenants WHERE name = $1", tenant)
                .await,
            1
        );
    }
    assert_eq!(
        env.count_all("SELECT count(*) FROM workflow_runs").await,
        TENANTS as i64
    );
    // Two secrets per tenant (database role, realm admin); more would mean a
    // duplicated credential.
    assert_eq!(
        env.count_all("SELECT count(*) FROM secrets").await,
        2 * TENANTS as i64
    );
    // The realms are ours and only this test's: remove them so Keycloak
    // stays quick for the rest of the suite.
    for (tenant, _) in &runs {
        let realm = probe.names(tenant).realm();
        probe.kc.delete(&format!("/{realm}")).await.unwrap();
    }
}
