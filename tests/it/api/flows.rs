//! Lists, the run timeline, and the operator actions end to end with a
//! worker: retry, rollback, cancel, deprovision.

use super::{Api, WAIT, audit_rows, run_id};
use crate::harness::TestEnv;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_show_and_paginate_with_a_worker() {
    let env = TestEnv::new(&[]).await;
    let worker = env.spawn_worker().await;
    let api = Api::start(&env).await;
    let mut runs = vec![];
    // One after the other, so that the tenants rows are in this order too.
    for name in ["alpha", "bravo", "charlie"] {
        let id = run_id(&api.create(name).await);
        assert_eq!(env.wait_finished(id, WAIT).await.status, "completed");
        runs.push(id);
    }

    let page1 = api.get("/tenants?limit=2").await;
    assert_eq!(page1.status, StatusCode::OK, "{}", page1.body);
    let names: Vec<&str> = page1.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["charlie", "bravo"]);
    let cursor = page1.body["next_cursor"].as_str().unwrap();
    let page2 = api.get(&format!("/tenants?limit=2&cursor={cursor}")).await;
    assert_eq!(page2.body["items"][0]["name"], "alpha");
    assert_eq!(page2.body["next_cursor"], Value::Null);
    assert_eq!(page2.body["items"][0]["latest_run"]["status"], "completed");
    assert_eq!(page2.body["items"][0]["status"], "active");
    let active = api.get("/tenants?status=active").await;
    assert_eq!(active.body["items"].as_array().unwrap().len(), 3);
    let suspended = api.get("/tenants?status=suspended").await;
    assert_eq!(suspended.body["items"].as_array().unwrap().len(), 0);

    let by_name = api.get("/tenants/alpha").await;
    assert_eq!(by_name.status, StatusCode::OK);
    let id = by_name.body["id"].as_str().unwrap();
    let by_id = api.get(&format!("/tenants/{id}")).await;
    assert_eq!(by_id.body["name"], "alpha");
    assert!(
        by_id.body["resources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["kind"].is_string() && r["step"] == "postgres"),
        "{}",
        by_id.body
    );
    let tenant_runs = api.get("/tenants/alpha/runs").await;
    assert_eq!(tenant_runs.body["items"][0]["id"], runs[0].to_string());

    let detail = api.get(&format!("/runs/{}", runs[0])).await;
    assert_eq!(detail.status, StatusCode::OK);
    let steps = detail.body["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 11);
    assert_eq!(steps[0]["name"], "validate");
    assert!(steps[0]["description"].as_str().unwrap().len() > 3);
    assert!(steps[3]["duration_ms"].is_i64());
    assert!(!detail.body["logs"].as_array().unwrap().is_empty());

    let all = api.get("/runs?kind=provision&limit=2").await;
    assert_eq!(all.body["items"].as_array().unwrap().len(), 2);
    let rest = api
        .get(&format!(
            "/runs?kind=provision&limit=2&cursor={}",
            all.body["next_cursor"].as_str().unwrap()
        ))
        .await;
    assert_eq!(rest.body["items"][0]["id"], runs[0].to_string());
    let none = api.get("/runs?status=failed").await;
    assert_eq!(none.body["items"], json!([]));

    // Already active: the same run, never a second.
    let again = api.create("alpha").await;
    assert_eq!((again.status, run_id(&again)), (StatusCode::OK, runs[0]));
    assert_eq!(again.body["tenant"]["status"], "active");
    // Nothing to cancel, retry or roll back on a completed run.
    api.post(&format!("/runs/{}/cancel", runs[0]))
        .await
        .assert_problem(409, "conflict");
    api.post("/tenants/alpha/retry")
        .await
        .assert_problem(409, "conflict");
    api.post(&format!("/tenants/{id}/rollback"))
        .await
        .assert_problem(409, "conflict");

    // Deprovisioning an active tenant needs force.
    let del = api.send(api.req(Method::DELETE, "/tenants/alpha")).await;
    del.assert_problem(409, "conflict");
    assert!(del.body["detail"].as_str().unwrap().contains("force=true"));
    let del = api
        .send(api.req(Method::DELETE, "/tenants/alpha?mode=hard&force=true"))
        .await;
    assert_eq!(del.status, StatusCode::ACCEPTED, "{}", del.body);
    assert_eq!(del.body["run"]["kind"], "deprovision_hard");
    let del_again = api
        .send(api.req(Method::DELETE, "/tenants/alpha?mode=hard&force=true"))
        .await;
    assert_eq!(del_again.status, StatusCode::OK, "{}", del_again.body);
    assert_eq!(run_id(&del_again), run_id(&del));
    let rows = audit_rows(&env, "tenant.delete").await;
    assert_eq!(
        rows.iter().map(|r| r.3).collect::<Vec<_>>(),
        [Some(409), Some(202), Some(200)]
    );
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_resumes_at_the_failed_step_and_masks_secrets() {
    let env = TestEnv::new(&[("LANDLORD_FAULTS", "storage:permanent-after")]).await;
    let worker = env.spawn_worker().await;
    let api = Api::start(&env).await;
    let id = run_id(&api.create("flaky").await);
    assert_eq!(env.wait_finished(id, WAIT).await.status, "failed");
    worker.shutdown().await;

    let detail = api.get(&format!("/runs/{id}")).await;
    assert_eq!(detail.body["status"], "failed");
    assert_eq!(detail.body["failed_step"], "storage");
    let failed = api.get("/runs?status=failed").await;
    assert_eq!(failed.body["items"][0]["id"], id.to_string());
    let tenant = api.get("/tenants/flaky").await;
    assert_eq!(tenant.body["status"], "suspended");
    let again = api.create("flaky").await;
    again.assert_problem(409, "conflict");
    assert!(again.body["detail"].as_str().unwrap().contains("retry"));
    api.post(&format!("/runs/{id}/cancel"))
        .await
        .assert_problem(409, "conflict");

    // Errors are shown with secrets masked.
    sqlx::query(
        "UPDATE workflow_steps SET last_error = 'connect postgres://landlord:hunter2@db/x: password=hunter2 refused'
         WHERE run_id = $1 AND name = 'storage'",
    )
    .bind(id)
    .execute(&env.pool)
    .await
    .unwrap();
    let detail = api.get(&format!("/runs/{id}")).await;
    let text = detail.body.to_string();
    assert!(!text.contains("hunter2"), "{text}");
    assert!(text.contains("postgres://landlord:***@db/x"), "{text}");

    let before: Vec<(String, i32)> = env
        .steps(id)
        .await
        .into_iter()
        .map(|s| (s.name, s.attempts))
        .collect();
    let worker = env.spawn_worker_with(&[("LANDLORD_FAULTS", "")]).await;
    let res = api.post("/tenants/flaky/retry").await;
    assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.body);
    assert_eq!(run_id(&res), id);
    assert_eq!(env.wait_finished(id, WAIT).await.status, "completed");
    let after = env.steps(id).await;
    for (step, (name, attempts)) in after.iter().zip(&before) {
        if name == "storage" {
            assert_eq!(step.attempts, 1, "the failed step ran again, once");
        } else if step.position < 7 {
            assert_eq!(step.attempts, *attempts, "{name} was re-run");
        }
    }
    assert_eq!(env.tenant_status("flaky").await.as_deref(), Some("active"));
    api.post("/tenants/flaky/retry")
        .await
        .assert_problem(409, "conflict");
    let rows = audit_rows(&env, "tenant.retry").await;
    assert_eq!(
        rows.iter().map(|r| (r.2.as_str(), r.3)).collect::<Vec<_>>(),
        [("flaky", Some(202)), ("flaky", Some(409))]
    );
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_compensates_a_failed_run() {
    let env = TestEnv::new(&[("LANDLORD_FAULTS", "migrate:permanent")]).await;
    let worker = env.spawn_worker().await;
    let api = Api::start(&env).await;
    let id = run_id(&api.create("doomed").await);
    assert_eq!(env.wait_finished(id, WAIT).await.status, "failed");
    assert!(env.database_exists("doomed").await);

    let res = api.post("/tenants/doomed/rollback").await;
    assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.body);
    assert_eq!(run_id(&res), id);
    assert_eq!(env.wait_finished(id, WAIT).await.status, "compensated");
    assert!(!env.database_exists("doomed").await);
    let detail = api.get(&format!("/runs/{id}")).await;
    assert_eq!(detail.body["status"], "compensated");
    let rows = audit_rows(&env, "tenant.rollback").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].3, Some(202));
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_asks_a_running_run_to_stop() {
    let env = TestEnv::new(&[("LANDLORD_FAULTS", "postgres:sleep-after:4000")]).await;
    let worker = env.spawn_worker().await;
    let api = Api::start(&env).await;
    let id = run_id(&api.create("slow").await);
    let deadline = tokio::time::Instant::now() + WAIT;
    while env.step(id, "postgres").await.status != "running" {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let res = api
        .post(&format!("/runs/{id}/cancel?compensate=false"))
        .await;
    assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.body);
    assert_eq!(res.body["cancel_requested"], false);
    let bad = api
        .post(&format!("/runs/{id}/cancel?compensate=maybe"))
        .await;
    bad.assert_problem(400, "bad-request");
    // A running run cannot be deprovisioned, retried or rolled back.
    api.send(api.req(Method::DELETE, "/tenants/slow?force=true"))
        .await
        .assert_problem(409, "conflict");
    api.post("/tenants/slow/retry")
        .await
        .assert_problem(409, "conflict");
    api.post("/tenants/slow/rollback")
        .await
        .assert_problem(409, "conflict");
    let rows = audit_rows(&env, "run.cancel").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].2, id.to_string());
    // The engine stops at the next step boundary; retry resumes there.
    assert_eq!(env.wait_finished(id, WAIT).await.status, "cancelled");
    let cancelled = api.get("/runs?status=cancelled").await;
    assert_eq!(cancelled.body["items"][0]["id"], id.to_string());
    assert_eq!(env.step(id, "postgres").await.status, "completed");
    let res = api.post("/tenants/slow/retry").await;
    assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.body);
    assert_eq!(env.wait_finished(id, WAIT).await.status, "completed");
    assert_eq!(env.step(id, "postgres").await.attempts, 1, "not re-run");
    assert_eq!(env.tenant_status("slow").await.as_deref(), Some("active"));
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_with_compensation_undoes_the_run() {
    let env = TestEnv::new(&[("LANDLORD_FAULTS", "postgres:sleep-after:2000")]).await;
    let worker = env.spawn_worker().await;
    let api = Api::start(&env).await;
    let id = run_id(&api.create("undone").await);
    let deadline = tokio::time::Instant::now() + WAIT;
    while env.step(id, "postgres").await.status != "running" {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let res = api
        .post(&format!("/runs/{id}/cancel?compensate=true"))
        .await;
    assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.body);
    assert_eq!(res.body["cancel_requested"], true);
    assert_eq!(env.wait_finished(id, WAIT).await.status, "compensated");
    assert!(!env.database_exists("undone").await);
    let detail = api.get(&format!("/runs/{id}")).await;
    assert_eq!(detail.body["status"], "compensated");
    assert!(
        detail.body["logs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["status"] == "requested"),
        "{}",
        detail.body["logs"]
    );
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soft_then_hard_deprovisioning_through_the_api() {
    let env = TestEnv::new(&[]).await;
    let worker = env.spawn_worker().await;
    let api = Api::start(&env).await;
    let id = run_id(&api.create("leaving").await);
    assert_eq!(env.wait_finished(id, WAIT).await.status, "completed");

    let soft = api
        .send(api.req(Method::DELETE, "/tenants/leaving?mode=soft&force=true"))
        .await;
    assert_eq!(soft.status, StatusCode::ACCEPTED, "{}", soft.body);
    assert_eq!(soft.body["run"]["kind"], "deprovision_soft");
    assert_eq!(
        env.wait_finished(run_id(&soft), WAIT).await.status,
        "completed"
    );
    let tenant = api.get("/tenants/leaving").await;
    assert_eq!(tenant.body["status"], "deleted");
    assert_eq!(tenant.body["latest_run"]["kind"], "deprovision_soft");
    assert!(env.database_exists("leaving").await, "soft keeps the data");
    let again = api.create("leaving").await;
    again.assert_problem(409, "conflict");
    assert!(again.body["detail"].as_str().unwrap().contains("deleted"));
    let soft_again = api
        .send(api.req(Method::DELETE, "/tenants/leaving?mode=soft"))
        .await;
    assert_eq!(soft_again.status, StatusCode::OK, "{}", soft_again.body);
    assert_eq!(run_id(&soft_again), run_id(&soft));

    let tenant_id = tenant.body["id"].as_str().unwrap();
    let hard = api
        .send(api.req(Method::DELETE, &format!("/tenants/{tenant_id}?mode=hard")))
        .await;
    assert_eq!(hard.status, StatusCode::ACCEPTED, "{}", hard.body);
    assert_eq!(
        env.wait_finished(run_id(&hard), WAIT).await.status,
        "completed"
    );
    assert!(!env.database_exists("leaving").await);
    assert!(!env.folder_exists("leaving"));
    let runs = api.get("/tenants/leaving/runs").await;
    let kinds: Vec<&str> = runs.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["deprovision_hard", "deprovision_soft", "provision"]);
    let resources = api.get("/tenants/leaving").await.body["resources"].clone();
    assert!(
        resources
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["deleted_at"].is_string()),
        "{resources}"
    );
    let audit = audit_rows(&env, "tenant.delete").await;
    assert_eq!(
        audit.iter().map(|r| r.3).collect::<Vec<_>>(),
        [Some(202), Some(200), Some(202)]
    );
    worker.shutdown().await;
}
