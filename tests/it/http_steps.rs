//! Custom http steps against a real executor process
//! (tests/executor/executor.py): accepted work reported by callback holds
//! no worker, a second callback changes nothing, failures and garbage fail
//! the step and rollback calls the executor's undo, and an executor killed
//! while it holds accepted work is asked again after the step's deadline.

use crate::executor::{WAIT, custom_env, plan, start_executor};
use crate::harness::wait_until;
use landlord_shared::actions::{cancel_run, rollback_run};
use serde_json::Value;
use std::time::Duration;
use uuid::Uuid;

const ACCEPTING: &str = r#"
default = "custom"

[http_steps.infra]
start = "{ex}/slow?ms=2500"
undo = "{ex}/undo"
timeout_secs = 60

[http_steps.dns]
start = "{ex}/done"

[http_steps.deploy]
start = "{ex}/twice"
undo = "{ex}/undo"

[plans.custom]
tier = "standard"
steps = ["storage", "infra", "dns", "deploy"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_work_holds_no_worker_and_a_second_callback_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let ex = start_executor(state.path(), 0).await;
    // One slot: both tenants can wait on their executors at once only if
    // a waiting step holds none.
    let (env, _api, _worker) = custom_env(
        &dir,
        ACCEPTING,
        &ex,
        &[("LANDLORD_WORKER_CONCURRENCY", "1")],
    )
    .await;
    let a = env.start_with("alpha", &plan("custom")).await.run.id;
    let b = env.start_with("beta", &plan("custom")).await.run.id;
    wait_until(
        "both tenants' infra steps await their callbacks",
        30,
        async || {
            env.step(a, "infra").await.status == "awaiting"
                && env.step(b, "infra").await.status == "awaiting"
        },
    )
    .await;
    for (run_id, tenant) in [(a, "alpha"), (b, "beta")] {
        let run = env.wait_finished(run_id, WAIT).await;
        assert_eq!(run.status, "completed", "{tenant}: {:?}", run.error);
        let steps = env.steps(run_id).await;
        let names: Vec<&str> = steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "validate",
                "register",
                "identity",
                "postgres",
                "migrate",
                "check_schema",
                "mongo",
                "qdrant",
                "storage",
                "infra",
                "dns",
                "deploy",
                "record",
                "activate"
            ],
            "custom steps run after the resources, before record, in the plan's order"
        );
        let key = format!("landlord:{run_id}:infra");
        let infra = env.step(run_id, "infra").await;
        assert_eq!((infra.attempts, infra.lost_attempts), (1, 0));
        let output = infra.output.expect("infra's checkpoint");
        assert_eq!(output["idempotency_key"], key.as_str());
        assert_eq!(
            output["output"]["applied"],
            key.as_str(),
            "the executor's output"
        );
        assert_eq!(ex.calls("/slow", tenant).len(), 1);
        assert_eq!(ex.calls("/done", tenant).len(), 1);
        let deploy_key = format!("landlord:{run_id}:deploy");
        let answers = || -> Vec<Value> {
            ex.log()
                .into_iter()
                .filter(|e| e["key"] == deploy_key.as_str() && e.get("callback").is_some())
                .map(|e| e["callback"].clone())
                .collect()
        };
        // The executor logs its second callback's answer after sending it;
        // the run may have ended on the first one already.
        wait_until("both callbacks answered", 10, async || answers().len() >= 2).await;
        assert_eq!(answers(), [202, 409], "the second callback is refused");
        assert_eq!(env.step(run_id, "deploy").await.attempts, 1);
        let waits = env
            .count(
                "SELECT count(*) FROM tenant_provision_logs
                 WHERE step = 'infra' AND status = 'waiting' AND run_id::text = $1",
                run_id,
            )
            .await;
        assert_eq!(waits, 1);
    }
    assert!(
        ex.log()
            .iter()
            .filter(|e| e.get("path").is_some())
            .all(|e| e["header_matches"] == true),
        "the Idempotency-Key header is the body's key"
    );
}

const FAILING: &str = r#"
default = "garbage"

[http_steps.infra]
start = "{ex}/done"
undo = "{ex}/undo"

[http_steps.broken]
start = "{ex}/garbage"

[http_steps.refused]
start = "{ex}/fail"

[plans.garbage]
tier = "standard"
steps = ["storage", "infra", "broken"]

[plans.failing]
tier = "standard"
steps = ["storage", "infra", "refused"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_and_garbage_executors_fail_the_step_and_rollback_undoes_it() {
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let ex = start_executor(state.path(), 0).await;
    let (env, _api, _worker) = custom_env(&dir, FAILING, &ex, &[]).await;
    let g = env.start_with("garbled", &plan("garbage")).await.run.id;
    let f = env.start_with("refusal", &plan("failing")).await.run.id;
    let garbled = env.wait_finished(g, WAIT).await;
    assert_eq!(garbled.status, "failed");
    let error = garbled.error.unwrap_or_default();
    assert!(
        error.contains("executor of step 'broken'") && error.contains("gateway says hi"),
        "{error}"
    );
    assert_eq!(
        env.step(g, "broken").await.attempts,
        1,
        "garbage is permanent"
    );
    let refused = env.wait_finished(f, WAIT).await;
    assert_eq!(refused.status, "failed");
    assert!(
        refused
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("quota exceeded"),
        "{:?}",
        refused.error
    );
    assert_eq!(env.step(f, "refused").await.attempts, 1);

    assert!(env.folder_exists("garbled"));
    rollback_run(&env.pool, g, env.cfg.notify.outbox())
        .await
        .expect("rollback");
    let rolled = env.wait_finished(g, WAIT).await;
    assert_eq!(rolled.status, "compensated", "{:?}", rolled.error);
    let undos = ex.calls("/undo", "garbled");
    assert_eq!(undos.len(), 1, "infra undone once: {undos:?}");
    assert_eq!(undos[0]["action"], "undo");
    assert_eq!(undos[0]["key"], format!("landlord:{g}:infra").as_str());
    assert!(
        !env.folder_exists("garbled"),
        "the built-in steps undone too"
    );
    assert!(ex.calls("/undo", "refusal").is_empty());
}

const SILENT: &str = r#"
default = "custom"

[http_steps.infra]
start = "{ex}/once-silent"
undo = "{ex}/undo"
timeout_secs = 3

[plans.custom]
tier = "standard"
steps = ["infra"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_executor_killed_holding_accepted_work_is_asked_again_after_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let mut ex = start_executor(state.path(), 0).await;
    let (env, _api, _worker) = custom_env(&dir, SILENT, &ex, &[]).await;
    let run_id = env.start("silent").await.run.id;
    wait_until("the infra step awaits its callback", 30, async || {
        env.step(run_id, "infra").await.status == "awaiting"
    })
    .await;
    ex.child.kill().await.expect("kill the executor");
    let ex = start_executor(state.path(), ex.port).await;
    let run = env.wait_finished(run_id, WAIT).await;
    assert_eq!(run.status, "completed", "{:?}", run.error);
    let infra = env.step(run_id, "infra").await;
    assert_eq!((infra.attempts, infra.lost_attempts), (2, 0));
    let calls = ex.calls("/once-silent", "silent");
    let keys: Vec<&Value> = calls.iter().map(|c| &c["key"]).collect();
    assert_eq!(keys.len(), 2, "{calls:?}");
    assert_eq!(
        keys[0], keys[1],
        "the retry carries the same idempotency key"
    );
    let retried = env
        .count(
            "SELECT count(*) FROM tenant_provision_logs
             WHERE step = 'infra' AND status = 'retrying' AND run_id::text = $1
               AND message LIKE '%did not call back within 3 s%'",
            run_id,
        )
        .await;
    assert_eq!(retried, 1);
}

const ENDLESS: &str = r#"
default = "custom"

[http_steps.infra]
start = "{ex}/slow?ms=600000"
undo = "{ex}/undo"

[plans.custom]
tier = "standard"
steps = ["storage", "infra"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_run_that_awaits_its_executor_undoes_the_step_now() {
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let ex = start_executor(state.path(), 0).await;
    let (env, _api, _worker) = custom_env(&dir, ENDLESS, &ex, &[]).await;
    let run_id: Uuid = env.start("endless").await.run.id;
    wait_until("the infra step awaits its callback", 30, async || {
        env.step(run_id, "infra").await.status == "awaiting"
    })
    .await;
    cancel_run(&env.pool, run_id, true).await.expect("cancel");
    let run = env.wait_finished(run_id, Duration::from_secs(30)).await;
    assert_eq!(run.status, "compensated", "{:?}", run.error);
    assert_eq!(ex.calls("/undo", "endless").len(), 1);
    assert!(!env.folder_exists("endless"));
}
