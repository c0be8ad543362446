//! Every operation needs the scope its OpenAPI document names, and only
//! that one: a token holding every other scope is refused with 403 naming
//! it, and changes nothing; a token holding just that scope gets past the
//! check (to the handler's own answer).

use super::{Api, run_id};
use crate::harness::{TestEnv, create_token_with, wait_until};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const SCOPES: [&str; 5] = [
    "tenants:create",
    "tenants:read",
    "runs:operate",
    "tenants:delete",
    "tenants:credentials",
];

/// The declared scope of a secured operation; `None` for a public one.
fn declared(op: &Value) -> Option<String> {
    let security = op.get("security")?.as_array()?;
    assert_eq!(security.len(), 1, "{op}");
    let scopes = security[0]["bearer"].as_array().unwrap();
    assert_eq!(scopes.len(), 1, "one scope per operation: {op}");
    Some(scopes[0].as_str().unwrap().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_needs_its_declared_scope_and_no_other() {
    let env = TestEnv::new(&[]).await;
    let api = Api::start(&env).await;
    let worker = env.spawn_worker().await;
    let run = run_id(&api.create("scoped").await);
    wait_until("the tenant is active", 60, async || {
        env.tenant_status("scoped").await.as_deref() == Some("active")
    })
    .await;
    let doc = api.as_token(None).get("/openapi.json").await.body;

    let mut only = std::collections::HashMap::new();
    let mut short = std::collections::HashMap::new();
    for scope in SCOPES {
        let others: Vec<&str> = SCOPES.into_iter().filter(|s| *s != scope).collect();
        only.insert(scope, create_token_with(&env, &[scope]).await);
        short.insert(scope, create_token_with(&env, &others).await);
    }
    let rows = async || env.count_all("SELECT count(*) FROM workflow_runs").await;
    let mut runs = rows().await;

    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let Some(scope) = declared(op) else { continue };
            assert!(SCOPES.contains(&scope.as_str()), "{method} {path}: {scope}");
            let concrete = path
                .replace("/tenants/{id}", "/tenants/scoped")
                .replace("/runs/{id}", &format!("/runs/{run}"));
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let call = async |token: &str| {
                let caller = api.as_token(Some(token));
                let mut req = caller.req(method.clone(), &concrete);
                if method == Method::POST && concrete == "/tenants" {
                    req = req.json(&json!({ "name": "scopednew" }));
                }
                api.send(req).await
            };
            let refused = call(&short[scope.as_str()]).await;
            refused.assert_problem(403, "forbidden");
            assert!(
                refused.body["detail"].as_str().unwrap().contains(&scope),
                "{method} {path}: {}",
                refused.body
            );
            assert_eq!(rows().await, runs, "{method} {path} refused yet ran");
            let allowed = call(&only[scope.as_str()]).await;
            assert!(
                ![StatusCode::UNAUTHORIZED, StatusCode::FORBIDDEN].contains(&allowed.status)
                    && !allowed.status.is_server_error(),
                "{method} {path} with {scope}: {} {}",
                allowed.status,
                allowed.body
            );
            runs = rows().await;
            checked += 1;
        }
    }
    assert_eq!(checked, 13, "every secured operation was called");
    worker.shutdown().await;
}
