//! API tokens: 401, 403, revocation, an unreachable issuer.

use super::{Api, audit_rows};
use crate::harness::{TestEnv, create_token, spawn_api_with};
use reqwest::{Method, StatusCode};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_authenticate_and_need_the_permission() {
    let env = TestEnv::new(&[]).await;
    let api = Api::start(&env).await;
    for public in ["/healthz", "/readyz", "/openapi.json"] {
        let res = api.as_token(None).get(public).await;
        assert_eq!(res.status, StatusCode::OK, "{public}");
    }
    let anon = api.as_token(None);
    let res = anon.get("/tenants").await;
    res.assert_problem(401, "unauthorized");
    assert_eq!(res.headers["www-authenticate"], "Bearer");
    anon.create("acme")
        .await
        .assert_problem(401, "unauthorized");
    let res = api
        .send(
            anon.req(Method::GET, "/tenants")
                .header("authorization", "Basic YWRtaW46YWRtaW4="),
        )
        .await;
    res.assert_problem(401, "unauthorized");
    api.as_token(Some("ll_madeup"))
        .get("/tenants")
        .await
        .assert_problem(401, "unauthorized");
    // Not an API token, and no issuer is configured.
    api.as_token(Some("eyJhbGciOiJSUzI1NiJ9.e30.sig"))
        .get("/tenants")
        .await
        .assert_problem(401, "unauthorized");

    // A token holds its scopes only (tests/it/api/scopes.rs: all of them).
    let reader = create_token(&env, "tenants:read").await;
    let res = api.as_token(Some(&reader)).get("/tenants").await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    let res = api.as_token(Some(&reader)).create("acme").await;
    res.assert_problem(403, "forbidden");
    assert_eq!(
        res.body["detail"],
        "the credentials lack the tenants:create permission"
    );
    assert_eq!(env.count_all("SELECT count(*) FROM workflow_runs").await, 0);

    // Only the hash is stored.
    let stored: Vec<String> = sqlx::query_scalar("SELECT token_hash FROM api_tokens")
        .fetch_all(&env.pool)
        .await
        .unwrap();
    assert!(stored.iter().all(|h| h.len() == 64 && !h.contains("ll_")));

    // Revoked by the CLI: refused from then on.
    let admin = api.token.clone().unwrap();
    assert_eq!(api.get("/tenants").await.status, StatusCode::OK);
    let name: String =
        sqlx::query_scalar("SELECT name FROM api_tokens WHERE 'system:*' = ANY(permissions)")
            .fetch_one(&env.pool)
            .await
            .unwrap();
    // A taken or malformed name is refused with exit code 2, nothing written.
    for bad in [name.as_str(), "bad name", "-x"] {
        let out = env
            .landlord()
            .args(["tokens", "create", &format!("--name={bad}")])
            .output()
            .await
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad}");
        assert!(out.stdout.is_empty(), "no token printed for {bad}");
    }
    // An unknown permission (a typo would otherwise grant nothing, silently).
    let out = env
        .landlord()
        .args([
            "tokens",
            "create",
            "--name=typo",
            "--permission=tenants:destroy",
        ])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("tenants:destroy") && err.contains("tenants:read"),
        "{err}"
    );
    assert_eq!(env.count_all("SELECT count(*) FROM api_tokens").await, 2);
    let list = env
        .landlord()
        .args(["tokens", "list"])
        .output()
        .await
        .unwrap();
    let listed = String::from_utf8(list.stdout).unwrap();
    assert!(
        listed.contains(&name) && !listed.contains(&admin),
        "{listed}"
    );
    let out = env
        .landlord()
        .args(["tokens", "revoke", &name])
        .output()
        .await
        .unwrap();
    assert!(out.status.success());
    api.get("/tenants")
        .await
        .assert_problem(401, "unauthorized");
    let used: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT last_used_at FROM api_tokens WHERE name = $1")
            .bind(&name)
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert!(used.is_some());
    let cli_audit = audit_rows(&env, "token.revoke").await;
    assert_eq!(cli_audit.len(), 1);
    assert_eq!(cli_audit[0].1, "cli");

    // An issuer that cannot be reached: JWTs get 503 (nothing can verify
    // them), API tokens keep working.
    let unreachable = Api::with(
        spawn_api_with(
            &env,
            &[("LANDLORD_AUTH_ISSUER", "http://127.0.0.1:9/realms/ops")],
        )
        .await,
        Some(reader.clone()),
    );
    assert_eq!(unreachable.get("/tenants").await.status, StatusCode::OK);
    let jwt = "eyJhbGciOiJSUzI1NiIsImtpZCI6IngifQ.eyJzdWIiOiJ4In0.c2ln";
    unreachable
        .as_token(Some(jwt))
        .get("/tenants")
        .await
        .assert_problem(503, "unavailable");

    // A token past its lifetime is refused like a revoked one.
    let out = env
        .landlord()
        .args(["tokens", "create", "--name=brief", "--expires-in=1s"])
        .args(["--permission=tenants:read"])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let brief = api.as_token(Some(String::from_utf8(out.stdout).unwrap().trim()));
    assert_eq!(brief.get("/tenants").await.status, StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let res = brief.get("/tenants").await;
    res.assert_problem(401, "unauthorized");
    assert!(
        res.body["detail"].as_str().unwrap().contains("expired"),
        "{}",
        res.body
    );
}
