//! Qdrant in shared mode: one collection per tier with an `is_tenant`
//! payload index; each tenant's points are found, and deleted, by its id,
//! checked on the stand-in that follows the v1.19 spec.

use crate::harness::TestEnv;
use landlord_shared::actions::{DeprovisionMode, rollback_run, start_deprovision};
use landlord_shared::model::ProvisionParams;
use serde_json::{Value, json};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(120);

const CATALOGUE: &str = r#"
default = "shared"

[plans.shared]
tier = "standard"
steps = ["qdrant", "storage"]
[plans.shared.qdrant]
mode = "shared"

[plans.sharedent]
tier = "enterprise"
steps = ["qdrant", "storage"]
[plans.sharedent.qdrant]
mode = "shared"
"#;

pub struct Qdrant {
    pub url: String,
    pub http: reqwest::Client,
}

impl Qdrant {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.url));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn count(&self, collection: &str, tenant_value: &str) -> u64 {
        let filter =
            json!({ "must": [{ "key": "tenant_id", "match": { "value": tenant_value } }] });
        let (status, body) = self
            .call(
                reqwest::Method::POST,
                &format!("/collections/{collection}/points/count"),
                Some(json!({ "filter": filter, "exact": true })),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["result"]["count"].as_u64().unwrap()
    }

    pub async fn upsert(&self, collection: &str, points: Value) {
        let (status, body) = self
            .call(
                reqwest::Method::PUT,
                &format!("/collections/{collection}/points?wait=true"),
                Some(json!({ "points": points })),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
}

async fn provision(env: &TestEnv, tenant: &str, plan: &str) -> uuid::Uuid {
    let params = ProvisionParams {
        plan: Some(plan.into()),
        ..Default::default()
    };
    env.provision_ok(tenant, &params, WAIT).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_collection_keeps_tenants_apart_by_filter_and_undo_deletes_only_theirs() {
    let dir = tempfile::tempdir().unwrap();
    let env = TestEnv::with_catalogue(&dir, CATALOGUE, true).await;
    let q = Qdrant {
        url: env.cfg.qdrant.as_ref().unwrap().url.clone(),
        http: reqwest::Client::new(),
    };
    let worker = env.spawn_worker().await;
    tokio::join!(
        provision(&env, "vecsa", "shared"),
        provision(&env, "vecsb", "shared")
    );
    let collection = format!("{}_shared_standard", env.prefix);
    let (status, info) = q
        .call(
            reqwest::Method::GET,
            &format!("/collections/{collection}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(
        info["result"]["config"]["metadata"]["landlord_shared"],
        env.prefix.as_str()
    );
    assert_eq!(
        info["result"]["payload_schema"]["tenant_id"]["params"],
        json!({ "type": "keyword", "is_tenant": true })
    );

    // What the application reads back, and writes with.
    let (db_a, opts_a) = env.connection("vecsa", "qdrant").await;
    let (db_b, opts_b) = env.connection("vecsb", "qdrant").await;
    assert_eq!(
        (db_a.as_str(), db_b.as_str()),
        (collection.as_str(), collection.as_str())
    );
    assert_eq!(opts_a["tenant_field"], "tenant_id");
    let (va, vb) = (
        opts_a["tenant_value"].as_str().unwrap().to_owned(),
        opts_b["tenant_value"].as_str().unwrap().to_owned(),
    );
    let id_a: uuid::Uuid = sqlx::query_scalar("SELECT id FROM tenants WHERE name = 'vecsa'")
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert_eq!(va, id_a.to_string(), "the tenant's id, not its name");
    let size = env.cfg.qdrant.as_ref().unwrap().vector_size as usize;
    let vector = |x: f32| json!(vec![x; size]);
    q.upsert(
        &collection,
        json!([
            { "id": 1, "vector": vector(0.1), "payload": { "tenant_id": va, "doc": "a1" } },
            { "id": 2, "vector": vector(0.2), "payload": { "tenant_id": va, "doc": "a2" } },
            { "id": 3, "vector": vector(0.3), "payload": { "tenant_id": vb, "doc": "b1" } },
        ]),
    )
    .await;
    assert_eq!(
        (
            q.count(&collection, &va).await,
            q.count(&collection, &vb).await
        ),
        (2, 1)
    );
    let (_, scrolled) = q
        .call(
            reqwest::Method::POST,
            &format!("/collections/{collection}/points/scroll"),
            Some(json!({ "filter": opts_b["filter"], "limit": 100 })),
        )
        .await;
    let ids: Vec<u64> = scrolled["result"]["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [3], "B's filter finds none of A's points");

    let hard = start_deprovision(&env.pool, &env.key("vecsb"), DeprovisionMode::Hard, true)
        .await
        .unwrap()
        .run;
    let hard = env.wait_finished(hard.id, WAIT).await;
    assert_eq!(hard.status, "completed", "{:?}", hard.error);
    assert_eq!(
        (
            q.count(&collection, &va).await,
            q.count(&collection, &vb).await
        ),
        (2, 0),
        "B's points gone, A's untouched"
    );

    // A collection of that name without our metadata is someone else's.
    let foreign = format!("{}_shared_enterprise", env.prefix);
    let (status, _) = q
        .call(
            reqwest::Method::PUT,
            &format!("/collections/{foreign}"),
            Some(json!({ "vectors": { "size": size, "distance": "Cosine" } })),
        )
        .await;
    assert_eq!(status, 200);
    q.upsert(
        &foreign,
        json!([{ "id": 9, "vector": vector(0.9), "payload": { "tenant_id": "someone" } }]),
    )
    .await;
    let params = ProvisionParams {
        plan: Some("sharedent".into()),
        ..Default::default()
    };
    let id = env.start_with("vecsforeign", &params).await.run.id;
    let run = env.wait_finished(id, WAIT).await;
    assert_eq!(run.status, "failed");
    let error = run.error.unwrap_or_default();
    assert!(
        error.contains(&format!("qdrant collection {foreign}")),
        "{error}"
    );
    rollback_run(&env.pool, id, env.cfg.notify.outbox())
        .await
        .unwrap();
    assert_eq!(env.wait_finished(id, WAIT).await.status, "compensated");
    let (status, _) = q
        .call(
            reqwest::Method::GET,
            &format!("/collections/{foreign}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "left alone");
    assert_eq!(q.count(&foreign, "someone").await, 1);
    worker.shutdown().await;
    for c in [&collection, &foreign] {
        q.call(reqwest::Method::DELETE, &format!("/collections/{c}"), None)
            .await;
    }
}
