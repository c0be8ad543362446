//! A typed client for the Landlord API: one method per operation of the
//! OpenAPI document the server serves (its `operationId` in [`OPERATIONS`]),
//! typed answers, and refusals as the server's problem document.
//!
//! ```no_run
//! # async fn f() -> Result<(), landlord_client::Error> {
//! use landlord_client::{Client, models::CreateTenant};
//! let api = Client::new("http://127.0.0.1:8080", Some("ll_…".into()))?;
//! let (started, _new) = api
//!     .create_tenant(&CreateTenant { name: "acme".into(), ..Default::default() }, None)
//!     .await?;
//! let run = api.get_run(&started.run.id.to_string()).await?;
//! println!("{}", run.status);
//! # Ok(()) }
//! ```

pub mod models;

use models::*;
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The operations this client calls, by `operationId`; the document's
/// others are the probes and the executors' callbacks.
pub const OPERATIONS: &[&str] = &[
    "createTenant",
    "listTenants",
    "getTenant",
    "deleteTenant",
    "listTenantRuns",
    "listTenantConnections",
    "retryTenant",
    "rollbackTenant",
    "provisionPendingTenant",
    "issueStorageCredentials",
    "listRuns",
    "getRun",
    "cancelRun",
    "createLead",
    "verifyLead",
    "createLeadTenant",
];

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server refused: its problem document.
    #[error("{} ({}): {}", .0.title, .0.status, .0.detail)]
    Problem(Problem),
    /// The server could not be reached, or answered out of protocol.
    #[error("{0}")]
    Transport(String),
}

impl Error {
    /// The HTTP status of a refusal.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Problem(p) => Some(p.status),
            Self::Transport(_) => None,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// `soft` locks everyone out and keeps the data; `hard` drops it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteMode {
    Soft,
    Hard,
}

#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub status: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<u32>,
}

impl ListQuery {
    fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut q = Vec::new();
        if let Some(s) = &self.status {
            q.push(("status", s.clone()));
        }
        if let Some(c) = &self.cursor {
            q.push(("cursor", c.clone()));
        }
        if let Some(l) = self.limit {
            q.push(("limit", l.to_string()));
        }
        q
    }
}

/// A path segment from user input: tenant names and run ids are validated
/// by the server, but must not be able to change the path's shape.
fn seg(raw: &str) -> String {
    // URL parsers resolve "." and ".." segments away.
    let dot_segment = raw == "." || raw == "..";
    let mut out = String::with_capacity(raw.len());
    for b in raw.bytes() {
        let plain = b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'~');
        if plain || (b == b'.' && !dot_segment) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[derive(Clone)]
pub struct Client {
    base: String,
    token: Option<SecretString>,
    http: reqwest::Client,
}

impl Client {
    /// `token`: an `ll_` API token or a JWT; none for the signup calls.
    pub fn new(base: &str, token: Option<SecretString>) -> Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|e| Error::Transport(e.to_string()))?;
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            token,
            http,
        })
    }

    /// The same server with another credential (a lead's token, say).
    pub fn with_token(&self, token: Option<SecretString>) -> Self {
        Self {
            token,
            ..self.clone()
        }
    }

    /// One call: the answer's status and its body read as `T`, or the
    /// problem the server answered.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&(impl Serialize + ?Sized)>,
        headers: &[(&str, &str)],
    ) -> Result<(StatusCode, T)> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .query(query)
            .header("accept", "application/json");
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        if let Some(t) = &self.token {
            req = req.bearer_auth(t.expose_secret());
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| Error::Transport(e.to_string()))?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| Error::Transport(e.to_string()))?;
        if !status.is_success() {
            return Err(match serde_json::from_slice::<Problem>(&bytes) {
                Ok(p) => Error::Problem(p),
                Err(_) => Error::Transport(format!(
                    "HTTP {status}: {}",
                    String::from_utf8_lossy(&bytes)
                        .chars()
                        .take(200)
                        .collect::<String>()
                )),
            });
        }
        serde_json::from_slice(&bytes)
            .map(|t| (status, t))
            .map_err(|e| Error::Transport(format!("{path}: unexpected answer: {e}")))
    }

    async fn get<T: DeserializeOwned>(&self, path: &str, query: &[(&str, String)]) -> Result<T> {
        self.call(Method::GET, path, query, None::<&()>, &[])
            .await
            .map(|(_, t)| t)
    }

    async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> Result<T> {
        self.call(Method::POST, path, query, body, &[])
            .await
            .map(|(_, t)| t)
    }

    /// `createTenant`; the bool: a new run (202) rather than the existing one.
    pub async fn create_tenant(
        &self,
        body: &CreateTenant,
        idempotency_key: Option<&str>,
    ) -> Result<(TenantRun, bool)> {
        let key: Vec<(&str, &str)> = idempotency_key
            .map(|k| vec![("idempotency-key", k)])
            .unwrap_or_default();
        let (status, run) = self
            .call(Method::POST, "/tenants", &[], Some(body), &key)
            .await?;
        Ok((run, status == StatusCode::ACCEPTED))
    }

    /// `listTenants`: one page.
    pub async fn list_tenants(&self, q: &ListQuery) -> Result<TenantPage> {
        self.get("/tenants", &q.pairs()).await
    }

    /// `getTenant`: by UUID or name.
    pub async fn get_tenant(&self, id: &str) -> Result<TenantDetail> {
        self.get(&format!("/tenants/{}", seg(id)), &[]).await
    }

    /// `deleteTenant`.
    pub async fn delete_tenant(
        &self,
        id: &str,
        mode: DeleteMode,
        force: bool,
    ) -> Result<TenantRun> {
        let mode = match mode {
            DeleteMode::Soft => "soft",
            DeleteMode::Hard => "hard",
        };
        let query = [("mode", mode.to_owned()), ("force", force.to_string())];
        self.call(
            Method::DELETE,
            &format!("/tenants/{}", seg(id)),
            &query,
            None::<&()>,
            &[],
        )
        .await
        .map(|(_, t)| t)
    }

    /// `listTenantRuns`: newest first.
    pub async fn list_tenant_runs(&self, id: &str) -> Result<RunList> {
        self.get(&format!("/tenants/{}/runs", seg(id)), &[]).await
    }

    /// `listTenantConnections`; the secrets too with `credentials`.
    pub async fn list_tenant_connections(
        &self,
        id: &str,
        credentials: bool,
    ) -> Result<ConnectionList> {
        let query: Vec<(&str, String)> = if credentials {
            vec![("include", "credentials".into())]
        } else {
            vec![]
        };
        self.get(&format!("/tenants/{}/connections", seg(id)), &query)
            .await
    }

    /// `retryTenant`.
    pub async fn retry_tenant(&self, id: &str) -> Result<RunSummary> {
        self.post(&format!("/tenants/{}/retry", seg(id)), &[], None::<&()>)
            .await
    }

    /// `rollbackTenant`.
    pub async fn rollback_tenant(&self, id: &str) -> Result<RunSummary> {
        self.post(&format!("/tenants/{}/rollback", seg(id)), &[], None::<&()>)
            .await
    }

    /// `provisionPendingTenant`: a signup's tenant, on `plan` (the
    /// catalogue's default when `None`).
    pub async fn provision_pending_tenant(
        &self,
        id: &str,
        plan: Option<&str>,
    ) -> Result<TenantRun> {
        let body = serde_json::json!({ "plan": plan });
        self.post(&format!("/tenants/{}/provision", seg(id)), &[], Some(&body))
            .await
    }

    /// `issueStorageCredentials`: `secs` of life (the server's default
    /// when `None`).
    pub async fn issue_storage_credentials(
        &self,
        id: &str,
        secs: Option<u32>,
    ) -> Result<StorageCredentials> {
        let query: Vec<(&str, String)> = secs
            .map(|s| vec![("duration_secs", s.to_string())])
            .unwrap_or_default();
        self.post(
            &format!("/tenants/{}/storage-credentials", seg(id)),
            &query,
            None::<&()>,
        )
        .await
    }

    /// `listRuns`: one page.
    pub async fn list_runs(&self, q: &ListQuery) -> Result<RunPage> {
        self.get("/runs", &q.pairs()).await
    }

    /// `getRun`.
    pub async fn get_run(&self, id: &str) -> Result<RunDetail> {
        self.get(&format!("/runs/{}", seg(id)), &[]).await
    }

    /// `cancelRun`.
    pub async fn cancel_run(&self, id: &str, compensate: bool) -> Result<RunSummary> {
        self.post(
            &format!("/runs/{}/cancel", seg(id)),
            &[("compensate", compensate.to_string())],
            None::<&()>,
        )
        .await
    }

    /// `createLead` (public).
    pub async fn create_lead(&self, lead: &CreateLead) -> Result<LeadCreated> {
        self.post("/leads", &[], Some(lead)).await
    }

    /// `verifyLead`, with the verification token the lead was sent.
    pub async fn verify_lead(&self, id: &str, verification_token: &str) -> Result<LeadVerified> {
        self.with_token(Some(verification_token.into()))
            .post(&format!("/leads/{}/verify", seg(id)), &[], None::<&()>)
            .await
    }

    /// `createLeadTenant`, with the token `verify_lead` answered.
    pub async fn create_lead_tenant(
        &self,
        id: &str,
        lead_token: &str,
        key: &str,
        domains: &[String],
    ) -> Result<PendingTenant> {
        let body = serde_json::json!({ "key": key, "domains": domains });
        self.with_token(Some(lead_token.into()))
            .post(&format!("/leads/{}/tenants", seg(id)), &[], Some(&body))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_cannot_change_the_path() {
        assert_eq!(seg("acme"), "acme");
        assert_eq!(seg("../x"), "..%2Fx");
        assert_eq!(seg(".."), "%2E%2E");
        assert_eq!(seg("a b?c#"), "a%20b%3Fc%23");
    }
}
