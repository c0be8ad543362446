//! The callback endpoint's refusals, and hard deprovisioning of a tenant
//! whose plan has custom steps.

use crate::executor::{WAIT, custom_env, plan, start_executor};
use crate::harness::{TestEnv, spawn_api, wait_until};
use landlord_shared::actions::{DeprovisionMode, start_deprovision};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_without_a_live_token_or_a_report_are_refused() {
    let env = TestEnv::new(&[]).await;
    let api = spawn_api(&env).await;
    let http = reqwest::Client::new();
    let url = format!("{}/callbacks/steps", api.url);
    let post = |token: Option<&str>, body: &str| {
        let mut req = http
            .post(&url)
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(t) = token {
            req = req.header("landlord-callback-token", t);
        }
        req.send()
    };
    let done = r#"{"status":"done","output":{}}"#;
    let cases = [
        (None, done, 401, None),
        (Some("f00"), r#"{"status":"accepted"}"#, 422, Some("status")),
        (Some("f00"), r#"{"status":"finished"}"#, 422, None),
        (Some("f00"), r#"{"status":"failed"}"#, 422, None),
        (Some("f00"), done, 409, None),
    ];
    for (token, body, status, field) in cases {
        let resp = post(token, body).await.unwrap();
        assert_eq!(resp.status().as_u16(), status, "{token:?} {body}");
        assert_eq!(
            resp.headers()["content-type"],
            "application/problem+json",
            "{body}"
        );
        let problem: Value = resp.json().await.unwrap();
        if let Some(field) = field {
            assert_eq!(problem["errors"][0]["field"], field, "{problem}");
        }
    }
    let jobs = env.count_all("SELECT count(*) FROM apalis.jobs").await;
    assert_eq!(jobs, 0, "a refused callback wakes nothing");
}

const DEPROVISIONED: &str = r#"
default = "custom"

[http_steps.infra]
start = "{ex}/done"
undo = "{ex}/undo"

[http_steps.dns]
start = "{ex}/done"

[plans.custom]
tier = "standard"
steps = ["storage", "infra", "dns"]

[plans.plain]
tier = "standard"
steps = ["storage"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hard_deprovisioning_has_the_executor_undo_the_custom_steps() {
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let ex = start_executor(state.path(), 0).await;
    let (env, _api, _worker) = custom_env(&dir, DEPROVISIONED, &ex, &[]).await;
    let provision = env.provision_ok("gone", &plan("custom"), WAIT).await;
    env.provision_ok("plain", &plan("plain"), WAIT).await;
    assert!(ex.calls("/undo", "gone").is_empty());
    for tenant in ["gone", "plain"] {
        let hard = start_deprovision(&env.pool, &env.key(tenant), DeprovisionMode::Hard, true)
            .await
            .expect("hard deprovision")
            .run;
        let run = env.wait_finished(hard.id, WAIT).await;
        assert_eq!(run.status, "completed", "{tenant}: {:?}", run.error);
        assert!(!env.folder_exists(tenant), "{tenant}");
        let step = env.step(hard.id, "drop_custom").await;
        if tenant == "plain" {
            assert_eq!(step.status, "skipped", "no custom step ran for {tenant}");
            continue;
        }
        assert_eq!(step.status, "completed");
        assert_eq!(step.output.unwrap()["undone"], serde_json::json!(["infra"]));
    }
    let undos = ex.calls("/undo", "gone");
    assert_eq!(undos.len(), 1, "infra undone, dns has no undo: {undos:?}");
    assert_eq!(
        undos[0]["key"],
        format!("landlord:{provision}:infra").as_str()
    );
}

const QUICK: &str = r#"
default = "custom"

[http_steps.infra]
start = "{ex}/slow?ms=100"
timeout_secs = 3

[plans.custom]
tier = "standard"
steps = ["infra"]
"#;

/// The deadline's wake-up job comes after the callback has ended the
/// attempt: it is dropped before it takes the run's next driver epoch, so
/// a late one never takes over a run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_wake_up_job_is_dropped_without_touching_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let ex = start_executor(state.path(), 0).await;
    let (env, _api, _worker) = custom_env(&dir, QUICK, &ex, &[]).await;
    let run = env.provision_ok("late", &plan("custom"), WAIT).await;
    let epoch = || async {
        sqlx::query_scalar::<_, i64>("SELECT driver_epoch::bigint FROM workflow_runs WHERE id = $1")
            .bind(run)
            .fetch_one(&env.pool)
            .await
            .unwrap()
    };
    let before = epoch().await;
    let infra = env.step(run, "infra").await;
    assert_eq!(infra.attempts, 1);
    // The run's first job, the callback's and the deadline's (due 4 s
    // after the accept) all end.
    wait_until("the run's three jobs end", 30, async || {
        let jobs = env.jobs_of(run).await;
        let wakes = jobs.iter().filter(|j| j.0 == infra.position).count();
        wakes == 2 && jobs.iter().all(|j| j.2 == "Done")
    })
    .await;
    assert_eq!(
        epoch().await,
        before,
        "the late job took the run's driver epoch"
    );
    let run = env.wait_finished(run, WAIT).await;
    assert_eq!(run.status, "completed");
}
