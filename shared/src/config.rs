//! Typed configuration, read once at start-up from the environment.
//!
//! Variable names and defaults follow seed 000; `LANDLORD_*` variables are
//! this engine's own knobs.

use crate::catalogue::Catalogue;
use crate::faults::{Fault, parse_faults};
use crate::tenant::NamePrefix;
use secrecy::{ExposeSecret, SecretString};
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
    /// The longest wait between attempts, before jitter
    /// (`PROVISION_RETRY_MAX_DELAY_MS`, default 300000).
    pub retry_max_delay: Duration,
    /// Attempts lost to workers that died running them, counted apart from
    /// `retry_attempts`: a crash is not a failed attempt.
    pub max_lost_attempts: u32,
    pub step_timeout: Duration,
    pub heartbeat_interval: Duration,
    pub missed_heartbeats: usize,
    pub worker_concurrency: usize,
    pub poll_interval: Duration,
    /// How often a worker looks for workers whose database session ended
    /// (`LANDLORD_SESSION_SWEEP_MS`, default 250; 0 leaves recovery to the
    /// heartbeat timeout alone). A SIGKILLed worker's jobs are back on the
    /// queue within a sweep, then picked up within a poll interval.
    pub session_sweep: Option<Duration>,
    /// Finished queue jobs, delivered events, finished runs' provision
    /// logs and never-verified leads older than this are pruned
    /// (`LANDLORD_RETENTION_DAYS`, default 30).
    pub retention: Duration,
    /// Audit rows are kept longer (`LANDLORD_AUDIT_RETENTION_DAYS`,
    /// default 365).
    pub audit_retention: Duration,
    /// How often a worker prunes (`LANDLORD_RETENTION_INTERVAL_SECS`,
    /// default 3600); `None` (0): never.
    pub retention_every: Option<Duration>,
    /// 32-byte key (base64) for the secret store.
    pub secret_key: Option<SecretString>,
    /// A key being rotated out: still read, never written
    /// (`LANDLORD_SECRET_KEY_PREVIOUS`).
    pub secret_key_previous: Option<SecretString>,
    pub faults: Vec<Fault>,
    /// Where a worker serves `GET /metrics` (`LANDLORD_METRICS_BIND`,
    /// host:port); no listener when unset.
    pub metrics_bind: Option<String>,
    /// The API's base URL as the executors of custom steps reach it
    /// (`LANDLORD_CALLBACK_URL`): they report accepted work there. Without
    /// it an executor must answer done or failed in the call itself.
    pub callback_url: Option<String>,
    /// `CONNECTION LIMIT` of each tenant's Postgres role
    /// (`LANDLORD_TENANT_CONNECTION_LIMIT`, default 20).
    pub tenant_connection_limit: u32,
    /// The plan catalogue (`LANDLORD_PLANS_PATH`, else the built-in one).
    pub plans: std::sync::Arc<Catalogue>,
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
    /// How long an attempt waits for a realm create Keycloak refused as a
    /// duplicate but does not show yet (an earlier create still committing).
    pub create_wait: std::time::Duration,
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
    /// The AWS-compatible STS API that mints a `prefix` tenant's scoped,
    /// short-lived credentials (`S3_STS_ENDPOINT`; SeaweedFS serves it on
    /// its S3 port).
    pub sts_endpoint: String,
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

impl NotifyConfig {
    /// The channels this process delivers events to.
    pub fn channels(&self) -> Vec<crate::store::Channel> {
        use crate::store::Channel;
        let mut channels = Vec::new();
        if self.webhook_url.is_some() {
            channels.push(Channel::Webhook);
        }
        if self.novu_api_url.is_some() && self.novu_api_key.is_some() {
            channels.push(Channel::Novu);
        }
        channels
    }

    /// How the events this process writes reach the channels.
    pub fn outbox(&self) -> crate::store::Outbox {
        if self.channels().is_empty() {
            crate::store::Outbox::Sweep
        } else {
            crate::store::Outbox::Queue
        }
    }
}

/// `scheme://user:***@host/...`: a URL with its password hidden.
pub fn mask_url(raw: &str) -> String {
    let Some((scheme, rest)) = raw.split_once("://") else {
        return raw.to_owned();
    };
    let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return raw.to_owned();
    };
    let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
    let sep = if path.is_empty() && !rest.contains('/') {
        ""
    } else {
        "/"
    };
    format!("{scheme}://{user}:***@{host}{sep}{path}")
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

/// The variables that hold secrets, each also readable from a file named by
/// `{NAME}_FILE` (how Kubernetes and Docker mount secrets).
pub const SECRET_VARS: &[(&str, &str)] = &[
    ("MASTER_DATABASE_URL", "MASTER_DATABASE_URL_FILE"),
    ("POSTGRES_ADMIN_URL", "POSTGRES_ADMIN_URL_FILE"),
    ("MONGODB_ADMIN_URI", "MONGODB_ADMIN_URI_FILE"),
    ("QDRANT_API_KEY", "QDRANT_API_KEY_FILE"),
    ("KEYCLOAK_ADMIN_PASSWORD", "KEYCLOAK_ADMIN_PASSWORD_FILE"),
    (
        "KEYCLOAK_ADMIN_CLIENT_SECRET",
        "KEYCLOAK_ADMIN_CLIENT_SECRET_FILE",
    ),
    ("S3_ACCESS_KEY", "S3_ACCESS_KEY_FILE"),
    ("S3_SECRET_KEY", "S3_SECRET_KEY_FILE"),
    ("LANDLORD_SECRET_KEY", "LANDLORD_SECRET_KEY_FILE"),
    (
        "LANDLORD_SECRET_KEY_PREVIOUS",
        "LANDLORD_SECRET_KEY_PREVIOUS_FILE",
    ),
    ("WEBHOOK_SECRET", "WEBHOOK_SECRET_FILE"),
    ("NOVU_API_KEY", "NOVU_API_KEY_FILE"),
];

/// The secrets given as files, read once: `{NAME}_FILE` names a file whose
/// content (one trailing newline dropped) is the value of `NAME`. Both set
/// is refused, as is a file that cannot be read.
fn secrets_from_files(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<std::collections::HashMap<&'static str, String>, ConfigError> {
    let set = |k: &str| get(k).filter(|v| !v.trim().is_empty());
    let mut out = std::collections::HashMap::new();
    for (name, file_var) in SECRET_VARS {
        let Some(path) = set(file_var) else { continue };
        if set(name).is_some() {
            return Err(ConfigError::Invalid {
                name: file_var,
                reason: format!("{name} is set too: give one of them"),
            });
        }
        let text = std::fs::read_to_string(path.trim()).map_err(|e| ConfigError::Invalid {
            name: file_var,
            reason: format!("cannot read {}: {e}", path.trim()),
        })?;
        let value = text.strip_suffix('\n').unwrap_or(&text);
        let value = value.strip_suffix('\r').unwrap_or(value);
        out.insert(*name, value.to_owned());
    }
    Ok(out)
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Builds the config from any key lookup, so tests need not touch the
    /// process environment.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let files = secrets_from_files(&get)?;
        let get = |k: &str| {
            files
                .get(k)
                .cloned()
                .or_else(|| get(k))
                .filter(|v| !v.trim().is_empty())
        };
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
        let keycloak_create_wait =
            std::time::Duration::from_millis(parse_u64("KEYCLOAK_CREATE_WAIT_MS", 90_000)?);
        let faults =
            parse_faults(get("LANDLORD_FAULTS").as_deref().unwrap_or("")).map_err(|reason| {
                ConfigError::Invalid {
                    name: "LANDLORD_FAULTS",
                    reason,
                }
            })?;
        let plans = match get("LANDLORD_PLANS_PATH") {
            None => Catalogue::builtin(),
            Some(path) => {
                Catalogue::load(path.trim().as_ref()).map_err(|e| ConfigError::Invalid {
                    name: "LANDLORD_PLANS_PATH",
                    reason: e.to_string(),
                })?
            }
        };
        Ok(Self {
            plans: std::sync::Arc::new(plans),
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
                create_wait: keycloak_create_wait,
            }),
            s3: match get("S3_ENDPOINT") {
                None => None,
                Some(endpoint) => Some(S3Config {
                    sts_endpoint: get("S3_STS_ENDPOINT").unwrap_or_else(|| endpoint.clone()),
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
            retry_max_delay: Duration::from_millis(parse_u64(
                "PROVISION_RETRY_MAX_DELAY_MS",
                300_000,
            )?),
            max_lost_attempts: u32::try_from(parse_u64("LANDLORD_MAX_LOST_ATTEMPTS", 10)?.max(1))
                .unwrap_or(u32::MAX),
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
            retention: Duration::from_secs(86_400 * parse_u64("LANDLORD_RETENTION_DAYS", 30)?),
            audit_retention: Duration::from_secs(
                86_400 * parse_u64("LANDLORD_AUDIT_RETENTION_DAYS", 365)?,
            ),
            retention_every: Some(parse_u64("LANDLORD_RETENTION_INTERVAL_SECS", 3600)?)
                .filter(|s| *s > 0)
                .map(Duration::from_secs),
            session_sweep: Some(parse_u64("LANDLORD_SESSION_SWEEP_MS", 250)?)
                .filter(|ms| *ms > 0)
                .map(Duration::from_millis),
            secret_key: get("LANDLORD_SECRET_KEY").map(SecretString::from),
            secret_key_previous: get("LANDLORD_SECRET_KEY_PREVIOUS").map(SecretString::from),
            faults,
            metrics_bind: get("LANDLORD_METRICS_BIND"),
            callback_url: get("LANDLORD_CALLBACK_URL")
                .map(|raw| match url::Url::parse(&raw) {
                    Ok(u) if matches!(u.scheme(), "http" | "https") && u.has_host() => {
                        Ok(raw.trim_end_matches('/').to_owned())
                    }
                    _ => Err(ConfigError::Invalid {
                        name: "LANDLORD_CALLBACK_URL",
                        reason: format!("'{raw}' is not an absolute http(s) URL"),
                    }),
                })
                .transpose()?,
            tenant_connection_limit: parse_u64("LANDLORD_TENANT_CONNECTION_LIMIT", 20)?
                .min(i32::MAX.unsigned_abs().into())
                .try_into()
                .unwrap_or(20),
        })
    }

    /// For a process that runs steps (`worker`, `dev`): refuses a backend
    /// that is configured only in part, naming the missing variable, instead
    /// of failing every step that uses it later.
    pub fn check_runner(&self) -> Result<(), ConfigError> {
        if let Some(kc) = &self.keycloak
            && kc.client_secret.is_none()
        {
            if kc.admin_username.is_empty() {
                return Err(ConfigError::Missing("KEYCLOAK_ADMIN_USERNAME"));
            }
            if kc.admin_password.expose_secret().is_empty() {
                return Err(ConfigError::Missing("KEYCLOAK_ADMIN_PASSWORD"));
            }
        }
        // These steps generate credentials and keep them in the secret store.
        let secret_makers = [
            ("POSTGRES_ADMIN_URL", self.postgres_admin_url.is_some()),
            ("KEYCLOAK_BASE_URL", self.keycloak.is_some()),
            ("MONGODB_ADMIN_URI", self.mongodb_admin_uri.is_some()),
        ];
        if self.secret_key.is_none()
            && let Some((by, _)) = secret_makers.iter().find(|(_, on)| *on)
        {
            return Err(ConfigError::Invalid {
                name: "LANDLORD_SECRET_KEY",
                reason: format!(
                    "required when {by} is set: that step stores the credentials it generates"
                ),
            });
        }
        Ok(())
    }

    /// The effective configuration, secrets masked, for `landlord config check`.
    pub fn describe(&self) -> Vec<(&'static str, String)> {
        let opt = |v: Option<&str>| v.map_or_else(|| "(unset)".to_owned(), str::to_owned);
        let secret =
            |v: Option<&SecretString>| v.map_or_else(|| "(unset)".to_owned(), |_| "***".to_owned());
        let kc = self.keycloak.as_ref();
        let ms = |d: Duration| format!("{}", d.as_millis());
        vec![
            ("MASTER_DATABASE_URL", mask_url(&self.master_database_url)),
            (
                "POSTGRES_ADMIN_URL",
                opt(self.postgres_admin_url.as_deref().map(mask_url).as_deref()),
            ),
            ("KEYCLOAK_BASE_URL", opt(kc.map(|k| k.base_url.as_str()))),
            (
                "KEYCLOAK_ADMIN_USERNAME",
                opt(kc.map(|k| k.admin_username.as_str())),
            ),
            (
                "KEYCLOAK_ADMIN_PASSWORD",
                secret(kc.map(|k| &k.admin_password)),
            ),
            (
                "KEYCLOAK_ADMIN_CLIENT_ID",
                opt(kc.map(|k| k.client_id.as_str())),
            ),
            (
                "KEYCLOAK_ADMIN_CLIENT_SECRET",
                secret(kc.and_then(|k| k.client_secret.as_ref())),
            ),
            (
                "MONGODB_ADMIN_URI",
                opt(self.mongodb_admin_uri.as_deref().map(mask_url).as_deref()),
            ),
            (
                "QDRANT_URL",
                opt(self.qdrant.as_ref().map(|q| q.url.as_str())),
            ),
            (
                "QDRANT_API_KEY",
                secret(self.qdrant.as_ref().and_then(|q| q.api_key.as_ref())),
            ),
            (
                "S3_ENDPOINT",
                opt(self.s3.as_ref().map(|s| s.endpoint.as_str())),
            ),
            (
                "S3_STS_ENDPOINT",
                opt(self.s3.as_ref().map(|s| s.sts_endpoint.as_str())),
            ),
            (
                "S3_ACCESS_KEY",
                opt(self.s3.as_ref().map(|s| s.access_key.as_str())),
            ),
            (
                "S3_SECRET_KEY",
                secret(self.s3.as_ref().map(|s| &s.secret_key)),
            ),
            (
                "TENANT_STORAGE_ROOT",
                self.tenant_storage_root.display().to_string(),
            ),
            ("LANDLORD_NAME_PREFIX", self.name_prefix.as_str().to_owned()),
            (
                "LANDLORD_PLANS_PATH",
                format!(
                    "{} (plans {}; default {})",
                    self.plans.source,
                    self.plans
                        .plans
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", "),
                    self.plans.default
                ),
            ),
            ("LANDLORD_SECRET_KEY", secret(self.secret_key.as_ref())),
            (
                "LANDLORD_SECRET_KEY_PREVIOUS",
                secret(self.secret_key_previous.as_ref()),
            ),
            ("ROLLBACK_ON_FAILURE", self.rollback_on_failure.to_string()),
            ("PROVISION_RETRY_ATTEMPTS", self.retry_attempts.to_string()),
            ("PROVISION_RETRY_DELAY_MS", ms(self.retry_delay)),
            ("PROVISION_RETRY_MAX_DELAY_MS", ms(self.retry_max_delay)),
            (
                "LANDLORD_MAX_LOST_ATTEMPTS",
                self.max_lost_attempts.to_string(),
            ),
            (
                "LANDLORD_STEP_TIMEOUT_SECS",
                self.step_timeout.as_secs().to_string(),
            ),
            ("LANDLORD_HEARTBEAT_MS", ms(self.heartbeat_interval)),
            (
                "LANDLORD_MISSED_HEARTBEATS",
                self.missed_heartbeats.to_string(),
            ),
            (
                "LANDLORD_WORKER_CONCURRENCY",
                self.worker_concurrency.to_string(),
            ),
            ("LANDLORD_POLL_INTERVAL_MS", ms(self.poll_interval)),
            (
                "LANDLORD_SESSION_SWEEP_MS",
                self.session_sweep.map_or_else(|| "0".to_owned(), ms),
            ),
            ("WEBHOOK_URL", opt(self.notify.webhook_url.as_deref())),
            ("LANDLORD_CALLBACK_URL", opt(self.callback_url.as_deref())),
            (
                "WEBHOOK_SECRET",
                secret(self.notify.webhook_secret.as_ref()),
            ),
            ("NOVU_API_URL", opt(self.notify.novu_api_url.as_deref())),
            ("NOVU_API_KEY", secret(self.notify.novu_api_key.as_ref())),
        ]
    }

    /// How long a SIGKILLed worker's job waits before another worker takes it.
    pub fn orphan_timeout(&self) -> Duration {
        self.heartbeat_interval * u32::try_from(self.missed_heartbeats).unwrap_or(u32::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_can_come_from_files() {
        let dir = tempfile::tempdir().unwrap();
        let url = dir.path().join("url");
        std::fs::write(&url, "postgres://u:p@h/db\n").unwrap();
        let key = dir.path().join("key");
        std::fs::write(&key, "k3y").unwrap();
        let (url, key) = (url.display().to_string(), key.display().to_string());
        let lookup = |pairs: Vec<(&'static str, String)>| {
            move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())
        };
        let cfg = Config::from_lookup(lookup(vec![
            ("MASTER_DATABASE_URL_FILE", url.clone()),
            ("WEBHOOK_SECRET_FILE", key.clone()),
        ]))
        .unwrap();
        assert_eq!(cfg.master_database_url, "postgres://u:p@h/db");
        assert_eq!(cfg.notify.webhook_secret.unwrap().expose_secret(), "k3y");
        let both = Config::from_lookup(lookup(vec![
            ("MASTER_DATABASE_URL", "postgres://x/y".into()),
            ("MASTER_DATABASE_URL_FILE", url),
        ]))
        .unwrap_err()
        .to_string();
        assert!(
            both.contains("MASTER_DATABASE_URL_FILE") && both.contains("one of them"),
            "{both}"
        );
        let missing = Config::from_lookup(lookup(vec![
            ("MASTER_DATABASE_URL", "postgres://x/y".into()),
            ("S3_SECRET_KEY_FILE", "/nonexistent/secret".into()),
        ]))
        .unwrap_err()
        .to_string();
        assert!(
            missing.contains("S3_SECRET_KEY_FILE") && missing.contains("/nonexistent/secret"),
            "{missing}"
        );
    }
    use std::collections::HashMap;

    fn from(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn a_callback_url_must_be_absolute_http_and_loses_its_trailing_slash() {
        let base = ("MASTER_DATABASE_URL", "postgres://x/y");
        for bad in ["ftp://api", "api:8080", "/callbacks"] {
            let e = from(&[base, ("LANDLORD_CALLBACK_URL", bad)]).unwrap_err();
            assert!(
                e.to_string().contains("LANDLORD_CALLBACK_URL"),
                "{bad}: {e}"
            );
        }
        let cfg = from(&[base, ("LANDLORD_CALLBACK_URL", "https://api.example.com/")]).unwrap();
        assert_eq!(cfg.callback_url.as_deref(), Some("https://api.example.com"));
        assert_eq!(from(&[base]).unwrap().callback_url, None);
    }

    #[test]
    fn defaults_follow_seed_000() {
        let cfg = from(&[("MASTER_DATABASE_URL", "postgres://x/y")]).unwrap();
        assert_eq!(cfg.retry_attempts, 3);
        assert_eq!(cfg.retry_delay, Duration::from_millis(1500));
        assert_eq!(cfg.retry_max_delay, Duration::from_secs(300));
        assert_eq!(cfg.tenant_storage_root, PathBuf::from("storage/tenants"));
        assert!(!cfg.rollback_on_failure);
        assert_eq!(cfg.name_prefix.as_str(), "freeflow");
        assert!(cfg.orphan_timeout() <= Duration::from_secs(10));
        assert_eq!(cfg.session_sweep, Some(Duration::from_millis(250)));
    }

    #[test]
    fn half_configured_backends_are_refused_naming_the_variable() {
        let base = [("MASTER_DATABASE_URL", "postgres://x/y")];
        let kc = from(&[base[0], ("KEYCLOAK_BASE_URL", "http://kc")]).unwrap();
        let err = kc.check_runner().unwrap_err().to_string();
        assert!(err.contains("KEYCLOAK_ADMIN_USERNAME"), "{err}");
        let pg = from(&[base[0], ("POSTGRES_ADMIN_URL", "postgres://x/postgres")]).unwrap();
        let err = pg.check_runner().unwrap_err().to_string();
        assert!(
            err.contains("LANDLORD_SECRET_KEY") && err.contains("POSTGRES_ADMIN_URL"),
            "{err}"
        );
        assert!(from(&base).unwrap().check_runner().is_ok());
        let err = from(&[base[0], ("S3_ENDPOINT", "http://s3")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("S3_ACCESS_KEY"), "{err}");
    }

    #[test]
    fn passwords_are_masked() {
        assert_eq!(
            mask_url("postgres://u:pw@h:5/db"),
            "postgres://u:***@h:5/db"
        );
        assert_eq!(mask_url("mongodb://u:pw@h/?x=1"), "mongodb://u:***@h/?x=1");
        assert_eq!(mask_url("http://h:1"), "http://h:1");
        let cfg = from(&[
            ("MASTER_DATABASE_URL", "postgres://u:topsecret@h/db"),
            ("LANDLORD_SECRET_KEY", "k3y"),
        ])
        .unwrap();
        let shown = format!("{:?}", cfg.describe());
        assert!(
            !shown.contains("topsecret") && !shown.contains("k3y"),
            "{shown}"
        );
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
