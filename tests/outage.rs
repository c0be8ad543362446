//! Keycloak is stopped for 30 s during a run; with a retry budget that
//! covers the outage, the identity step retries and the run completes.
//! Its own test binary: stopping Keycloak must not overlap other tests.

use landlord_testkit::harness;

use harness::TestEnv;
use std::time::{Duration, Instant};

async fn stack(args: &[&str]) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/stack.sh");
    let status = tokio::process::Command::new(script)
        .args(args)
        .status()
        .await
        .expect("run stack.sh");
    assert!(status.success(), "deploy/stack.sh {args:?} failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keycloak_outage_is_ridden_out_by_retries() {
    // 2 s doubling: 2 + 4 + 8 + 16 + 32 s of waits cover 30 s down plus
    // Keycloak's restart.
    let env = TestEnv::full_stack(&[
        ("PROVISION_RETRY_ATTEMPTS", "8"),
        ("PROVISION_RETRY_DELAY_MS", "2000"),
    ])
    .await;
    let worker = env.spawn_worker().await;
    stack(&["stop", "keycloak"]).await;
    let down_at = Instant::now();
    let run = env.start("outage").await.run;
    tokio::time::sleep(Duration::from_secs(30).saturating_sub(down_at.elapsed())).await;
    let identity = env.step(run.id, "identity").await;
    assert_eq!(identity.status, "retrying", "{identity:?}");
    assert!(identity.attempts >= 2, "{identity:?}");
    stack(&["start", "keycloak"]).await;
    eprintln!("keycloak back after {:?}", down_at.elapsed());
    let run = env.wait_finished(run.id, Duration::from_secs(240)).await;
    assert_eq!(run.status, "completed", "{:?}", run.error);
    let identity = env.step(run.id, "identity").await;
    eprintln!("identity step took {} attempts", identity.attempts);
    assert!(identity.attempts >= 3);
    assert_eq!(env.step(run.id, "register").await.attempts, 1);
    worker.shutdown().await;
}
