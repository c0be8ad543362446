//! Seed 004's three tiers from the built-in catalogue, one tenant of each
//! through the API and one through the CLI, checked on the real servers:
//! enterprise a silo, standard pooled (organization, schema, shared Mongo
//! and Qdrant), hybrid a bridge (its own database, the rest pooled).

use super::{Api, run_id};
use crate::harness::TestEnv;
use crate::probe::Probe;
use serde_json::json;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(240);

/// What a tenant of each tier should hold, by resource kind.
struct Holds {
    /// A realm of its own, or else an organization in the shared realm.
    realm: bool,
    database: bool,
    schema: bool,
    /// A Mongo database, a Qdrant collection and a bucket of its own, or
    /// else the shared ones (a prefix of the shared bucket).
    own_documents: bool,
}

fn holds(tier: &str) -> Holds {
    match tier {
        "enterprise" => Holds {
            realm: true,
            database: true,
            schema: false,
            own_documents: true,
        },
        "standard" => Holds {
            realm: false,
            database: false,
            schema: true,
            own_documents: false,
        },
        "hybrid" => Holds {
            realm: false,
            database: true,
            schema: false,
            own_documents: false,
        },
        other => unreachable!("{other}"),
    }
}

/// The database (Mongo) or collection (Qdrant) the tenant's connection of
/// `service` names.
async fn connection_of(env: &TestEnv, tenant: &str, service: &str) -> String {
    sqlx::query_scalar(
        "SELECT c.db_name FROM tenant_connections c JOIN tenants t ON t.id = c.tenant_id
         WHERE t.name = $1 AND c.service = $2",
    )
    .bind(tenant)
    .bind(service)
    .fetch_one(&env.pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_tier_of_the_builtin_catalogue_end_to_end_through_the_api_and_the_cli() {
    let env = TestEnv::full_stack(&[("LANDLORD_WORKER_CONCURRENCY", "6")]).await;
    let probe = Probe::new(&env).await;
    let api = Api::start(&env).await;
    let worker = env.spawn_worker().await;
    let tiers = ["enterprise", "standard", "hybrid"];

    let mut api_runs = Vec::new();
    for tier in tiers {
        let tenant = format!("api{tier}");
        let res = api
            .post_json(
                "/tenants",
                &json!({
                    "name": tenant,
                    "plan": tier,
                    "admin": {
                        "email": format!("admin@{tenant}.example.com"),
                        "firstName": "Ada",
                        "lastName": "Lovelace"
                    }
                }),
            )
            .await;
        assert_eq!(res.status.as_u16(), 202, "{}", res.body);
        assert_eq!(res.body["run"]["plan"]["tier"], tier, "{}", res.body);
        api_runs.push((tenant, tier, run_id(&res)));
    }
    let cli = tiers.map(|tier| {
        let tenant = format!("cli{tier}");
        let mut cmd = env.landlord();
        cmd.args(["provision", &tenant, "--plan", tier, "--wait"])
            .args(["--admin-email", &format!("admin@{tenant}.example.com")])
            .args(["--admin-first-name", "Ada", "--admin-last-name", "Lovelace"])
            .args(["--timeout", &WAIT.as_secs().to_string()]);
        async move { (tenant, tier, cmd.output().await.unwrap()) }
    });
    for (tenant, _, out) in futures::future::join_all(cli).await {
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{tenant}: {stdout}");
        assert!(
            stdout.contains(&format!("tenant '{tenant}' is active")),
            "{stdout}"
        );
    }
    for (tenant, _, id) in &api_runs {
        let run = env.wait_finished(*id, WAIT).await;
        assert_eq!(run.status, "completed", "{tenant}: {:?}", run.error);
    }

    let shared_realm = format!("{}_shared", env.prefix);
    for tier in tiers {
        let want = holds(tier);
        for tenant in [format!("api{tier}"), format!("cli{tier}")] {
            let view = api.get(&format!("/tenants/{tenant}")).await;
            assert_eq!(view.body["status"], "active", "{}", view.body);
            assert_eq!(view.body["plan"], tier, "{}", view.body);
            let org = probe
                .kc
                .get_json(&format!(
                    "/{shared_realm}/organizations?search={tenant}&exact=true"
                ))
                .await
                .unwrap()
                .and_then(|v| v.as_array().map(|a| a.len()))
                .unwrap_or(0);
            let got = (
                probe.realm(&tenant).await,
                org,
                env.database_exists(&tenant).await,
                env.schemas_in_pool(&tenant).await == 1,
                env.role_exists(&tenant).await,
                probe.mongo_db(&tenant).await,
                probe.collection(&tenant).await.is_some(),
                probe.bucket(&tenant).await,
            );
            assert_eq!(
                got,
                (
                    want.realm,
                    usize::from(!want.realm),
                    want.database,
                    want.schema,
                    true,
                    want.own_documents,
                    want.own_documents,
                    want.own_documents
                ),
                "{tenant}: (realm, organizations, database, schema, role, own mongo, own qdrant, own bucket)"
            );
            let (mongo, qdrant) = (
                connection_of(&env, &tenant, "mongodb").await,
                connection_of(&env, &tenant, "qdrant").await,
            );
            if !want.own_documents {
                assert_eq!(mongo, format!("{}_shared", env.prefix));
                assert_eq!(qdrant, format!("{}_shared_{tier}", env.prefix));
                let run = view.body["latest_run"]["id"].as_str().unwrap();
                let storage = env
                    .step(run.parse().unwrap(), "storage")
                    .await
                    .output
                    .unwrap();
                assert_eq!(storage["bucket"], format!("{}-shared-files", env.prefix));
                assert_eq!(storage["prefix"], format!("{tenant}/"));
            }
        }
    }
    worker.shutdown().await;
}
