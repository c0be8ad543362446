//! What a run needs is decided when it is created, never by the worker
//! that picks a job up: a worker without a backend the run needs leaves the
//! step for one that has it, and a half-configured worker refuses to start.

use crate::harness::TestEnv;
use crate::probe::Probe;
use landlord_shared::model::{AdminContact, ProvisionParams};
use std::time::{Duration, Instant};

fn params(tenant: &str) -> ProvisionParams {
    ProvisionParams {
        plan: None,
        domains: vec![format!("{tenant}.example.com")],
        admin: Some(AdminContact {
            email: format!("admin@{tenant}.example.com"),
            first_name: "Ada".into(),
            last_name: "Admin".into(),
        }),
    }
}

/// Two workers, one without any Keycloak configuration: every tenant that
/// becomes active has its realm, and the half-equipped worker says what the
/// step waits for instead of skipping it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_without_keycloak_never_turns_a_tenant_active_without_its_realm() {
    let env = TestEnv::full_stack(&[]).await;
    let probe = Probe::new(&env).await;
    let no_keycloak = [
        ("KEYCLOAK_BASE_URL", ""),
        ("KEYCLOAK_ADMIN_USERNAME", ""),
        ("KEYCLOAK_ADMIN_PASSWORD", ""),
    ];
    // Alone, the worker without Keycloak runs what it can, then waits.
    let half = env.spawn_worker_with(&no_keycloak).await;
    let first = env.start_with("halfone", &params("halfone")).await.run;
    let deadline = Instant::now() + Duration::from_secs(60);
    let waiting = loop {
        let identity = env.step(first.id, "identity").await;
        if let Some(why) = identity.waiting_for.clone() {
            break (identity, why);
        }
        assert!(
            Instant::now() < deadline,
            "identity never waited: {identity:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(waiting.0.status, "pending", "{:?}", waiting.0);
    assert_eq!(waiting.0.attempts, 0, "not attempted, not skipped");
    assert!(waiting.1.contains("KEYCLOAK_BASE_URL"), "{}", waiting.1);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let run = landlord_shared::store::run_by_id(&env.pool, first.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(run.status, "running", "the run waits for a capable worker");
    assert_eq!(
        env.tenant_status("halfone").await.as_deref(),
        Some("provisioning")
    );
    assert_eq!(
        env.count("SELECT count(*) FROM tenant_provision_logs WHERE run_id::text = $1 AND status = 'waiting'", first.id)
            .await,
        1,
        "the wait is logged once"
    );

    // With a capable worker in the fleet, every run completes with a realm.
    let full = env.spawn_worker().await;
    let mut runs = vec![("halfone".to_owned(), first.id)];
    for t in ["halftwo", "halfthree"] {
        runs.push((t.to_owned(), env.start_with(t, &params(t)).await.run.id));
    }
    for (tenant, id) in &runs {
        let run = env.wait_finished(*id, Duration::from_secs(240)).await;
        assert_eq!(run.status, "completed", "{tenant}: {:?}", run.error);
        assert_eq!(env.tenant_status(tenant).await.as_deref(), Some("active"));
        let identity = env.step(*id, "identity").await;
        assert_eq!(identity.status, "completed", "{tenant}: {identity:?}");
        assert_eq!(identity.waiting_for, None);
        assert!(
            probe.realm(tenant).await,
            "{tenant} is active without its realm"
        );
    }
    half.shutdown().await;
    full.shutdown().await;
}

/// A deployment without Keycloak skips identity when the run is created;
/// a worker that does have Keycloak does not change that run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_skipped_step_stays_skipped_whatever_the_worker_has() {
    let env = TestEnv::new(&[]).await;
    let run = env.start("decidedonce").await.run;
    let identity = env.step(run.id, "identity").await;
    assert_eq!(identity.status, "skipped");
    assert!(
        identity
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("KEYCLOAK_BASE_URL"),
        "{identity:?}"
    );
    let stack: Vec<(String, String)> = crate::harness::stack_vars();
    let stack: Vec<(&str, &str)> = stack
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let worker = env.spawn_worker_with(&stack).await;
    let run = env.wait_finished(run.id, Duration::from_secs(60)).await;
    assert_eq!(run.status, "completed", "{:?}", run.error);
    assert_eq!(env.step(run.id, "identity").await.status, "skipped");
    assert_eq!(env.step(run.id, "mongo").await.status, "skipped");
    // Folder storage was decided, so no bucket appears although the worker has S3.
    assert_eq!(
        env.step(run.id, "storage").await.needs.as_deref(),
        Some("folder")
    );
    assert!(env.folder_exists("decidedonce"));
    worker.shutdown().await;
}

/// A process half-configured for a backend refuses to start, naming what
/// is missing; `landlord config check` says the same without starting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_configured_workers_refuse_to_start_naming_the_variable() {
    let env = TestEnv::new(&[]).await;
    for (extra, missing) in [
        (
            vec![("KEYCLOAK_BASE_URL", "http://127.0.0.1:1")],
            "KEYCLOAK_ADMIN_USERNAME",
        ),
        (vec![("LANDLORD_SECRET_KEY", "")], "LANDLORD_SECRET_KEY"),
        (vec![("S3_ENDPOINT", "http://127.0.0.1:1")], "S3_ACCESS_KEY"),
    ] {
        let out = env
            .landlord()
            .arg("worker")
            .envs(extra.iter().copied())
            .output()
            .await
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{extra:?} started");
        assert!(stderr.contains(missing), "{extra:?}: {stderr}");
    }
    let check = env
        .landlord()
        .args(["config", "check"])
        .env("KEYCLOAK_BASE_URL", "http://127.0.0.1:1")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&check.stdout);
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert_eq!(check.status.code(), Some(2), "{stdout}{stderr}");
    assert!(stderr.contains("KEYCLOAK_ADMIN_USERNAME"), "{stderr}");
    let ok = env
        .landlord()
        .args(["config", "check"])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert_eq!(ok.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("steps this process can run: validate, register, postgres, migrate, check_schema, storage, record, activate"), "{stdout}");
    assert!(
        stdout.contains(
            "runs started here skip identity: not configured in this deployment (KEYCLOAK_BASE_URL)"
        ),
        "{stdout}"
    );
    // Secrets are masked: the key and the database password never show.
    let key = &env.vars["LANDLORD_SECRET_KEY"];
    assert!(!stdout.contains(key.as_str()), "{stdout}");
    assert!(
        stdout.contains("LANDLORD_SECRET_KEY            ***"),
        "{stdout}"
    );
    assert!(!stdout.contains(":landlord@"), "{stdout}");
}
