//! Mongo in shared mode on the real FerretDB: one database per deployment,
//! each tenant's documents found, and deleted, by its id.

use crate::harness::TestEnv;
use crate::probe::Probe;
use landlord_shared::actions::{DeprovisionMode, rollback_run, start_deprovision};
use landlord_shared::model::ProvisionParams;
use mongodb::bson::{Document, doc};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(120);

const CATALOGUE: &str = r#"
default = "shared"

[plans.shared]
tier = "standard"
steps = ["mongo", "storage"]
[plans.shared.mongo]
mode = "shared"
"#;

async fn env(dir: &tempfile::TempDir) -> TestEnv {
    TestEnv::with_catalogue(dir, CATALOGUE, true).await
}

async fn provision(env: &TestEnv, tenant: &str) -> uuid::Uuid {
    env.provision_ok(tenant, &ProvisionParams::default(), WAIT)
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_database_keeps_tenants_apart_by_id_and_undo_deletes_only_theirs() {
    let dir = tempfile::tempdir().unwrap();
    let env = env(&dir).await;
    let probe = Probe::new(&env).await;
    let worker = env.spawn_worker().await;
    tokio::join!(provision(&env, "docsa"), provision(&env, "docsb"));
    let name = format!("{}_shared", env.prefix);
    let (db_a, opts_a) = env.connection("docsa", "mongodb").await;
    let (_, opts_b) = env.connection("docsb", "mongodb").await;
    assert_eq!(db_a, name);
    assert_eq!(opts_a["tenant_field"], "tenant_id");
    let (va, vb) = (
        opts_a["tenant_value"].as_str().unwrap().to_owned(),
        opts_b["tenant_value"].as_str().unwrap().to_owned(),
    );
    let db = probe.mongo.database(&name);
    let marker = db
        .collection::<Document>("_landlord")
        .find_one(doc! { "_id": "owner" })
        .await
        .unwrap()
        .expect("marker");
    assert_eq!(marker.get_str("shared").unwrap(), env.prefix);
    let notes = db.collection::<Document>("notes");
    notes
        .insert_many([
            doc! { "tenant_id": &va, "n": 1 },
            doc! { "tenant_id": &va, "n": 2 },
            doc! { "tenant_id": &vb, "n": 3 },
        ])
        .await
        .unwrap();
    let count = |v: String| {
        let notes = notes.clone();
        async move {
            notes
                .count_documents(doc! { "tenant_id": v })
                .await
                .unwrap()
        }
    };
    assert_eq!((count(va.clone()).await, count(vb.clone()).await), (2, 1));

    let hard = start_deprovision(&env.pool, &env.key("docsb"), DeprovisionMode::Hard, true)
        .await
        .unwrap()
        .run;
    let hard = env.wait_finished(hard.id, WAIT).await;
    assert_eq!(hard.status, "completed", "{:?}", hard.error);
    assert_eq!(
        (count(va.clone()).await, count(vb.clone()).await),
        (2, 0),
        "B's documents gone, A's untouched"
    );
    worker.shutdown().await;
    db.drop().await.unwrap();
}

/// A database of the shared name without our marker is someone else's:
/// refused, and left with its documents by the rollback.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_shared_database_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let env = env(&dir).await;
    let probe = Probe::new(&env).await;
    let name = format!("{}_shared", env.prefix);
    let db = probe.mongo.database(&name);
    db.collection::<Document>("theirs")
        .insert_one(doc! { "tenant_id": "someone" })
        .await
        .unwrap();
    let worker = env.spawn_worker().await;
    let id = env
        .start_with("docsforeign", &ProvisionParams::default())
        .await
        .run
        .id;
    let run = env.wait_finished(id, WAIT).await;
    assert_eq!(run.status, "failed");
    let error = run.error.unwrap_or_default();
    assert!(
        error.contains(&format!(
            "mongo database {name} exists and is not Landlord's"
        )),
        "{error}"
    );
    rollback_run(&env.pool, id, env.cfg.notify.outbox())
        .await
        .unwrap();
    assert_eq!(env.wait_finished(id, WAIT).await.status, "compensated");
    let left = db
        .collection::<Document>("theirs")
        .count_documents(doc! {})
        .await
        .unwrap();
    assert_eq!(left, 1, "left alone");
    worker.shutdown().await;
    db.drop().await.unwrap();
}
