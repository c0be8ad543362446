//! The provisioning plan: which steps a run has, in order.
//!
//! The catalogue lives here so that whoever starts a run (CLI, API) writes
//! the whole timeline up front; the worker owns what each step does and
//! marks the ones whose backend it has no configuration for as skipped.

/// (name, what the step does) in execution order (ARCHITECTURE.md).
pub const PROVISION_STEPS: &[(&str, &str)] = &[
    ("validate", "Validating tenant name"),
    ("register", "Registering tenant in master database"),
    ("identity", "Creating Keycloak realm, client and admin user"),
    (
        "postgres",
        "Creating Postgres role and database from template",
    ),
    ("migrate", "Migrating and seeding tenant database"),
    ("mongo", "Creating Mongo database and user"),
    ("qdrant", "Creating Qdrant collection"),
    ("storage", "Creating tenant storage"),
    ("record", "Recording tenant connections"),
    ("activate", "Activating tenant"),
];

pub fn describe(step: &str) -> &'static str {
    PROVISION_STEPS
        .iter()
        .find(|(name, _)| *name == step)
        .map_or("", |(_, what)| what)
}
