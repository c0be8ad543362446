//! The plan catalogue: named plans, each with its tier and, per resource
//! kind, an isolation mode, the Postgres template key, the naming scheme and
//! which optional steps run.
//!
//! A plan is data. Whoever creates a run resolves the requested plan here
//! and stores the result with the run (`workflow_runs.plan`); workers read
//! that snapshot, so a catalogue edited later never changes a run in flight.
//! The built-in catalogue is `deploy/plans.toml`; `LANDLORD_PLANS_PATH`
//! replaces it. Each enum below holds only the modes this binary can run:
//! a catalogue naming another is refused at start-up with its line.

mod load;

pub use load::CatalogueError;

use crate::request::FieldError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

const BUILTIN: &str = include_str!("../../../deploy/plans.toml");

/// Provisioning steps a plan may leave out; the others always run.
pub const OPTIONAL_STEPS: &[&str] = &[
    "identity",
    "postgres",
    "migrate",
    "check_schema",
    "mongo",
    "qdrant",
    "storage",
];

/// The template databases this binary can build, by key (seed 003):
/// `basic` is the schema and seed data of `migrations/tenant/`, `crm` adds
/// `migrations/templates/crm/` (the worker's `templates` module).
pub const TEMPLATE_KEYS: &[&str] = &["basic", "crm"];

/// Seed 004's subscription tiers, each normalised to a deployment model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    Enterprise,
    Standard,
    Hybrid,
}

impl Tier {
    /// Seed 004: enterprise → silo, standard → pooled, hybrid → bridge.
    pub fn deployment(self) -> &'static str {
        match self {
            Self::Enterprise => "silo",
            Self::Standard => "pooled",
            Self::Hybrid => "bridge",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enterprise => "enterprise",
            Self::Standard => "standard",
            Self::Hybrid => "hybrid",
        }
    }
}

/// How resource names are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Naming {
    /// `{LANDLORD_NAME_PREFIX}_{tenant}` (and `-` where a server wants it).
    Prefix,
    /// Seed 003's `tenant_{hash16}` (16 hex of the key's SHA-256) for the
    /// Postgres database, role and schema; other resources keep the prefix.
    Hashed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IdentityMode {
    /// A Keycloak realm of the tenant's own.
    Realm,
    /// An organization in the deployment's shared realm (Keycloak
    /// Organizations), for tenants by the thousand.
    Organization,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PostgresMode {
    /// A database of the tenant's own, cloned from the template.
    Database,
    /// Schema `tenant_{key}` in the pooled database `{prefix}_pool` (seed 002).
    Schema,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MongoMode {
    /// A Mongo database (and user) of the tenant's own.
    Database,
    /// The deployment's shared database; the tenant's documents carry its
    /// id in `tenant_id`.
    Shared,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum QdrantMode {
    /// A collection of the tenant's own.
    Collection,
    /// The tier's shared collection; the tenant's points carry its id in
    /// payload field `tenant_id` (Qdrant's multitenancy).
    Shared,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StorageMode {
    /// A bucket (with `S3_ENDPOINT`) or a folder of the tenant's own.
    Dedicated,
    /// `{tenant}/` in the deployment's shared bucket, with credentials
    /// scoped to it (a folder of its own without `S3_ENDPOINT`).
    Prefix,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PostgresPlan {
    pub mode: PostgresMode,
    /// The template key the tenant database is cloned from.
    pub template: String,
}

/// A custom step: an executor outside Landlord does its work over HTTP
/// (infrastructure, an application-plane deploy, DNS: seed 004's "if
/// configured" steps). It runs after the built-in resource steps, before
/// `record`, in the order the plan lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HttpStep {
    #[schema(example = "dns")]
    pub name: String,
    /// POSTed to do the work.
    #[schema(example = "http://executor:8080/dns/apply")]
    pub start: String,
    /// POSTed to undo it (rollback, hard deprovisioning); none when there
    /// is nothing to undo.
    pub undo: Option<String>,
    /// How long the executor may take once it has accepted the work,
    /// before its callback is overdue and the attempt counts as failed.
    pub timeout_secs: u64,
}

/// One plan as the catalogue defines it, and as a run stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Plan {
    #[schema(example = "enterprise")]
    pub name: String,
    pub tier: Tier,
    pub description: String,
    pub naming: Naming,
    /// The optional provisioning steps that run, in the engine's order,
    /// then the plan's custom steps in its own.
    pub steps: Vec<String>,
    /// The custom steps the plan runs, as they were defined when the run
    /// was created.
    #[serde(default)]
    pub http: Vec<HttpStep>,
    pub identity: IdentityMode,
    pub postgres: PostgresPlan,
    pub mongo: MongoMode,
    pub qdrant: QdrantMode,
    pub storage: StorageMode,
}

impl Plan {
    /// Whether the plan runs this provisioning step.
    pub fn runs(&self, step: &str) -> bool {
        !OPTIONAL_STEPS.contains(&step) || self.steps.iter().any(|s| s == step)
    }

    /// The plan's custom step of that name.
    pub fn http_step(&self, name: &str) -> Option<&HttpStep> {
        self.http.iter().find(|h| h.name == name)
    }
}

/// Every plan a deployment offers, checked when it was loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalogue {
    /// The file it came from, or `built-in`.
    pub source: String,
    pub default: String,
    pub plans: BTreeMap<String, Plan>,
    /// Custom steps, by name (`[http_steps.NAME]`).
    pub http_steps: BTreeMap<String, HttpStep>,
}

impl Catalogue {
    /// `deploy/plans.toml`, compiled in.
    pub fn builtin() -> Self {
        // Checked by a unit test, so a bad built-in file fails the build's tests.
        Self::parse("built-in deploy/plans.toml", BUILTIN)
            .unwrap_or_else(|e| panic!("the built-in catalogue is invalid: {e}"))
    }

    /// Reads and checks the file at `path`.
    pub fn load(path: &std::path::Path) -> Result<Self, CatalogueError> {
        let source = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| CatalogueError {
            file: source.clone(),
            line: 0,
            column: 0,
            message: format!("cannot read it: {e}"),
        })?;
        Self::parse(&source, &text)
    }

    pub fn parse(source: &str, text: &str) -> Result<Self, CatalogueError> {
        load::parse(source, text)
    }

    /// The plan a request names (or the default), as a run will store it.
    pub fn resolve(&self, name: Option<&str>) -> Result<Plan, FieldError> {
        let name = name.unwrap_or(&self.default);
        self.plans.get(name).cloned().ok_or_else(|| {
            let known: Vec<&str> = self.plans.keys().map(String::as_str).collect();
            FieldError::new(
                "plan",
                format!(
                    "unknown plan '{name}'; this deployment offers {}",
                    known.join(", ")
                ),
            )
        })
    }

    /// Every step some plan runs, for a worker to check it has them all.
    pub fn step_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .plans
            .values()
            .flat_map(|p| p.steps.iter().map(String::as_str))
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    }
}

#[cfg(test)]
mod tests;
