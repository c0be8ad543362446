//! Keycloak is stopped for 20 s during a run (out of reach for about 27 s
//! with its restart); with a retry budget that covers the outage, the
//! identity step retries and the run completes.
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
    // 1 s doubling up to 4 s (8 s with jitter): the attempt after
    // Keycloak is back comes within 8 s, not after a doubled wait of up to
    // a minute, which was most of this test's time.
    let env = TestEnv::full_stack(&[
        ("PROVISION_RETRY_ATTEMPTS", "16"),
        ("PROVISION_RETRY_DELAY_MS", "1000"),
        ("PROVISION_RETRY_MAX_DELAY_MS", "4000"),
    ])
    .await;
    let worker = env.spawn_worker().await;
    stack(&["stop", "keycloak"]).await;
    let down_at = Instant::now();
    let run = env.start("outage").await.run;
    tokio::time::sleep(Duration::from_secs(20).saturating_sub(down_at.elapsed())).await;
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
