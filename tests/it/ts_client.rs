//! The TypeScript client (clients/typescript): its types generated from
//! the running API's /openapi.json, the client and its test type-checked
//! against them, then run against the real API and worker.

use crate::harness::{TestEnv, create_token, spawn_api};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typescript_client_generated_from_the_document_provisions_and_reads_credentials() {
    let env = TestEnv::new(&[]).await;
    let worker = env.spawn_worker().await;
    let api = spawn_api(&env).await;
    let token = create_token(&env, "system:*").await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/clients/typescript/test.sh");
    let out = tokio::process::Command::new(script)
        .env("LANDLORD_API_URL", &api.url)
        .env("LANDLORD_API_TOKEN", &token)
        .env("TENANT", "tsclient")
        .output()
        .await
        .expect("clients/typescript/test.sh");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let got: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{stderr}", String::from_utf8_lossy(&out.stdout)));
    assert_eq!(got["status"], 202, "{got}");
    assert_eq!(got["run"], "completed", "{got}");
    assert_eq!(got["database"], env.db_name("tsclient").as_str(), "{got}");
    assert_eq!(got["user"], env.db_name("tsclient").as_str(), "{got}");
    assert_eq!(got["has_secret"], true, "{got}");
    assert_eq!(got["missing"], 404, "{got}");
    assert_eq!(
        got["missing_type"],
        "https://landlord.dev/problems/not-found"
    );
    worker.shutdown().await;
}
