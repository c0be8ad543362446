//! Storage in prefix mode on the real SeaweedFS: tenants share a bucket,
//! each under `{tenant}/` with credentials that reach nothing else.

use crate::harness::TestEnv;
use landlord_shared::actions::{DeprovisionMode, rollback_run, start_deprovision};
use landlord_shared::model::ProvisionParams;
use landlord_shared::secrets::SecretStore;
use rusty_s3::actions::S3Action;
use rusty_s3::{Bucket, Credentials, UrlStyle};
use secrecy::ExposeSecret;
use serde_json::Value;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(120);
const SIGN: Duration = Duration::from_secs(60);

const CATALOGUE: &str = r#"
default = "prefix"

[plans.prefix]
tier = "standard"
steps = ["storage"]
[plans.prefix.storage]
mode = "prefix"
"#;

async fn provision(env: &TestEnv, tenant: &str) -> uuid::Uuid {
    env.provision_ok(tenant, &ProvisionParams::default(), WAIT)
        .await
}

pub struct S3 {
    http: reqwest::Client,
    bucket: Bucket,
}

impl S3 {
    pub fn new(env: &TestEnv, name: &str) -> Self {
        let s3 = env.cfg.s3.as_ref().unwrap();
        let bucket = Bucket::new(
            s3.endpoint.parse().unwrap(),
            UrlStyle::Path,
            name.to_owned(),
            s3.region.clone(),
        )
        .unwrap();
        Self {
            http: reqwest::Client::new(),
            bucket,
        }
    }

    pub async fn put(&self, creds: &Credentials, key: &str) -> u16 {
        let url = self.bucket.put_object(Some(creds), key).sign(SIGN);
        self.http
            .put(url)
            .body("x")
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    async fn get(&self, creds: &Credentials, key: &str) -> u16 {
        let url = self.bucket.get_object(Some(creds), key).sign(SIGN);
        self.http.get(url).send().await.unwrap().status().as_u16()
    }

    pub async fn list(&self, creds: &Credentials, prefix: &str) -> (u16, Vec<String>) {
        let mut list = self.bucket.list_objects_v2(Some(creds));
        if !prefix.is_empty() {
            list.with_prefix(prefix);
        }
        let resp = self.http.get(list.sign(SIGN)).send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        if status != 200 {
            return (status, vec![]);
        }
        let parsed = rusty_s3::actions::ListObjectsV2::parse_response(&text).unwrap();
        (status, parsed.contents.into_iter().map(|o| o.key).collect())
    }
}

/// The tenant's credentials, as the application reads them back.
pub async fn creds_of(env: &TestEnv, run: uuid::Uuid) -> (Credentials, Value) {
    let out = env.step(run, "storage").await.output.unwrap();
    let store = SecretStore::from_base64(env.cfg.secret_key.as_ref().unwrap()).unwrap();
    let secret = store
        .get(&env.pool, out["secret_ref"].as_str().unwrap())
        .await
        .unwrap();
    let (id, key) = secret.expose_secret().split_once(':').unwrap();
    assert_eq!(id, out["access_key_id"].as_str().unwrap());
    (Credentials::new(id.to_owned(), key.to_owned()), out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefix_tenants_share_a_bucket_each_with_credentials_for_its_prefix_only() {
    let dir = tempfile::tempdir().unwrap();
    let env = TestEnv::with_catalogue(&dir, CATALOGUE, true).await;
    let worker = env.spawn_worker().await;
    let (a, b) = tokio::join!(provision(&env, "filesa"), provision(&env, "filesb"));
    let (ca, out_a) = creds_of(&env, a).await;
    let (cb, _) = creds_of(&env, b).await;
    let bucket = format!("{}-shared-files", env.prefix);
    assert_eq!(out_a["bucket"], bucket.as_str());
    assert_eq!(out_a["prefix"], "filesa/");
    let s3 = S3::new(&env, &bucket);

    // A's keys reach A's prefix and nothing else.
    assert_eq!(s3.put(&ca, "filesa/doc.txt").await, 200);
    assert_eq!(s3.get(&ca, "filesa/doc.txt").await, 200);
    assert_eq!(s3.put(&cb, "filesb/doc.txt").await, 200);
    assert_eq!(
        s3.put(&ca, "filesb/evil.txt").await,
        403,
        "A writes under B"
    );
    assert_eq!(s3.get(&ca, "filesb/doc.txt").await, 403, "A reads B's");
    assert_eq!(s3.put(&ca, "root.txt").await, 403, "A writes at the root");
    let (status, keys) = s3.list(&ca, "filesa/").await;
    assert_eq!(status, 200);
    assert!(keys.iter().all(|k| k.starts_with("filesa/")), "{keys:?}");
    assert!(keys.contains(&"filesa/doc.txt".to_owned()), "{keys:?}");
    assert_eq!(s3.list(&ca, "").await.0, 403, "A lists the whole bucket");
    assert_eq!(s3.list(&ca, "filesb/").await.0, 403, "A lists B's prefix");

    // B goes: its objects and its user; A keeps everything.
    let hard = start_deprovision(&env.pool, &env.key("filesb"), DeprovisionMode::Hard, true)
        .await
        .unwrap()
        .run;
    let hard = env.wait_finished(hard.id, WAIT).await;
    assert_eq!(hard.status, "completed", "{:?}", hard.error);
    let admin = {
        let s3 = env.cfg.s3.as_ref().unwrap();
        Credentials::new(s3.access_key.clone(), s3.secret_key.expose_secret())
    };
    assert!(
        s3.list(&admin, "filesb/").await.1.is_empty(),
        "B's objects gone"
    );
    assert_eq!(
        s3.get(&cb, "filesb/doc.txt").await,
        403,
        "B's key no longer works"
    );
    assert_eq!(s3.get(&ca, "filesa/doc.txt").await, 200, "A untouched");
    assert!(
        s3.list(&admin, "filesa/")
            .await
            .1
            .contains(&"filesa/doc.txt".to_owned())
    );

    // Someone else's objects under the next tenant's prefix: refused, and
    // the rollback leaves them.
    assert_eq!(s3.put(&admin, "filesforeign/theirs.txt").await, 200);
    let id = env
        .start_with("filesforeign", &ProvisionParams::default())
        .await
        .run
        .id;
    let run = env.wait_finished(id, WAIT).await;
    assert_eq!(run.status, "failed");
    let error = run.error.unwrap_or_default();
    assert!(error.contains("prefix filesforeign/"), "{error}");
    rollback_run(&env.pool, id).await.unwrap();
    assert_eq!(env.wait_finished(id, WAIT).await.status, "compensated");
    assert_eq!(s3.get(&admin, "filesforeign/theirs.txt").await, 200);
    worker.shutdown().await;
}
