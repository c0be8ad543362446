//! The plans: which steps a run of each kind has, in order.
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

/// Soft deprovisioning keeps every byte of data but locks everyone out.
pub const DEPROVISION_SOFT_STEPS: &[(&str, &str)] = &[
    ("suspend", "Suspending tenant"),
    ("disable_identity", "Disabling Keycloak realm"),
    ("revoke_login", "Revoking Postgres login"),
    ("mark_deleted", "Marking tenant deleted"),
];

/// Hard deprovisioning drops every resource recorded for the tenant, in
/// the reverse order of provisioning.
pub const DEPROVISION_HARD_STEPS: &[(&str, &str)] = &[
    ("mark_deleting", "Marking tenant deleting"),
    ("drop_storage", "Deleting tenant storage"),
    ("drop_qdrant", "Deleting Qdrant collection"),
    ("drop_mongo", "Dropping Mongo database"),
    ("drop_postgres", "Dropping Postgres database and role"),
    ("drop_identity", "Deleting Keycloak realm"),
    ("drop_connections", "Removing tenant connections"),
    ("mark_deleted", "Marking tenant deleted"),
];

/// The kinds of run, as stored in `workflow_runs.kind`.
pub const KINDS: &[&str] = &["provision", "deprovision_soft", "deprovision_hard"];

pub fn steps_for(kind: &str) -> &'static [(&'static str, &'static str)] {
    match kind {
        "deprovision_soft" => DEPROVISION_SOFT_STEPS,
        "deprovision_hard" => DEPROVISION_HARD_STEPS,
        _ => PROVISION_STEPS,
    }
}

pub fn describe(step: &str) -> &'static str {
    [
        PROVISION_STEPS,
        DEPROVISION_SOFT_STEPS,
        DEPROVISION_HARD_STEPS,
    ]
    .iter()
    .flat_map(|plan| plan.iter())
    .find(|(name, _)| *name == step)
    .map_or("", |(_, what)| what)
}
