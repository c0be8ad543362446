//! Typed configuration, read once at start-up from the environment.
//!
//! Variable names and defaults follow seed 000; `LANDLORD_*` variables are
//! this engine's own knobs.

use crate::faults::{Fault, parse_faults};
use crate::tenant::NamePrefix;
use secrecy::SecretString;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} is required")]
    Missing(&'static str),
    #[error("{name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

#[derive(Debug, Clone)]
pub struct Config {
    pub master_database_url: String,
    /// Where tenant databases are created; the postgres and migrate steps are
    /// skipped when unset.
    pub postgres_admin_url: Option<String>,
    pub mongodb_admin_uri: Option<String>,
    pub qdrant: Option<QdrantConfig>,
    pub keycloak: Option<KeycloakConfig>,
    /// S3 bucket mode for the storage step; folder mode when unset.
    pub s3: Option<S3Config>,
    pub notify: NotifyConfig,
    pub name_prefix: NamePrefix,
    pub tenant_storage_root: PathBuf,
    pub rollback_on_failure: bool,
    /// Total attempts of a step, the first included.
    pub retry_attempts: u32,
    pub retry_delay: Duration,
    pub step_timeout: Duration,
    pub heartbeat_interval: Duration,
    pub missed_heartbeats: usize,
    pub worker_concurrency: usize,
    pub poll_interval: Duration,
    /// 32-byte key (base64) for the secret store.
    pub secret_key: Option<SecretString>,
    pub faults: Vec<Fault>,
    /// Where a worker serves `GET /metrics` (`LANDLORD_METRICS_BIND`,
    /// host:port); no listener when unset.
    pub metrics_bind: Option<String>,
    /// `CONNECTION LIMIT` of each tenant's Postgres role
    /// (`LANDLORD_TENANT_CONNECTION_LIMIT`, default 20).
    pub tenant_connection_limit: u32,
}

#[derive(Debug, Clone)]
pub struct KeycloakConfig {
    pub base_url: String,
    pub admin_username: String,
    pub admin_password: SecretString,
    pub client_id: String,
    /// With a secret, the admin token comes from client credentials.
    pub client_secret: Option<SecretString>,
    /// Realm template JSON; the built-in `deploy/keycloak/realm-template.json`
    /// when unset.
    pub realm_template_path: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct QdrantConfig {
    pub url: String,
    pub api_key: Option<SecretString>,
    pub vector_size: u64,
    pub distance: String,
}

#[derive(Debug, Clone)]
pub struct S3Config {
    pub endpoint: String,
    pub region: String,
    pub access_key: String,
    pub secret_key: SecretString,
}

#[derive(Debug, Clone)]
pub struct NotifyConfig {
    /// Generic webhook, signed with HMAC-SHA256 when a secret is set.
    pub webhook_url: Option<String>,
    pub webhook_secret: Option<SecretString>,
    /// Novu-style trigger API (`POST {url}/v1/events/trigger`).
    pub novu_api_url: Option<String>,
    pub novu_api_key: Option<SecretString>,
    pub attempts: u32,
    pub support_email: String,
    /// URL templates; `{tenant}` is replaced by the tenant key.
    pub app_plane_url: String,
    pub admin_portal_url: String,
}

/// Qdrant's distance names, as its API spells them.
fn parse_distance(raw: Option<&str>) -> Result<String, ConfigError> {
    let raw = raw.unwrap_or("Cosine");
    ["Cosine", "Euclid", "Dot", "Manhattan"]
        .iter()
        .find(|d| d.eq_ignore_ascii_case(raw))
        .map(|d| (*d).to_owned())
        .ok_or_else(|| ConfigError::Invalid {
            name: "QDRANT_DISTANCE",
            reason: format!("expected Cosine, Euclid, Dot or Manhattan, got '{raw}'"),
        })
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Builds the config from any key lookup, so tests need not touch the
    /// process environment.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        let parse_u64 = |name: &'static str, default: u64| -> Result<u64, ConfigError> {
            get(name).map_or(Ok(default), |v| {
                v.trim()
                    .parse()
                    .map_err(|e: std::num::ParseIntError| ConfigError::Invalid {
                        name,
                        reason: e.to_string(),
                    })
            })
        };
        let parse_bool = |name: &'static str| -> Result<bool, ConfigError> {
            match get(name).as_deref().map(str::trim) {
                None => Ok(false),
                Some("true" | "1" | "yes") => Ok(true),
                Some("false" | "0" | "no") => Ok(false),
                Some(other) => Err(ConfigError::Invalid {
                    name,
                    reason: format!("expected true or false, got '{other}'"),
                }),
            }
        };
        let prefix_raw = get("LANDLORD_NAME_PREFIX").unwrap_or_else(|| "freeflow".into());
        let name_prefix = NamePrefix::parse(&prefix_raw).map_err(|e| ConfigError::Invalid {
            name: "LANDLORD_NAME_PREFIX",
            reason: e.to_string(),
        })?;
        let retry_attempts = parse_u64("PROVISION_RETRY_ATTEMPTS", 3)?;
        if retry_attempts == 0 {
            return Err(ConfigError::Invalid {
                name: "PROVISION_RETRY_ATTEMPTS",
                reason: "must be at least 1".into(),
            });
        }
        let faults =
            parse_faults(get("LANDLORD_FAULTS").as_deref().unwrap_or("")).map_err(|reason| {
                ConfigError::Invalid {
                    name: "LANDLORD_FAULTS",
                    reason,
                }
            })?;
        Ok(Self {
            master_database_url: get("MASTER_DATABASE_URL")
                .ok_or(ConfigError::Missing("MASTER_DATABASE_URL"))?,
            postgres_admin_url: get("POSTGRES_ADMIN_URL"),
            mongodb_admin_uri: get("MONGODB_ADMIN_URI"),
            qdrant: match get("QDRANT_URL") {
                None => None,
                Some(url) => Some(QdrantConfig {
                    url: url.trim_end_matches('/').to_owned(),
                    api_key: get("QDRANT_API_KEY").map(SecretString::from),
                    vector_size: parse_u64("QDRANT_VECTOR_SIZE", 1536)?,
                    distance: parse_distance(get("QDRANT_DISTANCE").as_deref())?,
                }),
            },
            keycloak: get("KEYCLOAK_BASE_URL").map(|url| KeycloakConfig {
                base_url: url.trim_end_matches('/').to_owned(),
                admin_username: get("KEYCLOAK_ADMIN_USERNAME").unwrap_or_default(),
                admin_password: SecretString::from(
                    get("KEYCLOAK_ADMIN_PASSWORD").unwrap_or_default(),
                ),
                client_id: get("KEYCLOAK_ADMIN_CLIENT_ID").unwrap_or_else(|| "admin-cli".into()),
                client_secret: get("KEYCLOAK_ADMIN_CLIENT_SECRET").map(SecretString::from),
                realm_template_path: get("KEYCLOAK_REALM_TEMPLATE_PATH").map(PathBuf::from),
            }),
            s3: match get("S3_ENDPOINT") {
                None => None,
                Some(endpoint) => Some(S3Config {
                    endpoint,
                    region: get("S3_REGION").unwrap_or_else(|| "us-east-1".into()),
                    access_key: get("S3_ACCESS_KEY")
                        .ok_or(ConfigError::Missing("S3_ACCESS_KEY"))?,
                    secret_key: SecretString::from(
                        get("S3_SECRET_KEY").ok_or(ConfigError::Missing("S3_SECRET_KEY"))?,
                    ),
                }),
            },
            notify: NotifyConfig {
                webhook_url: get("WEBHOOK_URL"),
                webhook_secret: get("WEBHOOK_SECRET").map(SecretString::from),
                novu_api_url: get("NOVU_API_URL").map(|u| u.trim_end_matches('/').to_owned()),
                novu_api_key: get("NOVU_API_KEY").map(SecretString::from),
                attempts: u32::try_from(parse_u64("NOTIFY_RETRY_ATTEMPTS", 5)?.max(1)).unwrap_or(5),
                support_email: get("SUPPORT_EMAIL").unwrap_or_else(|| "support@example.com".into()),
                app_plane_url: get("APP_PLANE_URL")
                    .unwrap_or_else(|| "https://{tenant}.example.com".into()),
                admin_portal_url: get("ADMIN_PORTAL_URL")
                    .unwrap_or_else(|| "https://admin.example.com/tenants/{tenant}".into()),
            },
            name_prefix,
            tenant_storage_root: get("TENANT_STORAGE_ROOT")
                .unwrap_or_else(|| "storage/tenants".into())
                .into(),
            rollback_on_failure: parse_bool("ROLLBACK_ON_FAILURE")?,
            retry_attempts: retry_attempts.try_into().unwrap_or(u32::MAX),
            retry_delay: Duration::from_millis(parse_u64("PROVISION_RETRY_DELAY_MS", 1500)?),
            step_timeout: Duration::from_secs(parse_u64("LANDLORD_STEP_TIMEOUT_SECS", 300)?),
            heartbeat_interval: Duration::from_millis(parse_u64("LANDLORD_HEARTBEAT_MS", 1000)?),
            missed_heartbeats: parse_u64("LANDLORD_MISSED_HEARTBEATS", 3)?
                .clamp(1, 1000)
                .try_into()
                .unwrap_or(3),
            worker_concurrency: parse_u64("LANDLORD_WORKER_CONCURRENCY", 4)?
                .clamp(1, 1024)
                .try_into()
                .unwrap_or(4),
            poll_interval: Duration::from_millis(parse_u64("LANDLORD_POLL_INTERVAL_MS", 500)?),
            secret_key: get("LANDLORD_SECRET_KEY").map(SecretString::from),
            faults,
            metrics_bind: get("LANDLORD_METRICS_BIND"),
            tenant_connection_limit: parse_u64("LANDLORD_TENANT_CONNECTION_LIMIT", 20)?
                .min(i32::MAX.unsigned_abs().into())
                .try_into()
                .unwrap_or(20),
        })
    }

    /// How long a SIGKILLed worker's job waits before another worker takes it.
    pub fn orphan_timeout(&self) -> Duration {
        self.heartbeat_interval * u32::try_from(self.missed_heartbeats).unwrap_or(u32::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_follow_seed_000() {
        let cfg = from(&[("MASTER_DATABASE_URL", "postgres://x/y")]).unwrap();
        assert_eq!(cfg.retry_attempts, 3);
        assert_eq!(cfg.retry_delay, Duration::from_millis(1500));
        assert_eq!(cfg.tenant_storage_root, PathBuf::from("storage/tenants"));
        assert!(!cfg.rollback_on_failure);
        assert_eq!(cfg.name_prefix.as_str(), "freeflow");
        assert!(cfg.orphan_timeout() <= Duration::from_secs(10));
    }

    #[test]
    fn bad_values_are_named() {
        assert!(matches!(
            from(&[]),
            Err(ConfigError::Missing("MASTER_DATABASE_URL"))
        ));
        let err = from(&[
            ("MASTER_DATABASE_URL", "x"),
            ("ROLLBACK_ON_FAILURE", "maybe"),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("ROLLBACK_ON_FAILURE"));
    }

    #[test]
    fn tenant_connection_limit_defaults_to_20() {
        let cfg = from(&[("MASTER_DATABASE_URL", "x")]).unwrap();
        assert_eq!(cfg.tenant_connection_limit, 20);
        let cfg = from(&[
            ("MASTER_DATABASE_URL", "x"),
            ("LANDLORD_TENANT_CONNECTION_LIMIT", "5"),
        ])
        .unwrap();
        assert_eq!(cfg.tenant_connection_limit, 5);
        let err = from(&[
            ("MASTER_DATABASE_URL", "x"),
            ("LANDLORD_TENANT_CONNECTION_LIMIT", "-1"),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("LANDLORD_TENANT_CONNECTION_LIMIT"));
    }
}
