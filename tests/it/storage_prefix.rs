//! Storage in prefix mode on the real SeaweedFS: tenants share a bucket,
//! each under `{tenant}/`, with short-lived credentials from the API (STS)
//! that reach nothing else.

use crate::harness::{ApiProcess, TestEnv, create_token, spawn_api};
use landlord_shared::actions::{DeprovisionMode, rollback_run, start_deprovision};
use landlord_shared::model::ProvisionParams;
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

/// The API a tenant's application asks for its storage credentials.
pub struct CredentialsApi {
    api: ApiProcess,
    token: String,
    http: reqwest::Client,
}

impl CredentialsApi {
    pub async fn start(env: &TestEnv) -> Self {
        Self {
            api: spawn_api(env).await,
            token: create_token(env, "system:*").await,
            http: reqwest::Client::new(),
        }
    }

    /// `POST /tenants/{tenant}/storage-credentials{query}`: status, body.
    pub async fn issue(&self, tenant: &str, query: &str) -> (u16, Value) {
        let resp = self
            .http
            .post(format!(
                "{}/tenants/{tenant}/storage-credentials{query}",
                self.api.url
            ))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// The tenant's credentials, as its application gets them.
    pub async fn creds(&self, tenant: &str) -> (Credentials, Value) {
        let (status, body) = self.issue(tenant, "").await;
        assert_eq!(status, 200, "{body}");
        let part = |k: &str| body[k].as_str().unwrap().to_owned();
        let creds = Credentials::new_with_token(
            part("access_key_id"),
            part("secret_access_key"),
            part("session_token"),
        );
        (creds, body)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefix_tenants_share_a_bucket_each_with_credentials_for_its_prefix_only() {
    let dir = tempfile::tempdir().unwrap();
    let env = TestEnv::with_catalogue(&dir, CATALOGUE, true).await;
    let worker = env.spawn_worker().await;
    let api = CredentialsApi::start(&env).await;
    let (a, _) = tokio::join!(provision(&env, "filesa"), provision(&env, "filesb"));
    let out = env.step(a, "storage").await.output.unwrap();
    assert!(out.get("secret_ref").is_none(), "the step keeps no secret");
    let (ca, got_a) = api.creds("filesa").await;
    let (cb, _) = api.creds("filesb").await;
    let bucket = format!("{}-shared-files", env.prefix);
    assert_eq!(got_a["bucket"], bucket.as_str());
    assert_eq!(got_a["prefix"], "filesa/");
    assert_eq!(
        got_a["endpoint"],
        env.cfg.s3.as_ref().unwrap().endpoint.as_str()
    );
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

    // The lifetime asked for, within STS's bounds; each issue audited
    // without its secret; a bad lifetime is refused before anything.
    let (status, short) = api.issue("filesa", "?duration_secs=900").await;
    assert_eq!(status, 200, "{short}");
    let expires: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(short["expires_at"].clone()).unwrap();
    let left = (expires - chrono::Utc::now()).num_seconds();
    assert!((840..=900).contains(&left), "{left} s left");
    let audited = "SELECT count(*) FROM audit_log WHERE action = 'tenant.storage_credentials'";
    assert_eq!(env.count_all(audited).await, 3);
    let leaked = "SELECT count(*) FROM audit_log WHERE details::text LIKE '%secret_access_key%'
                  OR details::text LIKE '%session_token%'";
    assert_eq!(env.count_all(leaked).await, 0);
    for bad in [
        "?duration_secs=899",
        "?duration_secs=43201",
        "?duration_secs=x",
    ] {
        let (status, problem) = api.issue("filesa", bad).await;
        assert_eq!(status, 400, "{bad}: {problem}");
        assert!(problem.to_string().contains("duration_secs"), "{problem}");
    }
    assert_eq!(
        env.count_all(audited).await,
        3,
        "refused requests issue nothing"
    );
    assert_eq!(api.issue("nosuchtenant", "").await.0, 404);

    // B goes: its objects, and no more credentials are issued for it. A
    // token issued before lives until it expires (STS cannot revoke); the
    // prefix it reaches is empty.
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
    let (status, problem) = api.issue("filesb", "").await;
    assert_eq!(status, 409, "{problem}");
    assert!(
        problem.to_string().contains("active tenants only"),
        "{problem}"
    );
    assert_eq!(s3.get(&cb, "filesb/doc.txt").await, 404, "B's object gone");
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
    rollback_run(&env.pool, id, env.cfg.notify.outbox())
        .await
        .unwrap();
    assert_eq!(env.wait_finished(id, WAIT).await.status, "compensated");
    assert_eq!(s3.get(&admin, "filesforeign/theirs.txt").await, 200);
    worker.shutdown().await;
}
