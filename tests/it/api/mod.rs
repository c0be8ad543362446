//! The admin API as a caller sees it: a real `landlord api` process, the
//! real master database, a worker running the runs. This file holds the
//! test client; the tests are in the files beside it.

mod auth;
mod connections;
mod create;
mod flows;
mod keycloak;
mod openapi;
mod plans;
mod scopes;
mod signup;
mod tiers;
mod typed_client;

use crate::harness::{ApiProcess, TestEnv, create_token, spawn_api};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::postgres::PgConnectOptions;
use std::time::Duration;
use uuid::Uuid;

pub(super) const WAIT: Duration = Duration::from_secs(60);

pub(super) struct Api {
    url: String,
    http: reqwest::Client,
    pub(super) token: Option<String>,
    /// The process, owned by the first handle only.
    pub(super) proc: Option<ApiProcess>,
}

pub(super) struct Res {
    pub(super) status: StatusCode,
    pub(super) headers: reqwest::header::HeaderMap,
    pub(super) body: Value,
}

impl Res {
    pub(super) fn problem_type(&self) -> &str {
        self.body["type"].as_str().unwrap_or("")
    }

    #[track_caller]
    pub(super) fn assert_problem(&self, status: u16, slug: &str) {
        assert_eq!(self.status.as_u16(), status, "{}", self.body);
        assert_eq!(
            self.headers["content-type"], "application/problem+json",
            "{}",
            self.body
        );
        assert_eq!(
            self.problem_type(),
            format!("https://landlord.dev/problems/{slug}"),
            "{}",
            self.body
        );
        assert_eq!(self.body["status"], status);
    }

    pub(super) fn fields(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|e| e["field"].as_str().unwrap().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Api {
    pub(super) async fn start(env: &TestEnv) -> Self {
        let token = create_token(env, "system:*").await;
        Self::with(spawn_api(env).await, Some(token))
    }

    pub(super) fn with(proc: ApiProcess, token: Option<String>) -> Self {
        Self {
            url: proc.url.clone(),
            http: reqwest::Client::new(),
            token,
            proc: Some(proc),
        }
    }

    /// Another caller of the same server.
    pub(super) fn as_token(&self, token: Option<&str>) -> Self {
        Self {
            url: self.url.clone(),
            http: self.http.clone(),
            token: token.map(str::to_owned),
            proc: None,
        }
    }

    pub(super) fn req(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let r = self.http.request(method, format!("{}{path}", self.url));
        match &self.token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    pub(super) async fn send(&self, r: reqwest::RequestBuilder) -> Res {
        let res = r.send().await.expect("request");
        let status = res.status();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Res {
            status,
            headers,
            body,
        }
    }

    pub(super) async fn get(&self, path: &str) -> Res {
        self.send(self.req(Method::GET, path)).await
    }

    pub(super) async fn post(&self, path: &str) -> Res {
        self.send(self.req(Method::POST, path)).await
    }

    pub(super) async fn post_json(&self, path: &str, body: &Value) -> Res {
        self.send(self.req(Method::POST, path).json(body)).await
    }

    pub(super) async fn create(&self, name: &str) -> Res {
        self.post_json("/tenants", &json!({ "name": name })).await
    }
}

/// Where and as whom the tenant's application logs in to its Postgres,
/// read from a connections answer with `include=credentials`: the user,
/// and options for a connection.
pub(crate) fn postgres_login(connections: &Value) -> (String, PgConnectOptions) {
    let pg = connections["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["service"] == "postgres")
        .unwrap_or_else(|| panic!("no postgres connection in {connections}"));
    let text = |k: &str| {
        pg[k]
            .as_str()
            .unwrap_or_else(|| panic!("no {k} in {pg}"))
            .to_owned()
    };
    let opts = PgConnectOptions::new()
        .host(&text("host"))
        .port(u16::try_from(pg["port"].as_i64().unwrap()).unwrap())
        .username(&text("user"))
        .password(&text("secret"))
        .database(&text("database"));
    (text("user"), opts)
}

pub(super) fn run_id(res: &Res) -> Uuid {
    let raw = res.body["run"]["id"]
        .as_str()
        .or(res.body["id"].as_str())
        .unwrap_or_else(|| panic!("no run id in {}", res.body));
    raw.parse().unwrap()
}

pub(super) async fn audit_rows(
    env: &TestEnv,
    action: &str,
) -> Vec<(String, String, String, Option<i32>)> {
    sqlx::query_as(
        "SELECT actor, actor_kind, target, status FROM audit_log WHERE action = $1 ORDER BY at",
    )
    .bind(action)
    .fetch_all(&env.pool)
    .await
    .unwrap()
}
