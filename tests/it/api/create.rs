//! Creating tenants: idempotency, concurrency, hostile input.

use super::{Api, audit_rows, run_id};
use crate::harness::TestEnv;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

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
