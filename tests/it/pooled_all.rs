//! Three tenants on the built-in `standard` plan, fully pooled (an
//! organization, a schema, shared Mongo and Qdrant, a prefix of the shared
//! bucket): the middle one rolled back, the third hard-deprovisioned, and
//! the first untouched on every server — members, rows, documents, points
//! and objects counted before and after.

use crate::harness::TestEnv;
use crate::pooled::{connect_as, pool_db, scalar, schema_exists};
use crate::probe::{Probe, SharedRealm};
use crate::qdrant_shared::Qdrant;
use crate::storage_prefix::{CredentialsApi, S3};
use landlord_shared::actions::{DeprovisionMode, rollback_run, start_deprovision};
use landlord_shared::model::{AdminContact, ProvisionParams};
use mongodb::bson::{Document, doc};
use rusty_s3::Credentials;
use secrecy::ExposeSecret;
use serde_json::json;
use std::time::Duration;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(180);

fn standard(tenant: &str) -> ProvisionParams {
    ProvisionParams {
        plan: Some("standard".into()),
        domains: vec![format!("{tenant}.example.com")],
        admin: Some(AdminContact {
            email: format!("admin@{tenant}.example.com"),
            first_name: "Pooled".into(),
            last_name: "Admin".into(),
        }),
    }
}

/// The servers' shared places and clients to look into them.
struct Pool<'a> {
    env: &'a TestEnv,
    realm: SharedRealm<'a>,
    qdrant: Qdrant,
    s3: S3,
    storage: CredentialsApi,
}

/// What a tenant holds on every server.
#[derive(Debug, PartialEq)]
struct Holdings {
    members: Vec<String>,
    client: bool,
    schema: bool,
    role: bool,
    rows: Option<i64>,
    documents: u64,
    points: u64,
    objects: Vec<String>,
    secrets: i64,
}

impl Pool<'_> {
    async fn tenant_id(&self, tenant: &str) -> Uuid {
        sqlx::query_scalar("SELECT id FROM tenants WHERE name = $1")
            .bind(tenant)
            .fetch_one(&self.env.pool)
            .await
            .unwrap()
    }

    /// The tenant's own data in every shared place, written as its
    /// application would; `objects` with the tenant's own key.
    async fn write(&self, tenant: &str, n: u64) {
        let env = self.env;
        let id = self.tenant_id(tenant).await.to_string();
        let mut conn = connect_as(env, tenant, &pool_db(env)).await.unwrap();
        sqlx::raw_sql("INSERT INTO docbasket (name) VALUES ('a'), ('b')")
            .execute(&mut conn)
            .await
            .unwrap();
        sqlx::Connection::close(conn).await.unwrap();
        let docs = self
            .realm
            .probe
            .mongo
            .database(&format!("{}_shared", env.prefix))
            .collection::<Document>("notes");
        docs.insert_many([
            doc! { "tenant_id": &id, "n": 1 },
            doc! { "tenant_id": &id, "n": 2 },
        ])
        .await
        .unwrap();
        let size = env.cfg.qdrant.as_ref().unwrap().vector_size as usize;
        self.qdrant
            .upsert(
                &self.collection(),
                json!([{ "id": n, "vector": vec![0.5; size], "payload": { "tenant_id": id } }]),
            )
            .await;
        let (creds, _) = self.storage.creds(tenant).await;
        assert_eq!(
            self.s3.put(&creds, &format!("{tenant}/report.pdf")).await,
            200
        );
    }

    fn collection(&self) -> String {
        format!("{}_shared_standard", self.env.prefix)
    }

    async fn holdings(&self, tenant: &str, tenant_id: &str) -> Holdings {
        let env = self.env;
        let members = match self.realm.org(tenant).await {
            Some(org) => self.realm.members(&org).await,
            None => vec![],
        };
        let role = env.role_exists(tenant).await;
        // Its rows as it sees them, logged in with its own password.
        let rows = match role {
            true => match connect_as(env, tenant, &pool_db(env)).await {
                Ok(mut conn) => scalar(&mut conn, "SELECT count(*) FROM docbasket")
                    .await
                    .ok(),
                Err(_) => None,
            },
            false => None,
        };
        let documents = self
            .realm
            .probe
            .mongo
            .database(&format!("{}_shared", env.prefix))
            .collection::<Document>("notes")
            .count_documents(doc! { "tenant_id": tenant_id })
            .await
            .unwrap();
        let s3 = env.cfg.s3.as_ref().unwrap();
        let admin = Credentials::new(
            s3.access_key.clone(),
            s3.secret_key.expose_secret().to_owned(),
        );
        let (status, objects) = self.s3.list(&admin, &format!("{tenant}/")).await;
        assert_eq!(status, 200);
        Holdings {
            members,
            client: self.realm.client(tenant).await,
            schema: schema_exists(env, &format!("tenant_{tenant}")).await,
            role,
            rows,
            documents,
            points: self.qdrant.count(&self.collection(), tenant_id).await,
            objects,
            secrets: env
                .count(
                    "SELECT count(*) FROM secrets WHERE ref LIKE '%' || $1 || '%'",
                    tenant,
                )
                .await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_standard_tenants_rolled_back_and_deprovisioned_leave_the_first_untouched() {
    let env = TestEnv::full_stack(&[]).await;
    let probe = Probe::new(&env).await;
    let pool = Pool {
        env: &env,
        realm: SharedRealm {
            probe: &probe,
            realm: format!("{}_shared", env.prefix),
        },
        qdrant: Qdrant {
            url: env.cfg.qdrant.as_ref().unwrap().url.clone(),
            http: reqwest::Client::new(),
        },
        s3: S3::new(&env, &format!("{}-shared-files", env.prefix)),
        storage: CredentialsApi::start(&env).await,
    };
    let worker = env.spawn_worker().await;
    env.provision_ok("first", &standard("first"), WAIT).await;
    pool.write("first", 1).await;
    let first_id = pool.tenant_id("first").await.to_string();
    let before = pool.holdings("first", &first_id).await;
    assert_eq!(before.members, ["admin@first.example.com"]);
    assert!(before.client && before.schema && before.role);
    assert!(before.rows.is_some_and(|n| n >= 2), "{before:?}");
    assert_eq!(
        (before.documents, before.points, before.secrets),
        (2, 1, 2),
        "first holds its own on every server (identity and postgres secrets; storage keeps none)"
    );
    let marker = format!("first/.landlord-tenant-{first_id}");
    assert_eq!(before.objects, [marker.as_str(), "first/report.pdf"]);
    worker.shutdown().await;

    // The middle one fails at its last resource step, with data written
    // meanwhile, and is rolled back.
    let failing = env
        .spawn_worker_with(&[("LANDLORD_FAULTS", "storage:permanent")])
        .await;
    let middle = env.start_with("middle", &standard("middle")).await.run;
    assert_eq!(env.wait_finished(middle.id, WAIT).await.status, "failed");
    failing.shutdown().await;
    let middle_id = pool.tenant_id("middle").await.to_string();
    assert!(pool.holdings("middle", &middle_id).await.schema);
    let worker = env.spawn_worker().await;
    rollback_run(&env.pool, middle.id, env.cfg.notify.outbox())
        .await
        .unwrap();
    let rolled = env.wait_finished(middle.id, WAIT).await;
    assert_eq!(rolled.status, "compensated", "{:?}", rolled.error);

    env.provision_ok("third", &standard("third"), WAIT).await;
    pool.write("third", 3).await;
    let third_id = pool.tenant_id("third").await.to_string();
    assert_eq!(pool.holdings("third", &third_id).await.points, 1);
    let hard = start_deprovision(&env.pool, &env.key("third"), DeprovisionMode::Hard, true)
        .await
        .unwrap()
        .run;
    let hard = env.wait_finished(hard.id, WAIT).await;
    assert_eq!(hard.status, "completed", "{:?}", hard.error);
    worker.shutdown().await;

    let nothing = Holdings {
        members: vec![],
        client: false,
        schema: false,
        role: false,
        rows: None,
        documents: 0,
        points: 0,
        objects: vec![],
        secrets: 0,
    };
    assert_eq!(pool.holdings("middle", &middle_id).await, nothing, "middle");
    assert_eq!(pool.holdings("third", &third_id).await, nothing, "third");
    assert!(pool.realm.org("middle").await.is_none());
    assert_eq!(
        pool.holdings("first", &first_id).await,
        before,
        "first is untouched"
    );
    probe
        .kc
        .delete(&format!("/{}", pool.realm.realm))
        .await
        .unwrap();
}
