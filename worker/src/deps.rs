//! Long-lived handles the steps share: config, pools, clients, secrets.

use crate::clients::keycloak::Keycloak;
use landlord_shared::config::Config;
use landlord_shared::secrets::SecretStore;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use std::str::FromStr;
use std::time::Duration;

pub struct Deps {
    pub cfg: Config,
    pub master: PgPool,
    /// Where tenant databases live; steps open short-lived maintenance
    /// connections (they hold session locks, so no pool).
    pub admin_options: Option<PgConnectOptions>,
    pub secrets: Option<SecretStore>,
    /// One HTTP client (connection pool) for Qdrant, S3 and webhooks.
    pub http: reqwest::Client,
    pub keycloak: Option<Keycloak>,
    pub mongo: Option<mongodb::Client>,
}

impl Deps {
    pub async fn connect(cfg: Config) -> anyhow::Result<Self> {
        // While Postgres is unreachable a query fails within the acquire
        // timeout instead of hanging: an attempt fails fast, and apalis's
        // own queries fail too, which ends the worker generation so that a
        // new one reconnects (runner::supervise). Idle connections are
        // pinged before use, so one the server closed is replaced, not
        // handed to a step.
        let master = PgPoolOptions::new()
            .max_connections(u32::try_from(cfg.worker_concurrency).unwrap_or(4) + 4)
            .acquire_timeout(Duration::from_secs(3))
            .test_before_acquire(true)
            .connect(&cfg.master_database_url)
            .await?;
        let admin_options = cfg
            .postgres_admin_url
            .as_deref()
            .map(PgConnectOptions::from_str)
            .transpose()?;
        let secrets = SecretStore::from_config(&cfg)?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .build()?;
        let keycloak = cfg.keycloak.clone().map(|k| Keycloak::new(k, http.clone()));
        let mongo = match &cfg.mongodb_admin_uri {
            Some(uri) => {
                let mut opts = mongodb::options::ClientOptions::parse(uri).await?;
                // Fail an attempt in seconds, not the driver's 30 s default:
                // the engine's retry with backoff handles outages.
                opts.server_selection_timeout = Some(Duration::from_secs(5));
                opts.app_name = Some("landlord".into());
                Some(mongodb::Client::with_options(opts)?)
            }
            None => None,
        };
        Ok(Self {
            cfg,
            master,
            admin_options,
            secrets,
            http,
            keycloak,
            mongo,
        })
    }
}
