//! Outbox delivery to a real local HTTP receiver: signed webhook with a
//! stable idempotency key across retries, and Novu-style triggers.

use crate::harness::TestEnv;
use crate::receiver::Receiver;
use hmac::{Hmac, Mac};
use landlord_shared::model::{AdminContact, ProvisionParams};
use sha2::Sha256;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

fn params(email: &str) -> ProvisionParams {
    ProvisionParams {
        plan: Some("enterprise".into()),
        domains: vec!["newcompany.com".into()],
        admin: Some(AdminContact {
            email: email.into(),
            first_name: "John".into(),
            last_name: "Doe".into(),
        }),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_is_signed_and_retried_with_a_stable_idempotency_key() {
    let receiver = Receiver::start(2).await;
    let url = receiver.url("/hooks/landlord");
    let env = TestEnv::new(&[("WEBHOOK_URL", &url), ("WEBHOOK_SECRET", "whsec-test")]).await;
    let worker = env.spawn_worker().await;
    let run = env
        .start_with("hooked", &params("admin@newcompany.com"))
        .await
        .run;
    assert_eq!(env.wait_finished(run.id, WAIT).await.status, "completed");
    let got = receiver.wait_for(3, |r| r.path == "/hooks/landlord").await;
    assert_eq!(
        got.iter().map(|r| r.status).collect::<Vec<_>>(),
        [500, 500, 200]
    );
    let key = format!("{}:tenant.provisioned", run.id);
    for r in &got {
        assert_eq!(
            r.headers["idempotency-key"],
            key.as_str(),
            "same key on every attempt"
        );
        let ts = r.headers["x-landlord-timestamp"].to_str().unwrap();
        let mut mac = Hmac::<Sha256>::new_from_slice(b"whsec-test").unwrap();
        mac.update(format!("{ts}.").as_bytes());
        mac.update(&r.raw);
        let expected = format!("v1={}", hex::encode(mac.finalize().into_bytes()));
        assert_eq!(r.headers["x-landlord-signature"], expected.as_str());
        assert_eq!(r.body["type"], "tenant.provisioned");
        assert_eq!(r.body["data"]["tenantName"], "hooked");
        assert_eq!(r.body["data"]["supportEmail"], "support@example.com");
    }
    // The worker records the outcome just after the receiver answered: wait
    // for it to settle (or 10 s), then check what it recorded.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let (status, attempts, delivered) = loop {
        let row: (String, i32, bool) = sqlx::query_as(
            "SELECT d.status, d.attempts, e.delivered_at IS NOT NULL
             FROM event_deliveries d JOIN events e ON e.id = d.event_id
             WHERE d.channel = 'webhook' AND e.type = 'tenant.provisioned'",
        )
        .fetch_one(&env.pool)
        .await
        .unwrap();
        let settled = row.0 == "failed" || (row.0 == "delivered" && row.2);
        if settled || tokio::time::Instant::now() > deadline {
            break row;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!((status.as_str(), attempts), ("delivered", 3));
    assert!(delivered, "the event is marked delivered");
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn novu_triggers_carry_seed_004_payloads() {
    let receiver = Receiver::start(0).await;
    let base = receiver.url("");
    let env = TestEnv::new(&[("NOVU_API_URL", &base), ("NOVU_API_KEY", "novu-key")]).await;
    let worker = env.spawn_worker().await;
    let run = env
        .start_with("welcomed", &params("Admin@NewCompany.com"))
        .await
        .run;
    assert_eq!(env.wait_finished(run.id, WAIT).await.status, "completed");
    let got = receiver
        .wait_for(1, |r| r.path == "/v1/events/trigger")
        .await;
    let r = &got[0];
    assert_eq!(r.headers["authorization"], "ApiKey novu-key");
    assert_eq!(r.body["name"], "tenant-welcome");
    let tenant_id = env.step(run.id, "register").await.output.unwrap()["tenant_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        r.body["to"]["subscriberId"],
        format!("tenant-{tenant_id}-admin_newcompany_com")
    );
    assert_eq!(
        r.body["transactionId"],
        format!("{}:tenant.provisioned", run.id)
    );
    for field in [
        "tenantId",
        "tenantName",
        "firstName",
        "lastName",
        "appPlaneUrl",
        "adminPortalUrl",
        "supportEmail",
    ] {
        assert!(
            r.body["payload"].get(field).is_some(),
            "{field} missing: {}",
            r.body
        );
    }
    assert_eq!(
        r.body["payload"]["appPlaneUrl"],
        "https://welcomed.example.com"
    );
    worker.shutdown().await;

    let failing = TestEnv::new(&[
        ("NOVU_API_URL", &base),
        ("NOVU_API_KEY", "novu-key"),
        ("LANDLORD_FAULTS", "activate:permanent"),
    ])
    .await;
    let worker = failing.spawn_worker().await;
    let run = failing
        .start_with("failing", &params("ops@newcompany.com"))
        .await
        .run;
    assert_eq!(failing.wait_finished(run.id, WAIT).await.status, "failed");
    let got = receiver
        .wait_for(1, |r| r.body["name"] == "tenant-provisioning-failed")
        .await;
    let payload = &got[0].body["payload"];
    assert_eq!(payload["failedStep"], "activate");
    assert_eq!(payload["tenantName"], "failing");
    assert_eq!(payload["firstName"], "John");
    assert!(
        payload["error"]
            .as_str()
            .unwrap()
            .contains("injected permanent fault")
    );
    worker.shutdown().await;
}

/// Processes may disagree on channels. One with none writes its events
/// without a delivery job and takes no notify jobs; a worker with a channel
/// queues the recent ones by sweep and delivers them, and leaves alone an
/// event older than the sweep's hour.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_written_without_a_channel_are_delivered_by_a_worker_with_one() {
    let receiver = Receiver::start(0).await;
    let url = receiver.url("/hooks/landlord");
    let env = TestEnv::new(&[]).await;
    let quiet = env.spawn_worker().await;
    let recent = env
        .start_with("recent", &params("a@newcompany.com"))
        .await
        .run;
    let stale = env
        .start_with("stale", &params("b@newcompany.com"))
        .await
        .run;
    assert_eq!(env.wait_finished(recent.id, WAIT).await.status, "completed");
    assert_eq!(env.wait_finished(stale.id, WAIT).await.status, "completed");
    quiet.shutdown().await;
    let unqueued = env
        .count_all("SELECT count(*) FROM events WHERE type = 'tenant.provisioned' AND NOT queued")
        .await;
    assert_eq!(unqueued, 2, "both events written without a job");
    let jobs = env
        .count_all("SELECT count(*) FROM apalis.jobs WHERE job_type = 'landlord::notify'")
        .await;
    assert_eq!(jobs, 0, "no delivery job without a channel");
    sqlx::query("UPDATE events SET created_at = now() - interval '2 hours' WHERE run_id = $1")
        .bind(stale.id)
        .execute(&env.pool)
        .await
        .unwrap();

    let delivering = env.spawn_worker_with(&[("WEBHOOK_URL", &url)]).await;
    let got = receiver.wait_for(1, |r| r.path == "/hooks/landlord").await;
    assert_eq!(got[0].body["data"]["tenantName"], "recent");
    crate::harness::wait_until("the recent event is marked delivered", 10, async || {
        env.count(
            "SELECT count(*) FROM events WHERE run_id::text = $1 AND delivered_at IS NOT NULL",
            recent.id,
        )
        .await
            == 1
    })
    .await;
    // Two more sweeps (one every 2 s) leave the stale event alone.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(receiver.all().len(), 1, "only the recent event is sent");
    assert_eq!(
        env.count(
            "SELECT count(*) FROM events WHERE run_id::text = $1 AND NOT queued",
            stale.id
        )
        .await,
        1
    );
    delivering.shutdown().await;
}
