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
    pub qdrant_url: Option<String>,
    pub keycloak_base_url: Option<String>,
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
            qdrant_url: get("QDRANT_URL"),
            keycloak_base_url: get("KEYCLOAK_BASE_URL"),
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
}
