//! The API's own settings, read once at start-up from the environment.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `LANDLORD_AUTH_ISSUER` | unset: JWTs are refused, API tokens only | OIDC issuer, e.g. `https://kc/realms/ops`; its JWKS is fetched via discovery |
//! | `LANDLORD_AUTH_AUDIENCE` | unset: not checked | accepted when `aud` contains it or `azp` equals it (Keycloak access tokens name their client in `azp`) |
//! | `LANDLORD_AUTH_JWKS_URL` | from discovery, else `{issuer}/protocol/openid-connect/certs` | JWKS location override |
//! | `LANDLORD_AUTH_PERMISSION_CLAIM` | `permissions` | claim (dotted path) whose string, space-separated string or array names the caller's scopes (`tenants:read`, …, `system:*`) |
//! | `LANDLORD_AUTH_ROLE` | `landlord-admin` | realm role (`realm_access.roles`) that grants `system:*`; empty disables |
//! | `LANDLORD_API_BODY_LIMIT` | `65536` | request body limit in bytes |
//! | `LANDLORD_LEADS_PER_CLIENT_HOUR` | `20` | signups (`POST /leads`) per client address per hour |
//! | `LANDLORD_LEADS_PER_EMAIL_HOUR` | `3` | signups per email address per hour |

use crate::lead_token::LeadTokens;
use landlord_shared::backend::{Backend, PlannedStep};
use landlord_shared::catalogue::{Catalogue, Plan};
use landlord_shared::config::{ConfigError, S3Config};
use landlord_shared::plan::plan_provision_for;
use landlord_shared::secrets::{SecretError, SecretStore};
use landlord_shared::store::Outbox;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct ApiConfig {
    pub jwt: Option<JwtConfig>,
    pub body_limit: usize,
    /// Copied from the engine config: runs started here compensate on failure.
    pub rollback_on_failure: bool,
    /// A worker whose last heartbeat is older than this is not counted live
    /// by `/metrics` (the engine's orphan timeout).
    pub workers_live_within: std::time::Duration,
    /// The plans runs started here may follow (the engine config's).
    pub plans: Arc<Catalogue>,
    /// The backends this deployment is configured with (the engine
    /// config's), which decide each run's timeline with its plan.
    pub backends: Vec<Backend>,
    /// Where tenant files go: bucket or folder.
    pub storage: Backend,
    /// The engine config's S3: where storage `prefix` credentials are
    /// minted (STS) and which endpoint they are for.
    pub s3: Option<S3Config>,
    /// Signs and checks signup tokens, with a key derived from the engine
    /// config's `LANDLORD_SECRET_KEY`; `None` without one.
    pub lead_tokens: Option<LeadTokens>,
    /// The secret store (with a key being rotated out, if any), for
    /// credentials reads and signups; `None` without a key.
    pub secrets: Option<SecretStore>,
    pub lead_limits: LeadLimits,
    /// Whether events written here queue their delivery job (the engine
    /// config has a notification channel) or are left to a worker's sweep.
    pub outbox: Outbox,
}

/// Signups allowed per hour.
#[derive(Debug, Clone)]
pub struct LeadLimits {
    /// From one client address (`LANDLORD_LEADS_PER_CLIENT_HOUR`).
    pub per_client: i64,
    /// For one email address (`LANDLORD_LEADS_PER_EMAIL_HOUR`).
    pub per_email: i64,
}

#[derive(Debug, Clone)]
pub struct JwtConfig {
    pub issuer: String,
    pub audience: Option<String>,
    pub jwks_url: Option<String>,
    pub permission_claim: String,
    pub role: Option<String>,
}

/// The permission every admin endpoint needs (seed 001).
pub const ADMIN_PERMISSION: &str = "system:*";

impl ApiConfig {
    pub fn from_env(engine: &landlord_shared::config::Config) -> Result<Self, ConfigError> {
        let mut cfg = Self::from_lookup(|k| std::env::var(k).ok(), engine.rollback_on_failure)?;
        cfg.workers_live_within = engine.orphan_timeout();
        cfg.plans = engine.plans.clone();
        cfg.backends = Backend::ALL
            .into_iter()
            .filter(|b| b.configured(engine))
            .collect();
        cfg.storage = Backend::storage(engine);
        cfg.s3 = engine.s3.clone();
        cfg.outbox = engine.notify.outbox();
        cfg.lead_tokens = engine.secret_key.as_ref().and_then(LeadTokens::new);
        cfg.secrets = SecretStore::from_config(engine).map_err(|e| ConfigError::Invalid {
            name: match e {
                SecretError::BadPreviousKey => "LANDLORD_SECRET_KEY_PREVIOUS",
                _ => "LANDLORD_SECRET_KEY",
            },
            reason: e.to_string(),
        })?;
        Ok(cfg)
    }

    /// The timeline of a run started here on `plan`.
    pub fn timeline(&self, plan: &Plan) -> Vec<PlannedStep> {
        plan_provision_for(plan, |b| self.backends.contains(&b), self.storage)
    }

    pub fn from_lookup(
        get: impl Fn(&str) -> Option<String>,
        rollback_on_failure: bool,
    ) -> Result<Self, ConfigError> {
        let get = |k: &str| get(k).map(|v| v.trim().to_owned());
        let nonempty = |k: &str| get(k).filter(|v| !v.is_empty());
        let jwt = nonempty("LANDLORD_AUTH_ISSUER").map(|issuer| JwtConfig {
            issuer: issuer.trim_end_matches('/').to_owned(),
            audience: nonempty("LANDLORD_AUTH_AUDIENCE"),
            jwks_url: nonempty("LANDLORD_AUTH_JWKS_URL"),
            permission_claim: nonempty("LANDLORD_AUTH_PERMISSION_CLAIM")
                .unwrap_or_else(|| "permissions".into()),
            // Set but empty means "no role grants it".
            role: match get("LANDLORD_AUTH_ROLE") {
                None => Some("landlord-admin".into()),
                Some(r) if r.is_empty() => None,
                Some(r) => Some(r),
            },
        });
        let count = |name: &'static str, default: i64| match nonempty(name) {
            None => Ok(default),
            Some(v) => v
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or(ConfigError::Invalid {
                    name,
                    reason: format!("'{v}' is not a whole number of at least 1"),
                }),
        };
        let lead_limits = LeadLimits {
            per_client: count("LANDLORD_LEADS_PER_CLIENT_HOUR", 20)?,
            per_email: count("LANDLORD_LEADS_PER_EMAIL_HOUR", 3)?,
        };
        let body_limit = match nonempty("LANDLORD_API_BODY_LIMIT") {
            None => 64 * 1024,
            Some(v) => v
                .parse()
                .map_err(|e: std::num::ParseIntError| ConfigError::Invalid {
                    name: "LANDLORD_API_BODY_LIMIT",
                    reason: e.to_string(),
                })?,
        };
        Ok(Self {
            jwt,
            body_limit,
            rollback_on_failure,
            // The engine's default orphan timeout (1 s heartbeat × 3).
            workers_live_within: std::time::Duration::from_secs(3),
            // Without an engine config: the built-in plans, every backend,
            // files in folders.
            plans: Arc::new(Catalogue::builtin()),
            backends: Backend::ALL.to_vec(),
            storage: Backend::Folder,
            s3: None,
            lead_tokens: None,
            secrets: None,
            lead_limits,
            // Without an engine config: every event queues its job.
            outbox: Outbox::Queue,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(pairs: &[(&str, &str)]) -> ApiConfig {
        let map: HashMap<&str, &str> = pairs.iter().copied().collect();
        ApiConfig::from_lookup(|k| map.get(k).map(|v| (*v).to_owned()), false).unwrap()
    }

    #[test]
    fn defaults() {
        let cfg = from(&[]);
        assert!(cfg.jwt.is_none());
        assert_eq!(cfg.body_limit, 65536);
        let jwt = from(&[("LANDLORD_AUTH_ISSUER", "https://kc/realms/ops/")])
            .jwt
            .unwrap();
        assert_eq!(jwt.issuer, "https://kc/realms/ops");
        assert_eq!(jwt.permission_claim, "permissions");
        assert_eq!(jwt.role.as_deref(), Some("landlord-admin"));
        let jwt = from(&[("LANDLORD_AUTH_ISSUER", "x"), ("LANDLORD_AUTH_ROLE", "")])
            .jwt
            .unwrap();
        assert_eq!(jwt.role, None);
    }
}
