//! "Never touch what is not ours": for each resource kind, a foreign
//! resource with the tenant's name and real content is made directly on its
//! server; provisioning (with rollback, then without) fails at that step
//! naming it, hard deprovisioning leaves it alone, and it is still there
//! byte for byte while nothing of ours is left behind.

use crate::harness::TestEnv;
use crate::probe::Probe;
use landlord_shared::actions::{DeprovisionMode, retry_run, start_deprovision};
use landlord_shared::model::{AdminContact, ProvisionParams};
use landlord_shared::secrets::SecretStore;
use landlord_shared::start::start_provision;
use landlord_shared::tenant::{TenantNames, quote_ident, quote_literal};
use mongodb::bson::{Document, doc};
use rusty_s3::actions::{ListObjectsV2, S3Action};
use secrecy::ExposeSecret;
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::{Connection, PgConnection};
use std::path::Path;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(180);
/// Without Keycloak the run is planned with no identity step: a realm costs
/// seconds, and only the realm tests need one.
const NO_KEYCLOAK: &[(&str, &str)] = &[("KEYCLOAK_BASE_URL", "")];

fn params(tenant: &str) -> ProvisionParams {
    ProvisionParams {
        plan: Some("enterprise".into()),
        domains: vec![format!("{tenant}.example.com")],
        admin: Some(AdminContact {
            email: format!("admin@{tenant}.example.com"),
            first_name: "Own".into(),
            last_name: "Er".into(),
        }),
    }
}

fn names(env: &TestEnv, tenant: &str) -> TenantNames {
    TenantNames::new(&env.cfg.name_prefix, &env.key(tenant))
}

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Which of the tenant's resources exist on their servers, leaving out the
/// kinds in `except` (the foreign one), plus what the master DB still holds.
async fn leftovers(env: &TestEnv, probe: &Probe<'_>, tenant: &str, except: &[&str]) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    let mut seen = vec![
        ("keycloak_realm", probe.realm(tenant).await),
        ("postgres_database", env.database_exists(tenant).await),
        ("postgres_role", env.role_exists(tenant).await),
        ("mongo_database", probe.mongo_db(tenant).await),
        (
            "qdrant_collection",
            probe.collection(tenant).await.is_some(),
        ),
        ("storage_folder", env.folder_exists(tenant)),
    ];
    if env.cfg.s3.is_some() {
        seen.push(("s3_bucket", probe.bucket(tenant).await));
    }
    for (kind, exists) in seen {
        if exists && !except.contains(&kind) {
            found.push(kind.to_owned());
        }
    }
    let tmp = std::fs::read_dir(env.storage.path())
        .map(|d| {
            d.flatten()
                .filter(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .starts_with(".landlord-tmp-")
                })
                .count()
        })
        .unwrap_or(0);
    if tmp > 0 {
        found.push(format!("{tmp} temporary folders"));
    }
    for (what, sql) in [
        ("secrets", "SELECT count(*) FROM secrets"),
        (
            "live tenant_resources",
            "SELECT count(*) FROM tenant_resources WHERE deleted_at IS NULL",
        ),
        ("resource_claims", "SELECT count(*) FROM resource_claims"),
    ] {
        let n = env.count_all(sql).await;
        if n > 0 {
            found.push(format!("{n} {what}"));
        }
    }
    found
}

/// The proof shared by every kind: provision with rollback, provision
/// without, hard-deprovision; after each, `digest` of the foreign resource
/// is unchanged and nothing of ours is left (but what a failed run without
/// rollback keeps until the deprovisioning).
async fn prove_left_alone(
    env: &TestEnv,
    tenant: &str,
    step: &str,
    resource: &str,
    except: &[&str],
    digest: impl AsyncFn() -> String,
) {
    let probe = Probe::new(env).await;
    let key = env.key(tenant);
    let before = digest().await;
    let worker = env.spawn_worker().await;
    let refused = |msg: &str| msg.contains(resource) && msg.contains("is not Landlord's");

    let mut cfg = env.cfg.clone();
    cfg.rollback_on_failure = true;
    let run = start_provision(&env.pool, &cfg, &key, &params(tenant), Some("own-rollback"))
        .await
        .unwrap()
        .run;
    let run = env.wait_finished(run.id, WAIT).await;
    assert_eq!(run.status, "compensated", "{:?}", run.error);
    let error = run.error.clone().unwrap_or_default();
    assert!(refused(&error), "run error names {resource}: {error}");
    let logged = env
        .count(
            "SELECT count(*) FROM tenant_provision_logs
             WHERE status = 'error' AND message LIKE '%is not Landlord''s%' AND run_id::text = $1",
            run.id,
        )
        .await;
    assert!(logged >= 1, "the failure is in the provision log");
    assert_eq!(digest().await, before, "rollback touched {resource}");
    assert_eq!(
        leftovers(env, &probe, tenant, except).await,
        Vec::<String>::new()
    );

    cfg.rollback_on_failure = false;
    let run = start_provision(&env.pool, &cfg, &key, &params(tenant), Some("own-kept"))
        .await
        .unwrap()
        .run;
    let run = env.wait_finished(run.id, WAIT).await;
    assert_eq!(run.status, "failed", "{:?}", run.error);
    let failed = env.step(run.id, step).await;
    assert_eq!(failed.status, "failed");
    let error = failed.last_error.unwrap_or_default();
    assert!(refused(&error), "step {step} names {resource}: {error}");
    assert_eq!(failed.attempts, 1, "a foreign resource is not retried");
    assert_eq!(digest().await, before, "failed run touched {resource}");
    assert_eq!(
        env.tenant_status(tenant).await.as_deref(),
        Some("suspended")
    );

    let run = start_deprovision(&env.pool, &key, DeprovisionMode::Hard, true)
        .await
        .unwrap()
        .run;
    let run = env.wait_finished(run.id, WAIT).await;
    assert_eq!(run.status, "completed", "{:?}", run.error);
    let drop = env.step(run.id, &format!("drop_{step}")).await;
    let left: Vec<String> = drop.output.as_ref().unwrap()["left_alone"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        left.iter().any(|n| resource.ends_with(&format!(" {n}"))),
        "drop_{step} lists {resource} as left alone: {left:?}"
    );
    assert_eq!(
        digest().await,
        before,
        "hard deprovisioning touched {resource}"
    );
    assert_eq!(
        leftovers(env, &probe, tenant, except).await,
        Vec::<String>::new()
    );
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_realm_with_a_user_is_refused_and_never_deleted() {
    let env = TestEnv::full_stack(&[]).await;
    let probe = Probe::new(&env).await;
    let realm = names(&env, "ownkc").realm();
    let created = probe
        .kc
        .create(
            "",
            &json!({
                "realm": realm,
                "enabled": true,
                // Someone else's tenant-looking attribute: the name, not our id.
                "attributes": { "landlord.tenant": "ownkc" },
                "users": [{ "username": "someone", "enabled": true, "email": "someone@example.com" }],
            }),
        )
        .await
        .unwrap();
    assert!(created);
    let kc = &probe.kc;
    let digest = async || {
        let rep = kc.get_json(&format!("/{realm}")).await.unwrap();
        let users = kc.get_json(&format!("/{realm}/users")).await.unwrap();
        format!("{rep:?}{users:?}")
    };
    assert!(digest().await.contains("someone"));
    prove_left_alone(
        &env,
        "ownkc",
        "identity",
        &format!("realm {realm}"),
        &["keycloak_realm"],
        digest,
    )
    .await;
    kc.delete(&format!("/{realm}")).await.unwrap();
}

async fn exec(conn: &mut PgConnection, sql: String) {
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(conn)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_postgres_role_and_database_are_refused_and_never_dropped() {
    let env = TestEnv::full_stack(NO_KEYCLOAK).await;
    let name = names(&env, "ownpg").postgres_db().as_str().to_owned();
    let mut admin = PgConnection::connect(&crate::harness::admin_url())
        .await
        .unwrap();
    // An unrelated role of the same name, commented the way Landlord once
    // marked roles (by tenant name): that is not our mark.
    exec(
        &mut admin,
        format!(
            "CREATE ROLE {0} LOGIN PASSWORD 'theirs'; COMMENT ON ROLE {0} IS {1}",
            quote_ident(&name),
            quote_literal("landlord tenant ownpg")
        ),
    )
    .await;
    exec(
        &mut admin,
        format!("CREATE DATABASE {0} OWNER {0}", quote_ident(&name)),
    )
    .await;
    let url = {
        let base = crate::harness::admin_url();
        let (base, _) = base.rsplit_once('/').unwrap();
        format!("{base}/{name}")
    };
    let mut theirs = PgConnection::connect(&url).await.unwrap();
    exec(
        &mut theirs,
        "CREATE TABLE orders (id int PRIMARY KEY, item text);
         INSERT INTO orders SELECT g, 'item ' || g FROM generate_series(1, 50) g"
            .to_owned(),
    )
    .await;
    theirs.close().await.unwrap();
    let admin_pool = &env.admin;
    let digest = async || {
        let role: (String, bool, i32, Option<String>, Option<String>) = sqlx::query_as(
            "SELECT rolname::text, rolcanlogin, rolconnlimit, rolpassword,
                    shobj_description(oid, 'pg_authid')
             FROM pg_authid WHERE rolname = $1",
        )
        .bind(&name)
        .fetch_one(admin_pool)
        .await
        .unwrap();
        let settings: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole
             WHERE r.rolname = $1",
        )
        .bind(&name)
        .fetch_one(admin_pool)
        .await
        .unwrap();
        let db: (String, Option<String>, Option<String>) = sqlx::query_as(
            "SELECT pg_get_userbyid(datdba)::text, shobj_description(oid, 'pg_database'),
                    datacl::text FROM pg_database WHERE datname = $1",
        )
        .bind(&name)
        .fetch_one(admin_pool)
        .await
        .unwrap();
        let mut conn = PgConnection::connect(&url).await.unwrap();
        let rows: String = sqlx::query_scalar(
            "SELECT md5(string_agg(id || ':' || item, ',' ORDER BY id)) FROM orders",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap();
        conn.close().await.unwrap();
        format!("{role:?} {settings} {db:?} {rows}")
    };
    prove_left_alone(
        &env,
        "ownpg",
        "postgres",
        &format!("postgres role {name}"),
        &["postgres_database", "postgres_role"],
        digest,
    )
    .await;
    exec(
        &mut admin,
        format!("DROP DATABASE {0} WITH (FORCE)", quote_ident(&name)),
    )
    .await;
    exec(&mut admin, format!("DROP ROLE {}", quote_ident(&name))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_mongo_database_with_documents_is_refused_and_never_dropped() {
    let env = TestEnv::full_stack(NO_KEYCLOAK).await;
    let probe = Probe::new(&env).await;
    let name = names(&env, "ownmg").mongo_db();
    let db = probe.mongo.database(&name);
    let docs: Vec<Document> = (0..20)
        .map(|i| doc! { "_id": i, "text": format!("their document {i}") })
        .collect();
    db.collection::<Document>("notes")
        .insert_many(docs)
        .await
        .unwrap();
    // Landlord's old marker named the tenant, not its id: not our mark.
    db.collection::<Document>("_landlord")
        .insert_one(doc! { "_id": "tenant", "tenant": "ownmg" })
        .await
        .unwrap();
    let digest = async || {
        let mut colls = db.list_collection_names().await.unwrap();
        colls.sort();
        let mut out = format!("{colls:?}");
        for c in &colls {
            let mut cursor = db
                .collection::<Document>(c)
                .find(doc! {})
                .sort(doc! { "_id": 1 })
                .await
                .unwrap();
            while cursor.advance().await.unwrap() {
                out.push_str(&format!("{:?}", cursor.deserialize_current().unwrap()));
            }
        }
        out
    };
    assert!(digest().await.contains("their document 19"));
    prove_left_alone(
        &env,
        "ownmg",
        "mongo",
        &format!("mongo database {name}"),
        &["mongo_database"],
        digest,
    )
    .await;
    db.drop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_qdrant_collection_with_our_config_is_refused_and_never_deleted() {
    let env = TestEnv::full_stack(NO_KEYCLOAK).await;
    let probe = Probe::new(&env).await;
    let q = env.cfg.qdrant.clone().unwrap();
    let name = names(&env, "ownqd").qdrant_collection();
    // Exactly the config Landlord would create: still not ours.
    let created = probe
        .http
        .put(format!("{}/collections/{name}", q.url))
        .json(&json!({
            "vectors": { "size": q.vector_size, "distance": q.distance },
            "metadata": { "owner": "another app" },
        }))
        .send()
        .await
        .unwrap();
    assert!(created.status().is_success());
    let probe_ref = &probe;
    let digest = async || {
        let got = probe_ref
            .collection("ownqd")
            .await
            .expect("collection exists");
        got["result"].to_string()
    };
    assert!(digest().await.contains("another app"));
    prove_left_alone(
        &env,
        "ownqd",
        "qdrant",
        &format!("qdrant collection {name}"),
        &["qdrant_collection"],
        digest,
    )
    .await;
    probe
        .http
        .delete(format!("{}/collections/{name}", q.url))
        .send()
        .await
        .unwrap();
}

struct S3 {
    bucket: rusty_s3::Bucket,
    creds: rusty_s3::Credentials,
    http: reqwest::Client,
}

impl S3 {
    fn new(env: &TestEnv, name: String) -> Self {
        let s3 = env.cfg.s3.as_ref().unwrap();
        let bucket = rusty_s3::Bucket::new(
            s3.endpoint.parse().unwrap(),
            rusty_s3::UrlStyle::Path,
            name,
            s3.region.clone(),
        )
        .unwrap();
        let creds =
            rusty_s3::Credentials::new(s3.access_key.clone(), s3.secret_key.expose_secret());
        Self {
            bucket,
            creds,
            http: reqwest::Client::new(),
        }
    }

    const FOR: Duration = Duration::from_secs(60);

    async fn create(&self) {
        let url = self.bucket.create_bucket(&self.creds).sign(Self::FOR);
        let resp = self.http.put(url).send().await.unwrap();
        assert!(resp.status().is_success(), "{}", resp.text().await.unwrap());
    }

    async fn put(&self, key: &str, body: &[u8]) {
        let url = self
            .bucket
            .put_object(Some(&self.creds), key)
            .sign(Self::FOR);
        let resp = self.http.put(url).body(body.to_vec()).send().await.unwrap();
        assert!(resp.status().is_success());
    }

    async fn get(&self, key: &str) -> Option<Vec<u8>> {
        let url = self
            .bucket
            .get_object(Some(&self.creds), key)
            .sign(Self::FOR);
        let resp = self.http.get(url).send().await.unwrap();
        if resp.status() == 404 {
            return None;
        }
        assert!(resp.status().is_success());
        Some(resp.bytes().await.unwrap().to_vec())
    }

    async fn keys(&self) -> Vec<String> {
        let url = self
            .bucket
            .list_objects_v2(Some(&self.creds))
            .sign(Self::FOR);
        let text = self
            .http
            .get(url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let mut keys: Vec<String> = ListObjectsV2::parse_response(&text)
            .unwrap()
            .contents
            .into_iter()
            .map(|o| o.key)
            .collect();
        keys.sort();
        keys
    }

    /// Every key with the digest of its content.
    async fn digest(&self) -> String {
        let mut out = String::new();
        for key in self.keys().await {
            let body = self.get(&key).await.unwrap_or_default();
            out.push_str(&format!("{key}={} ", sha(&body)));
        }
        out
    }

    async fn remove(&self) {
        for key in self.keys().await {
            let url = self
                .bucket
                .delete_object(Some(&self.creds), &key)
                .sign(Self::FOR);
            self.http.delete(url).send().await.unwrap();
        }
        let url = self.bucket.delete_bucket(&self.creds).sign(Self::FOR);
        self.http.delete(url).send().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_bucket_with_objects_is_refused_and_never_emptied() {
    let env = TestEnv::full_stack(NO_KEYCLOAK).await;
    let name = names(&env, "owns3").bucket();
    let s3 = S3::new(&env, name.clone());
    s3.create().await;
    s3.put("report.csv", b"a,b\n1,2\n").await;
    s3.put("photos/cat.bin", &[7u8; 4096]).await;
    // Another tenant's marker: not ours either.
    s3.put(&format!(".landlord-tenant-{}", uuid::Uuid::nil()), b"")
        .await;
    let digest = async || s3.digest().await;
    assert!(digest().await.contains("photos/cat.bin"));
    prove_left_alone(
        &env,
        "owns3",
        "storage",
        &format!("S3 bucket {name}"),
        &["s3_bucket"],
        digest,
    )
    .await;
    s3.remove().await;
}

fn folder_digest(dir: &Path) -> String {
    fn walk(dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.push(format!("{}/", path.display()));
                walk(&path, out);
            } else {
                out.push(format!(
                    "{}={}",
                    path.display(),
                    sha(&std::fs::read(&path).unwrap())
                ));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, &mut out);
    out.sort();
    out.join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_folder_with_files_is_refused_and_never_removed() {
    // Folder mode: no S3 endpoint.
    let env = TestEnv::full_stack(&[NO_KEYCLOAK[0], ("S3_ENDPOINT", "")]).await;
    let dir = env.storage.path().join("ownfs");
    std::fs::create_dir_all(dir.join("docs")).unwrap();
    std::fs::write(dir.join("docs/contract.txt"), "their contract").unwrap();
    std::fs::write(dir.join("data.bin"), [3u8; 10_000]).unwrap();
    // What Landlord's folder marker used to hold (the name): not our mark.
    std::fs::write(dir.join(".landlord-tenant"), "ownfs").unwrap();
    let digest = async || folder_digest(&dir);
    assert!(digest().await.contains("contract.txt"));
    prove_left_alone(
        &env,
        "ownfs",
        "storage",
        &format!("folder {}", dir.display()),
        &["storage_folder"],
        digest,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_bucket_create_is_adopted_on_retry_only_with_our_claim() {
    let env = TestEnv::full_stack(NO_KEYCLOAK).await;
    let name = names(&env, "owncl").bucket();
    let s3 = S3::new(&env, name.clone());
    let faulty = env
        .spawn_worker_with(&[("LANDLORD_FAULTS", "storage:permanent")])
        .await;
    let run = env.start_with("owncl", &params("owncl")).await.run;
    let run = env.wait_finished(run.id, WAIT).await;
    assert_eq!(run.status, "failed");
    faulty.shutdown().await;
    let tenant_id = run.tenant_id.unwrap();

    // A crash between creating the bucket and writing its marker leaves an
    // empty bucket without a mark. Without our claim it is not ours.
    s3.create().await;
    let healthy = env.spawn_worker().await;
    retry_run(&env.pool, run.id).await.unwrap();
    let run = env.wait_finished(run.id, WAIT).await;
    assert_eq!(run.status, "failed");
    let error = env.step(run.id, "storage").await.last_error.unwrap();
    assert!(error.contains("is not Landlord's"), "{error}");
    assert_eq!(s3.keys().await, Vec::<String>::new(), "no marker written");

    // With our claim (written before the interrupted create) it is ours.
    sqlx::query(
        "INSERT INTO resource_claims (kind, name, tenant_id, run_id) VALUES ('s3_bucket', $1, $2, $3)",
    )
    .bind(&name)
    .bind(tenant_id)
    .bind(run.id)
    .execute(&env.pool)
    .await
    .unwrap();
    retry_run(&env.pool, run.id).await.unwrap();
    let run = env.wait_finished(run.id, WAIT).await;
    assert_eq!(run.status, "completed", "{:?}", run.error);
    assert_eq!(
        s3.keys().await,
        [format!(".landlord-tenant-{tenant_id}")],
        "our (empty) marker object was written"
    );

    // And hard deprovisioning removes it with its claim.
    let run = start_deprovision(&env.pool, &env.key("owncl"), DeprovisionMode::Hard, true)
        .await
        .unwrap()
        .run;
    let run = env.wait_finished(run.id, WAIT).await;
    assert_eq!(run.status, "completed", "{:?}", run.error);
    let probe = Probe::new(&env).await;
    assert!(!probe.bucket("owncl").await);
    assert_eq!(
        leftovers(&env, &probe, "owncl", &[]).await,
        Vec::<String>::new()
    );
    healthy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_role_cannot_connect_to_the_master_database_and_has_a_connection_limit() {
    let env = TestEnv::new(&[("LANDLORD_TENANT_CONNECTION_LIMIT", "7")]).await;
    let worker = env.spawn_worker().await;
    let run = env.start("ownrl").await.run;
    let run = env.wait_finished(run.id, WAIT).await;
    assert_eq!(run.status, "completed", "{:?}", run.error);
    worker.shutdown().await;

    let role = env.db_name("ownrl");
    let (limit, comment): (i32, Option<String>) = sqlx::query_as(
        "SELECT rolconnlimit, shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = $1",
    )
    .bind(&role)
    .fetch_one(&env.admin)
    .await
    .unwrap();
    assert_eq!(limit, 7);
    let tenant_id = run.tenant_id.unwrap();
    assert_eq!(comment, Some(format!("landlord tenant {tenant_id}")));
    let db_comment: Option<String> = sqlx::query_scalar(
        "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1",
    )
    .bind(&role)
    .fetch_one(&env.admin)
    .await
    .unwrap();
    assert_eq!(db_comment, Some(format!("landlord tenant {tenant_id}")));

    let store = SecretStore::from_base64(env.cfg.secret_key.as_ref().unwrap()).unwrap();
    let password = store
        .get(&env.pool, &format!("postgres/{role}"))
        .await
        .unwrap();
    let master_db = format!("{}_master", env.prefix);
    let opts = |db: &str| {
        crate::harness::admin_url()
            .parse::<sqlx::postgres::PgConnectOptions>()
            .unwrap()
            .username(&role)
            .password(password.expose_secret())
            .database(db)
    };
    let mut own = PgConnection::connect_with(&opts(&role))
        .await
        .expect("the tenant connects to its own database");
    // It cannot lift the block itself.
    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "ALTER ROLE CURRENT_USER IN DATABASE {} RESET ALL",
        quote_ident(&master_db)
    )))
    .execute(&mut own)
    .await;
    let reset = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "ALTER ROLE CURRENT_USER IN DATABASE {} RESET session_preload_libraries",
        quote_ident(&master_db)
    )))
    .execute(&mut own)
    .await;
    assert!(reset.is_err(), "the tenant reset its own block");
    own.close().await.unwrap();
    let master = PgConnection::connect_with(&opts(&master_db)).await;
    let Err(err) = master else {
        panic!("the tenant role connected to the master database");
    };
    assert!(err.to_string().contains("could not access file"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unmarked_realm_is_taken_over_only_with_our_claim() {
    let env = TestEnv::full_stack(&[]).await;
    let probe = Probe::new(&env).await;
    let realm = names(&env, "ownrc").realm();
    let faulty = env
        .spawn_worker_with(&[("LANDLORD_FAULTS", "identity:permanent")])
        .await;
    let run = env.start_with("ownrc", &params("ownrc")).await.run;
    let run = env.wait_finished(run.id, WAIT).await;
    assert_eq!(run.status, "failed");
    faulty.shutdown().await;
    let tenant_id = run.tenant_id.unwrap();

    // A realm without our attribute, as a create of ours still committing
    // (or one whose attribute was lost) would show. No claim: not ours.
    assert!(
        probe
            .kc
            .create("", &json!({ "realm": realm, "enabled": true }))
            .await
            .unwrap()
    );
    let healthy = env.spawn_worker().await;
    retry_run(&env.pool, run.id).await.unwrap();
    let run = env.wait_finished(run.id, WAIT).await;
    assert_eq!(run.status, "failed");
    let error = env.step(run.id, "identity").await.last_error.unwrap();
    assert!(error.contains("is not Landlord's"), "{error}");

    sqlx::query(
        "INSERT INTO resource_claims (kind, name, tenant_id, run_id)
         VALUES ('keycloak_realm', $1, $2, $3)",
    )
    .bind(&realm)
    .bind(tenant_id)
    .bind(run.id)
    .execute(&env.pool)
    .await
    .unwrap();
    retry_run(&env.pool, run.id).await.unwrap();
    let run = env.wait_finished(run.id, WAIT).await;
    assert_eq!(run.status, "completed", "{:?}", run.error);
    let rep = probe
        .kc
        .get_json(&format!("/{realm}"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        rep["attributes"]["landlord.tenant"],
        tenant_id.to_string().as_str()
    );

    let run = start_deprovision(&env.pool, &env.key("ownrc"), DeprovisionMode::Hard, true)
        .await
        .unwrap()
        .run;
    let run = env.wait_finished(run.id, WAIT).await;
    assert_eq!(run.status, "completed", "{:?}", run.error);
    assert_eq!(
        leftovers(&env, &probe, "ownrc", &[]).await,
        Vec::<String>::new()
    );
    healthy.shutdown().await;
}

/// A Keycloak that refuses every realm create as a duplicate (400 "Database
/// operation failed", then 409) but never shows the realm: what an earlier
/// attempt's create still committing looks like.
async fn keycloak_mid_create() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use axum::http::{Method, StatusCode, Uri};
    use std::sync::atomic::{AtomicUsize, Ordering};
    let posts = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = posts.clone();
    let app = axum::Router::new().fallback(move |method: Method, uri: Uri| {
        let counter = counter.clone();
        async move {
            let path = uri.path();
            if path.ends_with("/protocol/openid-connect/token") {
                return (
                    StatusCode::OK,
                    json!({ "access_token": "t", "expires_in": 300 }).to_string(),
                );
            }
            if method == Method::POST && path == "/admin/realms" {
                let n = counter.fetch_add(1, Ordering::SeqCst);
                let status = if n.is_multiple_of(2) {
                    StatusCode::BAD_REQUEST
                } else {
                    StatusCode::CONFLICT
                };
                return (
                    status,
                    json!({ "errorMessage": "Database operation failed" }).to_string(),
                );
            }
            if method == Method::GET && path.starts_with("/admin/realms/") {
                return (StatusCode::NOT_FOUND, String::new());
            }
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("{method} {path}"),
            )
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, posts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn realm_create_still_committing_is_waited_for_not_refused() {
    let (url, posts) = keycloak_mid_create().await;
    let env = TestEnv::new(&[
        ("KEYCLOAK_BASE_URL", &url),
        ("KEYCLOAK_ADMIN_USERNAME", "admin"),
        ("KEYCLOAK_ADMIN_PASSWORD", "admin"),
        ("PROVISION_RETRY_ATTEMPTS", "3"),
        ("PROVISION_RETRY_DELAY_MS", "50"),
        ("KEYCLOAK_CREATE_WAIT_MS", "1500"),
    ])
    .await;
    let worker = env.spawn_worker().await;
    let run = env.start_with("ownif", &params("ownif")).await.run;
    let run = env.wait_finished(run.id, WAIT).await;
    assert_eq!(run.status, "failed");
    let identity = env.step(run.id, "identity").await;
    let error = identity.last_error.unwrap_or_default();
    assert!(error.contains("still committing"), "{error}");
    assert!(!error.contains("not Landlord's"), "{error}");
    assert_eq!(identity.attempts, 3, "transient: every attempt was used");
    assert_eq!(posts.load(std::sync::atomic::Ordering::SeqCst), 3);
    // The name stays claimed: the realm, once committed, is known as ours.
    let claims = env
        .count_all("SELECT count(*) FROM resource_claims WHERE kind = 'keycloak_realm'")
        .await;
    assert_eq!(claims, 1);
    worker.shutdown().await;
}
