//! Looks at the real servers (Keycloak, Postgres, FerretDB, the Qdrant
//! stand-in, SeaweedFS) to see which of a tenant's resources exist.

use crate::harness::TestEnv;
use landlord_worker::clients::keycloak::Keycloak;
use rusty_s3::actions::S3Action;
use secrecy::ExposeSecret;
use serde_json::Value;
use std::time::Duration;

/// Looks at the real servers, independently of the run's own records.
pub struct Probe<'a> {
    pub env: &'a TestEnv,
    /// Every server of the test stack, whatever the environment under test
    /// has configured: a run planned without a backend still must not
    /// leave anything there.
    stack: landlord_shared::config::Config,
    pub kc: Keycloak,
    pub mongo: mongodb::Client,
    pub http: reqwest::Client,
}

impl<'a> Probe<'a> {
    pub async fn new(env: &'a TestEnv) -> Self {
        let http = reqwest::Client::new();
        let vars: std::collections::HashMap<String, String> = crate::harness::stack_vars()
            .into_iter()
            .chain([(
                "MASTER_DATABASE_URL".to_owned(),
                env.cfg.master_database_url.clone(),
            )])
            .collect();
        let stack = landlord_shared::config::Config::from_lookup(|k| vars.get(k).cloned())
            .expect("stack config");
        let kc = Keycloak::new(stack.keycloak.clone().unwrap(), http.clone());
        let mongo = mongodb::Client::with_uri_str(stack.mongodb_admin_uri.as_deref().unwrap())
            .await
            .unwrap();
        Self {
            env,
            stack,
            kc,
            mongo,
            http,
        }
    }

    pub fn names(&self, tenant: &str) -> landlord_shared::tenant::TenantNames {
        landlord_shared::tenant::TenantNames::new(&self.env.cfg.name_prefix, &self.env.key(tenant))
    }

    pub async fn realm(&self, tenant: &str) -> bool {
        self.kc
            .get_json(&format!("/{}", self.names(tenant).realm()))
            .await
            .unwrap()
            .is_some()
    }

    /// Mongo has a database only while it holds a collection. Asked this
    /// way, not with `listDatabases`: FerretDB sizes every database of its
    /// Postgres for that, over a second per call on the test cluster.
    pub async fn mongo_db(&self, tenant: &str) -> bool {
        let db = self.mongo.database(&self.names(tenant).mongo_db());
        !db.list_collection_names().await.unwrap().is_empty()
    }

    pub async fn collection(&self, tenant: &str) -> Option<serde_json::Value> {
        let q = self.stack.qdrant.as_ref().unwrap();
        let resp = self
            .http
            .get(format!(
                "{}/collections/{}",
                q.url,
                self.names(tenant).qdrant_collection()
            ))
            .send()
            .await
            .unwrap();
        if resp.status() == 404 {
            return None;
        }
        assert_eq!(resp.status(), 200);
        Some(resp.json().await.unwrap())
    }

    pub async fn bucket(&self, tenant: &str) -> bool {
        let s3 = self.stack.s3.as_ref().unwrap();
        let bucket = rusty_s3::Bucket::new(
            s3.endpoint.parse().unwrap(),
            rusty_s3::UrlStyle::Path,
            self.names(tenant).bucket(),
            s3.region.clone(),
        )
        .unwrap();
        let creds =
            rusty_s3::Credentials::new(s3.access_key.clone(), s3.secret_key.expose_secret());
        let url = bucket
            .head_bucket(Some(&creds))
            .sign(Duration::from_secs(60));
        let status = self.http.head(url).send().await.unwrap().status();
        assert!(status == 200 || status == 404, "HEAD bucket: {status}");
        status == 200
    }

    /// Every external resource of the tenant, by kind, as the servers see it.
    pub async fn everything(&self, tenant: &str) -> Vec<(&'static str, bool)> {
        vec![
            ("keycloak_realm", self.realm(tenant).await),
            ("postgres_database", self.env.database_exists(tenant).await),
            ("postgres_role", self.env.role_exists(tenant).await),
            ("mongo_database", self.mongo_db(tenant).await),
            ("qdrant_collection", self.collection(tenant).await.is_some()),
            ("s3_bucket", self.bucket(tenant).await),
        ]
    }
}

/// The deployment's shared realm (identity in organization mode).
pub struct SharedRealm<'a> {
    pub probe: &'a Probe<'a>,
    pub realm: String,
}

impl SharedRealm<'_> {
    pub async fn get(&self, path: &str) -> Option<Value> {
        self.probe
            .kc
            .get_json(&format!("/{}{path}", self.realm))
            .await
            .unwrap()
    }

    /// The organization named `tenant`, with its attributes.
    pub async fn org(&self, tenant: &str) -> Option<Value> {
        self.get(&format!(
            "/organizations?search={tenant}&exact=true&briefRepresentation=false"
        ))
        .await
        .and_then(|v| v.as_array().and_then(|a| a.first().cloned()))
    }

    /// Usernames of an organization's members.
    pub async fn members(&self, org: &Value) -> Vec<String> {
        let id = org["id"].as_str().unwrap();
        let list = self
            .get(&format!("/organizations/{id}/members"))
            .await
            .unwrap();
        list.as_array()
            .unwrap()
            .iter()
            .map(|m| m["username"].as_str().unwrap().to_owned())
            .collect()
    }

    pub async fn client(&self, tenant: &str) -> bool {
        self.get(&format!("/clients?clientId={tenant}-app"))
            .await
            .and_then(|v| v.as_array().map(|a| !a.is_empty()))
            .unwrap_or(false)
    }

    pub async fn user(&self, tenant: &str) -> bool {
        self.get(&format!(
            "/users?exact=true&username=admin@{tenant}.example.com"
        ))
        .await
        .and_then(|v| v.as_array().map(|a| !a.is_empty()))
        .unwrap_or(false)
    }
}
