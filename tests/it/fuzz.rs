//! The served OpenAPI document fuzzed with schemathesis (deploy/browser.sh
//! installs it): no request may get a 5xx, and hostile tenant names get 422
//! and create nothing.

use crate::console::browser_tool;
use crate::harness::{TestEnv, create_token, spawn_api};
use serde_json::{Value, json};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

/// Per operation and phase; keeps the run around a minute on two cores.
const MAX_EXAMPLES: &str = "60";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_errors() {
    let env = TestEnv::new(&[("LANDLORD_FAULTS", "record:permanent")]).await;
    // Real tenants, one active and one failed, so the operations on
    // /tenants/{id} and /runs/{id} reach past their 404s: schemathesis takes
    // ids from the list answers.
    let healthy = env.spawn_worker_with(&[("LANDLORD_FAULTS", "")]).await;
    let run = env.start("fuzzok").await.run;
    assert_eq!(env.wait_finished(run.id, WAIT).await.status, "completed");
    healthy.shutdown().await;
    let faulty = env.spawn_worker().await;
    let run = env.start("fuzzfail").await.run;
    assert_eq!(env.wait_finished(run.id, WAIT).await.status, "failed");
    faulty.shutdown().await;
    // No worker from here on: the fuzzer's tenants are enqueued, never
    // provisioned, so the run tests the API alone and leaves no databases.
    let api = spawn_api(&env).await;
    let token = create_token(&env, "system:*").await;
    let reports = tempfile::tempdir().unwrap();
    let har = reports.path().join("requests.har");
    let out = tokio::time::timeout(
        Duration::from_secs(900),
        tokio::process::Command::new(browser_tool("LANDLORD_SCHEMATHESIS"))
            .args(["run", &format!("{}/openapi.json", api.url)])
            .args(["--checks", "not_a_server_error"])
            .args(["--header", &format!("Authorization: Bearer {token}")])
            .args(["--max-examples", MAX_EXAMPLES, "--seed", "4242"])
            // One worker: with two, Hypothesis' lambda-source cache races
            // (Python's `ast` raises "recursion depth mismatch") and the run
            // reports runtime errors that are the fuzzer's, not the API's.
            .args(["--workers", "1", "--request-timeout", "20"])
            .args(["--report", "har", "--report-har-path"])
            .arg(&har)
            .env("NO_COLOR", "1")
            .current_dir(reports.path())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("schemathesis finished in time")
    .expect("run schemathesis");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let log: Value = serde_json::from_slice(&std::fs::read(&har).expect("HAR report written"))
        .expect("HAR is JSON");
    let entries = log["log"]["entries"].as_array().expect("HAR entries");
    let server_errors: Vec<String> = entries
        .iter()
        .filter(|e| e["response"]["status"].as_u64().unwrap_or(0) >= 500)
        .map(|e| {
            format!(
                "{} {} -> {}",
                e["request"]["method"], e["request"]["url"], e["response"]["status"]
            )
        })
        .collect();
    // The count is the figure the README quotes; print it with the test.
    eprintln!(
        "schemathesis: {} requests, {} with 5xx",
        entries.len(),
        server_errors.len()
    );
    assert!(
        server_errors.is_empty(),
        "5xx responses: {server_errors:#?}\n{stdout}"
    );
    assert!(out.status.success(), "schemathesis failed:\n{stdout}");
    assert!(
        entries.len() > 200,
        "too few requests to mean anything: {}",
        entries.len()
    );

    // Whatever the fuzzer sent, only valid tenant names reached the tables.
    let bad: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM tenants WHERE name !~ '^[a-z0-9]{3,30}$')
              + (SELECT count(*) FROM workflow_runs WHERE tenant_name !~ '^[a-z0-9]{3,30}$')",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(bad, 0, "an invalid tenant name was stored");
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_tenant_names_get_422_and_create_nothing() {
    let env = TestEnv::new(&[]).await;
    let api = spawn_api(&env).await;
    let token = create_token(&env, "system:*").await;
    let client = reqwest::Client::new();
    let long = "a".repeat(10 * 1024);
    let hostile: Vec<&str> = vec![
        "acme'",
        "ac\"me",
        "x'; DROP TABLE tenants; --",
        "acme OR 1=1",
        "ünïcödé",
        "租户名称",
        "acme\u{0}",
        "acme\u{202e}",
        "../../etc/passwd",
        "acme/../x",
        "%2e%2e%2f",
        "ACME",
        "ab",
        "",
        " acme",
        &long,
    ];
    for name in &hostile {
        let resp = client
            .post(format!("{}/tenants", api.url))
            .bearer_auth(&token)
            .json(&json!({ "name": name }))
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        let shown: String = name.chars().take(40).collect();
        assert_eq!(status, 422, "{shown:?}: {body}");
        assert_eq!(body["status"], 422, "{shown:?}: problem+json body: {body}");
    }
    // Not even a string: still a client error, never a 5xx.
    for body in [
        json!({ "name": 42 }),
        json!({ "name": null }),
        json!(["acme"]),
    ] {
        let resp = client
            .post(format!("{}/tenants", api.url))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_client_error(), "{body}: {}", resp.status());
    }
    assert_eq!(env.count_all("SELECT count(*) FROM tenants").await, 0);
    assert_eq!(env.count_all("SELECT count(*) FROM workflow_runs").await, 0);
    assert_eq!(env.count_all("SELECT count(*) FROM apalis.jobs").await, 0);
    api.stop().await;
}
