//! The backends a step needs, and whether a process is configured for them.
//!
//! A run's steps name their backend when the run is created (from the
//! creating process's configuration, the deployment's), and a worker runs a
//! step only when it has that backend itself: a half-configured worker can
//! never skip a step the run needs.

use crate::config::Config;
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Keycloak,
    Postgres,
    Mongo,
    Qdrant,
    /// Storage in S3 buckets.
    S3,
    /// Storage in folders under `TENANT_STORAGE_ROOT`.
    Folder,
}

impl Backend {
    pub const ALL: [Self; 6] = [
        Self::Keycloak,
        Self::Postgres,
        Self::Mongo,
        Self::Qdrant,
        Self::S3,
        Self::Folder,
    ];

    /// As stored in `workflow_steps.needs` (the CHECK constraint's values).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Keycloak => "keycloak",
            Self::Postgres => "postgres",
            Self::Mongo => "mongo",
            Self::Qdrant => "qdrant",
            Self::S3 => "s3",
            Self::Folder => "folder",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|b| b.as_str() == raw)
    }

    /// The variable whose presence configures it.
    pub fn variable(self) -> &'static str {
        match self {
            Self::Keycloak => "KEYCLOAK_BASE_URL",
            Self::Postgres => "POSTGRES_ADMIN_URL",
            Self::Mongo => "MONGODB_ADMIN_URI",
            Self::Qdrant => "QDRANT_URL",
            Self::S3 => "S3_ENDPOINT",
            Self::Folder => "TENANT_STORAGE_ROOT",
        }
    }

    /// Folders need no server, so every process has them.
    pub fn configured(self, cfg: &Config) -> bool {
        match self {
            Self::Keycloak => cfg.keycloak.is_some(),
            Self::Postgres => cfg.postgres_admin_url.is_some(),
            Self::Mongo => cfg.mongodb_admin_uri.is_some(),
            Self::Qdrant => cfg.qdrant.is_some(),
            Self::S3 => cfg.s3.is_some(),
            Self::Folder => true,
        }
    }

    /// Where tenant files go in this deployment.
    pub fn storage(cfg: &Config) -> Self {
        if cfg.s3.is_some() {
            Self::S3
        } else {
            Self::Folder
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A row of a run's timeline as decided when the run is created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedStep {
    /// A built-in step's name, or a plan's custom step's.
    pub name: std::borrow::Cow<'static, str>,
    /// The backend a worker must have to run (or undo) the step.
    pub needs: Option<Backend>,
    /// Why the step will not run at all, decided now.
    pub skipped: Option<String>,
}

impl PlannedStep {
    pub fn runs(name: impl Into<std::borrow::Cow<'static, str>>, needs: Option<Backend>) -> Self {
        Self {
            name: name.into(),
            needs,
            skipped: None,
        }
    }

    pub fn skipped(name: impl Into<std::borrow::Cow<'static, str>>, reason: String) -> Self {
        Self {
            name: name.into(),
            needs: None,
            skipped: Some(reason),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for b in Backend::ALL {
            assert_eq!(Backend::parse(b.as_str()), Some(b));
        }
        assert_eq!(Backend::parse("redis"), None);
    }
}
