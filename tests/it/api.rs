//! The admin API as a caller sees it: a real `landlord api` process, the
//! real master database, a worker running the runs.

use crate::harness::{ApiProcess, TestEnv, create_token, spawn_api, spawn_api_with, stack_vars};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(60);

struct Api {
    url: String,
    http: reqwest::Client,
    token: Option<String>,
    /// The process, owned by the first handle only.
    _proc: Option<ApiProcess>,
}

struct Res {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Res {
    fn problem_type(&self) -> &str {
        self.body["type"].as_str().unwrap_or("")
    }

    #[track_caller]
    fn assert_problem(&self, status: u16, slug: &str) {
        assert_eq!(self.status.as_u16(), status, "{}", self.body);
        assert_eq!(
            self.headers["content-type"], "application/problem+json",
            "{}",
            self.body
        );
        assert_eq!(
            self.problem_type(),
            format!("https://landlord.dev/problems/{slug}"),
            "{}",
            self.body
        );
        assert_eq!(self.body["status"], status);
    }

    fn fields(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|e| e["field"].as_str().unwrap().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Api {
    async fn start(env: &TestEnv) -> Self {
        let token = create_token(env, "system:*").await;
        Self::with(spawn_api(env).await, Some(token))
    }

    fn with(proc: ApiProcess, token: Option<String>) -> Self {
        Self {
            url: proc.url.clone(),
            http: reqwest::Client::new(),
            token,
            _proc: Some(proc),
        }
    }

    /// Another caller of the same server.
    fn as_token(&self, token: Option<&str>) -> Self {
        Self {
            url: self.url.clone(),
            http: self.http.clone(),
            token: token.map(str::to_owned),
            _proc: None,
        }
    }

    fn req(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let r = self.http.request(method, format!("{}{path}", self.url));
        match &self.token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    async fn send(&self, r: reqwest::RequestBuilder) -> Res {
        let res = r.send().await.expect("request");
        let status = res.status();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Res {
            status,
            headers,
            body,
        }
    }

    async fn get(&self, path: &str) -> Res {
        self.send(self.req(Method::GET, path)).await
    }

    async fn post(&self, path: &str) -> Res {
        self.send(self.req(Method::POST, path)).await
    }

    async fn post_json(&self, path: &str, body: &Value) -> Res {
        self.send(self.req(Method::POST, path).json(body)).await
    }

    async fn create(&self, name: &str) -> Res {
        self.post_json("/tenants", &json!({ "name": name })).await
    }
}

fn run_id(res: &Res) -> Uuid {
    let raw = res.body["run"]["id"]
        .as_str()
        .or(res.body["id"].as_str())
        .unwrap_or_else(|| panic!("no run id in {}", res.body));
    raw.parse().unwrap()
}

async fn audit_rows(env: &TestEnv, action: &str) -> Vec<(String, String, String, Option<i32>)> {
    sqlx::query_as(
        "SELECT actor, actor_kind, target, status FROM audit_log WHERE action = $1 ORDER BY at",
    )
    .bind(action)
    .fetch_all(&env.pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_is_idempotent_per_name_and_key() {
    let env = TestEnv::new(&[]).await;
    let api = Api::start(&env).await;

    let first = api.create("acme").await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.body);
    let id = run_id(&first);
    assert_eq!(first.headers["location"], format!("/runs/{id}"));
    assert_eq!(first.body["run"]["workflow_id"], "provision-tenant-acme");
    assert_eq!(first.body["run"]["status"], "running");
    assert_eq!(first.body["tenant"], Value::Null);

    let again = api.create("acme").await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(run_id(&again), id);

    // Idempotency-Key: bound to the first name; a different key for the
    // same name still finds the one run.
    let with_key = |name: &str, key: &str| {
        api.req(Method::POST, "/tenants")
            .header("Idempotency-Key", key)
            .json(&json!({ "name": name }))
    };
    let k1 = api.send(with_key("keyed", "key-1")).await;
    assert_eq!(k1.status, StatusCode::ACCEPTED);
    let k1_again = api.send(with_key("keyed", "key-1")).await;
    assert_eq!(
        (k1_again.status, run_id(&k1_again)),
        (StatusCode::OK, run_id(&k1))
    );
    let other_key = api.send(with_key("keyed", "key-2")).await;
    assert_eq!(
        (other_key.status, run_id(&other_key)),
        (StatusCode::OK, run_id(&k1))
    );
    let reused = api.send(with_key("othername", "key-1")).await;
    reused.assert_problem(409, "conflict");
    assert!(reused.body["detail"].as_str().unwrap().contains("'keyed'"));
    let bad_key = api.send(with_key("keyed", &"k".repeat(300))).await;
    bad_key.assert_problem(400, "bad-request");
    assert_eq!(
        env.count_all("SELECT count(*) FROM workflow_runs WHERE tenant_name = 'othername'")
            .await,
        0
    );

    // 20 concurrent creates of one name: one run, one 202.
    let results = futures::future::join_all((0..20).map(|_| api.create("rush"))).await;
    let ids: std::collections::HashSet<Uuid> = results.iter().map(run_id).collect();
    assert_eq!(ids.len(), 1);
    let created = results
        .iter()
        .filter(|r| r.status == StatusCode::ACCEPTED)
        .count();
    assert_eq!(created, 1);
    assert!(results.iter().all(|r| r.status.is_success()));
    assert_eq!(
        env.count_all("SELECT count(*) FROM workflow_runs WHERE tenant_name = 'rush'")
            .await,
        1
    );

    // The same with one Idempotency-Key.
    let keyed =
        futures::future::join_all((0..10).map(|_| api.send(with_key("keyrush", "k-rush")))).await;
    let ids: std::collections::HashSet<Uuid> = keyed.iter().map(run_id).collect();
    assert_eq!(ids.len(), 1);
    assert_eq!(
        keyed
            .iter()
            .filter(|r| r.status == StatusCode::ACCEPTED)
            .count(),
        1
    );

    // Every create is audited with the token's name.
    let rows = audit_rows(&env, "tenant.create").await;
    assert_eq!(rows.len(), 2 + 4 + 20 + 10, "{rows:?}");
    assert!(
        rows.iter()
            .all(|r| r.0.starts_with("test-") && r.1 == "token")
    );
    assert!(rows.iter().any(|r| r.2 == "othername" && r.3 == Some(409)));
    assert_eq!(rows[0].2, "acme");
    assert_eq!(rows[0].3, Some(202));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_and_malformed_requests_get_4xx_problems_and_write_nothing() {
    let env = TestEnv::new(&[]).await;
    let api = Api::start(&env).await;
    let long = "a".repeat(10 * 1024);
    let hostile = [
        "Robert'); DROP TABLE tenants;--",
        "acme\"",
        "a'b'c",
        "ÄÖÜ",
        "名前です",
        "acme\u{0}x",
        long.as_str(),
        "../../etc/passwd",
        "acme/../x",
        "a b c",
        "ab",
        "admin",
        "postgres",
        "ACME",
        "",
        "acme%00",
        "$(reboot)",
    ];
    for name in hostile {
        let res = api.create(name).await;
        res.assert_problem(422, "validation");
        assert_eq!(res.fields(), ["name"], "{name:?}: {}", res.body);
    }
    let bad_fields = api
        .post_json(
            "/tenants",
            &json!({"name": "okname", "domains": ["ok.com", "<script>"],
                    "admin": {"email": "x", "firstName": "A", "lastName": "B"}}),
        )
        .await;
    bad_fields.assert_problem(422, "validation");
    assert_eq!(bad_fields.fields(), ["domains[1]", "admin.email"]);
    let wrong_type = api.post_json("/tenants", &json!({ "name": 5 })).await;
    wrong_type.assert_problem(422, "validation");
    assert_eq!(wrong_type.fields(), ["name"]);
    let unknown = api
        .post_json("/tenants", &json!({ "name": "okname", "evil": true }))
        .await;
    unknown.assert_problem(422, "validation");
    let missing = api.post_json("/tenants", &json!({})).await;
    missing.assert_problem(422, "validation");

    let malformed = api
        .send(
            api.req(Method::POST, "/tenants")
                .header("content-type", "application/json")
                .body("{\"name\": \"acme\""),
        )
        .await;
    malformed.assert_problem(400, "bad-request");
    let not_json = api
        .send(
            api.req(Method::POST, "/tenants")
                .header("content-type", "text/plain")
                .body("name=acme"),
        )
        .await;
    not_json.assert_problem(415, "unsupported-media-type");
    let huge = api
        .post_json("/tenants", &json!({ "name": "x".repeat(200 * 1024) }))
        .await;
    huge.assert_problem(413, "payload-too-large");

    assert_eq!(env.count_all("SELECT count(*) FROM workflow_runs").await, 0);
    assert_eq!(env.count_all("SELECT count(*) FROM tenants").await, 0);

    // Paths and queries.
    api.get("/runs/not-a-uuid")
        .await
        .assert_problem(400, "bad-request");
    api.get(&format!("/runs/{}", Uuid::now_v7()))
        .await
        .assert_problem(404, "not-found");
    api.get("/tenants/nosuch")
        .await
        .assert_problem(404, "not-found");
    api.get("/tenants/..%2F..%2Fetc")
        .await
        .assert_problem(404, "not-found");
    api.get(&format!("/tenants/{}", Uuid::now_v7()))
        .await
        .assert_problem(404, "not-found");
    for q in [
        "status=bogus",
        "limit=0",
        "limit=201",
        "limit=-1",
        "limit=abc",
        "cursor=%27%3B--",
    ] {
        api.get(&format!("/tenants?{q}"))
            .await
            .assert_problem(400, "bad-request");
        api.get(&format!("/runs?{q}"))
            .await
            .assert_problem(400, "bad-request");
    }
    api.get("/runs?kind=bogus")
        .await
        .assert_problem(400, "bad-request");
    api.send(api.req(Method::DELETE, "/tenants/nosuch?mode=gone"))
        .await
        .assert_problem(400, "bad-request");
    api.send(api.req(Method::PUT, "/tenants"))
        .await
        .assert_problem(405, "method-not-allowed");
    api.get("/nowhere").await.assert_problem(404, "not-found");
    api.post("/runs/not-a-uuid/cancel")
        .await
        .assert_problem(400, "bad-request");
    api.post(&format!("/runs/{}/cancel", Uuid::now_v7()))
        .await
        .assert_problem(404, "not-found");
    api.post("/tenants/nosuch/retry")
        .await
        .assert_problem(404, "not-found");
    api.post("/tenants/nosuch/rollback")
        .await
        .assert_problem(404, "not-found");
    api.send(api.req(Method::DELETE, "/tenants/nosuch"))
        .await
        .assert_problem(404, "not-found");
}

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

    let reader = create_token(&env, "tenants:read").await;
    let res = api.as_token(Some(&reader)).get("/tenants").await;
    res.assert_problem(403, "forbidden");
    api.as_token(Some(&reader))
        .create("acme")
        .await
        .assert_problem(403, "forbidden");
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
    unreachable
        .get("/tenants")
        .await
        .assert_problem(403, "forbidden");
    let jwt = "eyJhbGciOiJSUzI1NiIsImtpZCI6IngifQ.eyJzdWIiOiJ4In0.c2ln";
    unreachable
        .as_token(Some(jwt))
        .get("/tenants")
        .await
        .assert_problem(503, "unavailable");
}

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
    assert_eq!(steps.len(), 10);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document_describes_the_api() {
    let env = TestEnv::new(&[]).await;
    let api = Api::start(&env).await;
    let doc = api.as_token(None).get("/openapi.json").await.body;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for (path, method) in [
        ("/tenants", "post"),
        ("/tenants", "get"),
        ("/tenants/{id}", "get"),
        ("/tenants/{id}", "delete"),
        ("/tenants/{id}/runs", "get"),
        ("/tenants/{id}/retry", "post"),
        ("/tenants/{id}/rollback", "post"),
        ("/runs", "get"),
        ("/runs/{id}", "get"),
        ("/runs/{id}/cancel", "post"),
        ("/healthz", "get"),
        ("/readyz", "get"),
    ] {
        let op = &doc["paths"][path][method];
        assert!(op.is_object(), "{method} {path} missing");
        let secured = op["security"].is_array();
        assert_eq!(secured, !path.ends_with('z'), "{method} {path}");
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert_eq!(
        doc["components"]["schemas"]["CreateTenant"]["properties"]["name"]["pattern"],
        "^[a-z0-9]{3,30}$"
    );
    assert!(doc["paths"]["/tenants"]["post"]["responses"]["422"].is_object());
}

/// Just enough of Keycloak's admin REST API to make an operators' realm.
struct KeycloakRealm {
    base: String,
    realm: String,
    http: reqwest::Client,
    admin_token: String,
}

impl KeycloakRealm {
    async fn create(realm: &str) -> Self {
        let vars: std::collections::HashMap<String, String> = stack_vars().into_iter().collect();
        let base = vars["KEYCLOAK_BASE_URL"].trim_end_matches('/').to_owned();
        let http = reqwest::Client::new();
        let res = http
            .post(format!(
                "{base}/realms/master/protocol/openid-connect/token"
            ))
            .form(&[
                ("grant_type", "password"),
                ("client_id", "admin-cli"),
                ("username", vars["KEYCLOAK_ADMIN_USERNAME"].as_str()),
                ("password", vars["KEYCLOAK_ADMIN_PASSWORD"].as_str()),
            ])
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success(), "admin login: {}", res.status());
        let admin_token = res.json::<Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        let kc = Self {
            base,
            realm: realm.to_owned(),
            http,
            admin_token,
        };
        kc.admin(Method::POST, "", json!({"realm": realm, "enabled": true}))
            .await;
        kc.admin(
            Method::POST,
            "/clients",
            json!({"clientId": "landlord-ops", "publicClient": true,
                   "directAccessGrantsEnabled": true, "enabled": true}),
        )
        .await;
        kc.admin(Method::POST, "/roles", json!({"name": "landlord-admin"}))
            .await;
        kc
    }

    fn issuer(&self) -> String {
        format!("{}/realms/{}", self.base, self.realm)
    }

    async fn admin(&self, method: Method, path: &str, body: Value) -> Value {
        let url = if path.is_empty() {
            format!("{}/admin/realms", self.base)
        } else {
            format!("{}/admin/realms/{}{path}", self.base, self.realm)
        };
        let mut req = self
            .http
            .request(method.clone(), url)
            .bearer_auth(&self.admin_token);
        if method != Method::GET && method != Method::DELETE {
            req = req.json(&body);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let text = res.text().await.unwrap();
        assert!(status.is_success(), "{method} {path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    async fn user(&self, username: &str, admin: bool) {
        self.admin(
            Method::POST,
            "/users",
            json!({"username": username, "enabled": true, "email": format!("{username}@example.com"),
                   "emailVerified": true, "firstName": "Op", "lastName": "Erator",
                   "credentials": [{"type": "password", "value": "pw-Secret-1", "temporary": false}]}),
        )
        .await;
        if admin {
            let users = self
                .admin(
                    Method::GET,
                    &format!("/users?username={username}&exact=true"),
                    Value::Null,
                )
                .await;
            let id = users[0]["id"].as_str().unwrap().to_owned();
            let role = self
                .admin(Method::GET, "/roles/landlord-admin", Value::Null)
                .await;
            self.admin(
                Method::POST,
                &format!("/users/{id}/role-mappings/realm"),
                json!([role]),
            )
            .await;
        }
    }

    /// The access token of a password grant, and the ID token beside it.
    async fn login(&self, username: &str) -> (String, String) {
        let res = self
            .http
            .post(format!("{}/protocol/openid-connect/token", self.issuer()))
            .form(&[
                ("grant_type", "password"),
                ("client_id", "landlord-ops"),
                ("username", username),
                ("password", "pw-Secret-1"),
                ("scope", "openid"),
            ])
            .send()
            .await
            .unwrap();
        let status = res.status();
        let body: Value = res.json().await.unwrap();
        assert!(status.is_success(), "login {username}: {status} {body}");
        let token = |k: &str| body[k].as_str().unwrap().to_owned();
        (token("access_token"), token("id_token"))
    }

    async fn delete(self) {
        let res = self
            .http
            .delete(format!("{}/admin/realms/{}", self.base, self.realm))
            .bearer_auth(&self.admin_token)
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success(), "delete realm: {}", res.status());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keycloak_jwts_are_verified_against_the_issuers_keys() {
    let env = TestEnv::new(&[]).await;
    let kc = KeycloakRealm::create(&format!("{}-ops", env.prefix)).await;
    kc.user("operator", true).await;
    kc.user("viewer", false).await;
    let issuer = kc.issuer();
    let proc = spawn_api_with(
        &env,
        &[
            ("LANDLORD_AUTH_ISSUER", issuer.as_str()),
            ("LANDLORD_AUTH_AUDIENCE", "landlord-ops"),
        ],
    )
    .await;
    let (operator, id_token) = kc.login("operator").await;
    let api = Api::with(proc, Some(operator.clone()));

    assert_eq!(api.get("/tenants").await.status, StatusCode::OK);
    let res = api.create("jwtco").await;
    assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.body);
    let rows = audit_rows(&env, "tenant.create").await;
    assert_eq!(
        rows,
        [(
            "operator".to_owned(),
            "jwt".to_owned(),
            "jwtco".to_owned(),
            Some(202)
        )]
    );

    // A realm user without the role: authenticated, not allowed.
    let (viewer, _) = kc.login("viewer").await;
    api.as_token(Some(&viewer))
        .get("/tenants")
        .await
        .assert_problem(403, "forbidden");
    // A forged signature, or garbage.
    let mut forged = operator.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    api.as_token(Some(&forged))
        .get("/tenants")
        .await
        .assert_problem(401, "unauthorized");
    // The same user's ID token is not an access token.
    api.as_token(Some(&id_token))
        .get("/tenants")
        .await
        .assert_problem(401, "unauthorized");
    api.as_token(Some("not.a.jwt"))
        .get("/tenants")
        .await
        .assert_problem(401, "unauthorized");
    // Another issuer's token (the master realm's admin): unknown key and issuer.
    api.as_token(Some(&kc.admin_token))
        .get("/tenants")
        .await
        .assert_problem(401, "unauthorized");

    // Another audience is refused.
    let strict = Api::with(
        spawn_api_with(
            &env,
            &[
                ("LANDLORD_AUTH_ISSUER", issuer.as_str()),
                ("LANDLORD_AUTH_AUDIENCE", "some-other-service"),
            ],
        )
        .await,
        Some(operator),
    );
    strict
        .get("/tenants")
        .await
        .assert_problem(401, "unauthorized");
    if let Some(p) = strict._proc {
        p.stop().await;
    }
    kc.delete().await;
}
