//! Keycloak-issued JWTs, verified against the realm's JWKS.

use super::{Api, audit_rows};
use crate::harness::{TestEnv, spawn_api_with, stack_vars};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Just enough of Keycloak's admin REST API to make an operators' realm.
struct KeycloakRealm {
    base: String,
    realm: String,
    http: reqwest::Client,
    admin: (String, String),
}

impl KeycloakRealm {
    async fn create(realm: &str) -> Self {
        let vars: std::collections::HashMap<String, String> = stack_vars().into_iter().collect();
        let kc = Self {
            base: vars["KEYCLOAK_BASE_URL"].trim_end_matches('/').to_owned(),
            realm: realm.to_owned(),
            http: reqwest::Client::new(),
            admin: (
                vars["KEYCLOAK_ADMIN_USERNAME"].clone(),
                vars["KEYCLOAK_ADMIN_PASSWORD"].clone(),
            ),
        };
        kc.admin(Method::POST, "", json!({"realm": realm, "enabled": true}))
            .await;
        kc.admin(
            Method::POST,
            "/clients",
            json!({"clientId": "landlord-ops", "publicClient": true,
                   "directAccessGrantsEnabled": true, "enabled": true}),
        )
        .await;
        kc.admin(Method::POST, "/roles", json!({"name": "landlord-admin"}))
            .await;
        kc
    }

    /// A fresh master-realm admin token per call: on a busy Keycloak a
    /// realm create can outlast the token's one-minute lifespan.
    async fn admin_token(&self) -> String {
        let res = self
            .http
            .post(format!(
                "{}/realms/master/protocol/openid-connect/token",
                self.base
            ))
            .form(&[
                ("grant_type", "password"),
                ("client_id", "admin-cli"),
                ("username", self.admin.0.as_str()),
                ("password", self.admin.1.as_str()),
            ])
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success(), "admin login: {}", res.status());
        res.json::<Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    fn issuer(&self) -> String {
        format!("{}/realms/{}", self.base, self.realm)
    }

    async fn admin(&self, method: Method, path: &str, body: Value) -> Value {
        let url = if path.is_empty() {
            format!("{}/admin/realms", self.base)
        } else {
            format!("{}/admin/realms/{}{path}", self.base, self.realm)
        };
        let mut req = self
            .http
            .request(method.clone(), url)
            .bearer_auth(self.admin_token().await);
        if method != Method::GET && method != Method::DELETE {
            req = req.json(&body);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let text = res.text().await.unwrap();
        assert!(status.is_success(), "{method} {path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    async fn user(&self, username: &str, admin: bool) {
        self.admin(
            Method::POST,
            "/users",
            json!({"username": username, "enabled": true, "email": format!("{username}@example.com"),
                   "emailVerified": true, "firstName": "Op", "lastName": "Erator",
                   "credentials": [{"type": "password", "value": "pw-Secret-1", "temporary": false}]}),
        )
        .await;
        if admin {
            let users = self
                .admin(
                    Method::GET,
                    &format!("/users?username={username}&exact=true"),
                    Value::Null,
                )
                .await;
            let id = users[0]["id"].as_str().unwrap().to_owned();
            let role = self
                .admin(Method::GET, "/roles/landlord-admin", Value::Null)
                .await;
            self.admin(
                Method::POST,
                &format!("/users/{id}/role-mappings/realm"),
                json!([role]),
            )
            .await;
        }
    }

    /// The access token of a password grant, and the ID token beside it.
    async fn login(&self, username: &str) -> (String, String) {
        let res = self
            .http
            .post(format!("{}/protocol/openid-connect/token", self.issuer()))
            .form(&[
                ("grant_type", "password"),
                ("client_id", "landlord-ops"),
                ("username", username),
                ("password", "pw-Secret-1"),
                ("scope", "openid"),
            ])
            .send()
            .await
            .unwrap();
        let status = res.status();
        let body: Value = res.json().await.unwrap();
        assert!(status.is_success(), "login {username}: {status} {body}");
        let token = |k: &str| body[k].as_str().unwrap().to_owned();
        (token("access_token"), token("id_token"))
    }

    async fn delete(self) {
        let res = self
            .http
            .delete(format!("{}/admin/realms/{}", self.base, self.realm))
            .bearer_auth(self.admin_token().await)
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success(), "delete realm: {}", res.status());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keycloak_jwts_are_verified_against_the_issuers_keys() {
    let env = TestEnv::new(&[]).await;
    let kc = KeycloakRealm::create(&format!("{}-ops", env.prefix)).await;
    kc.user("operator", true).await;
    kc.user("viewer", false).await;
    let issuer = kc.issuer();
    let proc = spawn_api_with(
        &env,
        &[
            ("LANDLORD_AUTH_ISSUER", issuer.as_str()),
            ("LANDLORD_AUTH_AUDIENCE", "landlord-ops"),
        ],
    )
    .await;
    let (operator, id_token) = kc.login("operator").await;
    let api = Api::with(proc, Some(operator.clone()));

    assert_eq!(api.get("/tenants").await.status, StatusCode::OK);
    let res = api.create("jwtco").await;
    assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.body);
    let rows = audit_rows(&env, "tenant.create").await;
    assert_eq!(
        rows,
        [(
            "operator".to_owned(),
            "jwt".to_owned(),
            "jwtco".to_owned(),
            Some(202)
        )]
    );

    // A realm user without the role: authenticated, not allowed.
    let (viewer, _) = kc.login("viewer").await;
    api.as_token(Some(&viewer))
        .get("/tenants")
        .await
        .assert_problem(403, "forbidden");
    // A forged signature, or garbage.
    let mut forged = operator.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    api.as_token(Some(&forged))
        .get("/tenants")
        .await
        .assert_problem(401, "unauthorized");
    // The same user's ID token is not an access token.
    api.as_token(Some(&id_token))
        .get("/tenants")
        .await
        .assert_problem(401, "unauthorized");
    api.as_token(Some("not.a.jwt"))
        .get("/tenants")
        .await
        .assert_problem(401, "unauthorized");
    // Another issuer's token (the master realm's admin): unknown key and issuer.
    let master_token = kc.admin_token().await;
    api.as_token(Some(&master_token))
        .get("/tenants")
        .await
        .assert_problem(401, "unauthorized");

    // Another audience is refused.
    let strict = Api::with(
        spawn_api_with(
            &env,
            &[
                ("LANDLORD_AUTH_ISSUER", issuer.as_str()),
                ("LANDLORD_AUTH_AUDIENCE", "some-other-service"),
            ],
        )
        .await,
        Some(operator),
    );
    strict
        .get("/tenants")
        .await
        .assert_problem(401, "unauthorized");
    if let Some(p) = strict.proc {
        p.stop().await;
    }
    kc.delete().await;
}
