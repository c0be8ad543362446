//! Seed 004's three tiers from the built-in catalogue, one tenant of each
//! through the API and one through the CLI, checked on the real servers.

use super::{Api, run_id};
use crate::harness::TestEnv;
use crate::probe::Probe;
use serde_json::json;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(240);

/// What a tenant of each tier should hold, by resource kind.
struct Holds {
    database: bool,
    schema: bool,
    mongo: bool,
    qdrant: bool,
}

fn holds(tier: &str) -> Holds {
    match tier {
        "enterprise" => Holds {
            database: true,
            schema: false,
            mongo: true,
            qdrant: true,
        },
        "standard" => Holds {
            database: false,
            schema: true,
            mongo: false,
            qdrant: false,
        },
        "hybrid" => Holds {
            database: true,
            schema: false,
            mongo: false,
            qdrant: false,
        },
        other => unreachable!("{other}"),
    }
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

    for tier in tiers {
        let want = holds(tier);
        for tenant in [format!("api{tier}"), format!("cli{tier}")] {
            let view = api.get(&format!("/tenants/{tenant}")).await;
            assert_eq!(view.body["status"], "active", "{}", view.body);
            assert_eq!(view.body["plan"], tier, "{}", view.body);
            let got = (
                probe.realm(&tenant).await,
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
                    true,
                    want.database,
                    want.schema,
                    true,
                    want.mongo,
                    want.qdrant,
                    true
                ),
                "{tenant}: (realm, database, schema, role, mongo, qdrant, bucket)"
            );
        }
    }
    worker.shutdown().await;
}
