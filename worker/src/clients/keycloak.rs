//! Keycloak Admin REST API client: an admin token from the master realm
//! (password grant with `admin-cli`, or client credentials when a client
//! secret is set), refreshed before it expires and once more on a 401.

use super::http::unexpected;
use crate::clients::http::TracedSend;
use crate::step::StepError;
use landlord_shared::config::KeycloakConfig;
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

const ADMIN_TIMEOUT: Duration = Duration::from_secs(120);

pub struct Keycloak {
    cfg: KeycloakConfig,
    http: reqwest::Client,
    token: Mutex<Option<(SecretString, Instant)>>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: u64,
}

impl Keycloak {
    pub fn new(cfg: KeycloakConfig, http: reqwest::Client) -> Self {
        Self {
            cfg,
            http,
            token: Mutex::new(None),
        }
    }

    /// A realm import takes tens of seconds on a busy server.
    pub fn create_wait(&self) -> Duration {
        self.cfg.create_wait
    }

    pub fn base_url(&self) -> &str {
        &self.cfg.base_url
    }

    async fn fetch_token(&self) -> Result<(SecretString, Instant), StepError> {
        let url = format!(
            "{}/realms/master/protocol/openid-connect/token",
            self.cfg.base_url
        );
        let form: Vec<(&str, &str)> = match &self.cfg.client_secret {
            Some(secret) => vec![
                ("grant_type", "client_credentials"),
                ("client_id", &self.cfg.client_id),
                ("client_secret", secret.expose_secret()),
            ],
            None => vec![
                ("grant_type", "password"),
                ("client_id", &self.cfg.client_id),
                ("username", &self.cfg.admin_username),
                ("password", self.cfg.admin_password.expose_secret()),
            ],
        };
        let resp = self.http.post(url).form(&form).traced_send().await?;
        if !resp.status().is_success() {
            return Err(unexpected("keycloak admin token", resp).await);
        }
        let token: TokenResponse = resp.json().await?;
        // Renew 10 s early so a token never expires mid-request.
        let expires = Instant::now() + Duration::from_secs(token.expires_in.saturating_sub(10));
        Ok((SecretString::from(token.access_token), expires))
    }

    async fn bearer(&self, force: bool) -> Result<SecretString, StepError> {
        let mut cached = self.token.lock().await;
        match cached.as_ref() {
            Some((token, expires)) if !force && Instant::now() < *expires => Ok(token.clone()),
            _ => {
                let fresh = self.fetch_token().await?;
                let token = fresh.0.clone();
                *cached = Some(fresh);
                Ok(token)
            }
        }
    }

    /// Sends an admin request (with a longer time limit than other calls:
    /// creating a realm from the template takes tens of seconds on a busy
    /// Keycloak, and giving up early only makes the retry collide with the
    /// create still committing); a 401 (token revoked or expired early)
    /// gets one retry with a fresh token.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Response, StepError> {
        let build = |token: &SecretString| -> RequestBuilder {
            let req = self
                .http
                .request(
                    method.clone(),
                    format!("{}/admin/realms{path}", self.cfg.base_url),
                )
                .bearer_auth(token.expose_secret())
                .timeout(ADMIN_TIMEOUT);
            match body {
                Some(b) => req.json(b),
                None => req,
            }
        };
        let resp = build(&self.bearer(false).await?).traced_send().await?;
        if resp.status() != StatusCode::UNAUTHORIZED {
            return Ok(resp);
        }
        Ok(build(&self.bearer(true).await?).traced_send().await?)
    }

    /// GET returning JSON, `None` on 404.
    pub async fn get_json(&self, path: &str) -> Result<Option<Value>, StepError> {
        let resp = self.send(Method::GET, path, None).await?;
        match resp.status() {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => Ok(Some(resp.json().await?)),
            _ => Err(unexpected(&format!("GET {path}"), resp).await),
        }
    }

    /// Creates a resource; `Ok(false)` when it already existed (409).
    pub async fn create(&self, path: &str, body: &Value) -> Result<bool, StepError> {
        let resp = self.send(Method::POST, path, Some(body)).await?;
        match resp.status() {
            StatusCode::CONFLICT => Ok(false),
            s if s.is_success() => Ok(true),
            _ => Err(unexpected(&format!("POST {path}"), resp).await),
        }
    }

    /// Creates a resource: the new id (the last segment of `Location`),
    /// or `None` when it already existed (409).
    pub async fn create_located(
        &self,
        path: &str,
        body: &Value,
    ) -> Result<Option<String>, StepError> {
        let resp = self.send(Method::POST, path, Some(body)).await?;
        match resp.status() {
            StatusCode::CONFLICT => Ok(None),
            s if s.is_success() => location_id(&resp).map(Some).ok_or_else(|| {
                StepError::transient(format!("POST {path}: created, but no Location"))
            }),
            _ => Err(unexpected(&format!("POST {path}"), resp).await),
        }
    }

    /// Creates a realm; `Ok(false)` when Keycloak says it may already exist:
    /// 409, or 400 "Database operation failed" (a create racing another
    /// create of the same realm, one still committing). The caller looks.
    pub async fn create_realm(&self, body: &Value) -> Result<bool, StepError> {
        let resp = self.send(Method::POST, "", Some(body)).await?;
        match resp.status() {
            StatusCode::CONFLICT => Ok(false),
            s if s.is_success() => Ok(true),
            StatusCode::BAD_REQUEST => {
                let text = resp.text().await.unwrap_or_default();
                if text.contains("Database operation failed") {
                    return Ok(false);
                }
                Err(StepError::permanent(format!(
                    "POST realm: HTTP 400: {}",
                    text.chars().take(300).collect::<String>()
                )))
            }
            _ => Err(unexpected("POST realm", resp).await),
        }
    }

    pub async fn put(&self, path: &str, body: &Value) -> Result<(), StepError> {
        let resp = self.send(Method::PUT, path, Some(body)).await?;
        if resp.status().is_success() {
            return Ok(());
        }
        Err(unexpected(&format!("PUT {path}"), resp).await)
    }

    pub async fn post(&self, path: &str, body: &Value) -> Result<(), StepError> {
        let resp = self.send(Method::POST, path, Some(body)).await?;
        if resp.status().is_success() {
            return Ok(());
        }
        Err(unexpected(&format!("POST {path}"), resp).await)
    }

    /// Deletes; a missing resource is already deleted.
    pub async fn delete(&self, path: &str) -> Result<(), StepError> {
        let resp = self.send(Method::DELETE, path, None).await?;
        if resp.status().is_success() || resp.status() == StatusCode::NOT_FOUND {
            return Ok(());
        }
        Err(unexpected(&format!("DELETE {path}"), resp).await)
    }
}

/// The id of what a 201 created: the last segment of its `Location`.
pub fn location_id(resp: &Response) -> Option<String> {
    resp.headers()
        .get(reqwest::header::LOCATION)
        .and_then(|l| l.to_str().ok())
        .and_then(|l| l.rsplit('/').next())
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
}
