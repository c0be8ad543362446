//! Removes a test env's Keycloak realms when it ends. Every realm costs
//! Keycloak on every later call (the master realm gains a client and roles
//! per realm), so a suite that leaves its realms slows itself down as it
//! goes, and a kept stack grows by about sixty a run.

use std::collections::HashMap;

/// The admin API of the stack's Keycloak, from a test env's variables;
/// `None` for an env without Keycloak.
pub struct Admin {
    base: String,
    user: String,
    password: String,
    http: reqwest::Client,
}

impl Admin {
    pub fn from_vars(vars: &HashMap<String, String>) -> Option<Self> {
        Some(Self {
            base: vars
                .get("KEYCLOAK_BASE_URL")?
                .trim_end_matches('/')
                .to_owned(),
            user: vars.get("KEYCLOAK_ADMIN_USERNAME")?.clone(),
            password: vars.get("KEYCLOAK_ADMIN_PASSWORD")?.clone(),
            http: reqwest::Client::new(),
        })
    }

    async fn token(&self) -> reqwest::Result<String> {
        let answer: serde_json::Value = self
            .http
            .post(format!(
                "{}/realms/master/protocol/openid-connect/token",
                self.base
            ))
            .form(&[
                ("client_id", "admin-cli"),
                ("grant_type", "password"),
                ("username", &self.user),
                ("password", &self.password),
            ])
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        Ok(answer["access_token"]
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }

    /// Deletes every realm named `{prefix}-…` or `{prefix}_…` (tenant
    /// realms, the shared realm, a test's own), all at once: one by one a
    /// delete takes seconds of mostly waiting.
    pub async fn delete_realms_of(&self, prefix: &str) -> reqwest::Result<usize> {
        let token = self.token().await?;
        let realms: Vec<serde_json::Value> = self
            .http
            .get(format!(
                "{}/admin/realms?briefRepresentation=true",
                self.base
            ))
            .bearer_auth(&token)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let ours: Vec<String> = realms
            .iter()
            .filter_map(|r| r["realm"].as_str())
            .filter(|r| {
                r.strip_prefix(prefix)
                    .is_some_and(|rest| rest.starts_with(['-', '_']))
            })
            .map(str::to_owned)
            .collect();
        let deletes = ours.iter().map(|realm| {
            self.http
                .delete(format!("{}/admin/realms/{realm}", self.base))
                .bearer_auth(&token)
                .send()
        });
        for answer in futures::future::join_all(deletes).await {
            // Gone already (the test removed it) is fine.
            let answer = answer?;
            if answer.status() != reqwest::StatusCode::NOT_FOUND {
                answer.error_for_status()?;
            }
        }
        Ok(ours.len())
    }
}
