//! The plans: which steps a run of each kind has, in order.
//!
//! The catalogue lives here so that whoever starts a run (CLI, API) writes
//! the whole timeline up front, each step with the backend it needs or the
//! reason it is skipped (decided from the deployment's configuration, once);
//! the worker owns what each step does.

use crate::backend::{Backend, PlannedStep};
use crate::catalogue::Plan;
use crate::config::Config;
use crate::store::RunKind;

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
    (
        "check_schema",
        "Checking every tenant table and index exists",
    ),
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
    (
        "drop_custom",
        "Undoing custom steps through their executors",
    ),
    ("drop_storage", "Deleting tenant storage"),
    ("drop_qdrant", "Deleting Qdrant collection"),
    ("drop_mongo", "Dropping Mongo database"),
    ("drop_postgres", "Dropping Postgres database and role"),
    ("drop_identity", "Deleting Keycloak realm"),
    ("drop_connections", "Removing tenant connections"),
    ("mark_deleted", "Marking tenant deleted"),
];

pub fn steps_for(kind: RunKind) -> &'static [(&'static str, &'static str)] {
    match kind {
        RunKind::DeprovisionSoft => DEPROVISION_SOFT_STEPS,
        RunKind::DeprovisionHard => DEPROVISION_HARD_STEPS,
        RunKind::Provision => PROVISION_STEPS,
    }
}

fn builtin(step: &str) -> Option<&'static str> {
    [
        PROVISION_STEPS,
        DEPROVISION_SOFT_STEPS,
        DEPROVISION_HARD_STEPS,
    ]
    .iter()
    .flat_map(|plan| plan.iter())
    .find(|(name, _)| *name == step)
    .map(|(_, what)| *what)
}

/// Whether any run kind has a step of this name.
pub fn is_builtin_step(name: &str) -> bool {
    builtin(name).is_some() || name == "http"
}

/// What a step does, for logs and the API; a plan's custom steps are
/// calls to their executors.
pub fn describe(step: &str) -> &'static str {
    builtin(step).unwrap_or("Calling the step's executor")
}

/// A provisioning run's timeline: a step the plan leaves out, or whose
/// backend the deployment does not have, is skipped now, and stays skipped
/// whichever worker comes along.
pub fn plan_provision(cfg: &Config, plan: &Plan) -> Vec<PlannedStep> {
    plan_provision_for(plan, |b| b.configured(cfg), Backend::storage(cfg))
}

/// The same, for a deployment that has the backends `has` says and keeps
/// tenant files in `storage`.
pub fn plan_provision_for(
    plan: &Plan,
    has: impl Fn(Backend) -> bool,
    storage: Backend,
) -> Vec<PlannedStep> {
    // Custom steps run after the built-in resource steps, before `record`.
    let custom = plan
        .http
        .iter()
        .map(|h| PlannedStep::runs(h.name.clone(), None));
    let (resources, last) = PROVISION_STEPS.split_at(PROVISION_STEPS.len() - 2);
    let builtin = |steps: &'static [(&'static str, &'static str)]| {
        steps.iter().map(|(name, _)| {
            if !plan.runs(name) {
                return PlannedStep::skipped(*name, format!("not in plan '{}'", plan.name));
            }
            let needs = match *name {
                "storage" => Some(storage),
                other => backend_of(other),
            };
            match needs {
                Some(b) if !has(b) => PlannedStep::skipped(
                    *name,
                    format!("not configured in this deployment ({})", b.variable()),
                ),
                needs => PlannedStep::runs(*name, needs),
            }
        })
    };
    builtin(resources)
        .chain(custom)
        .chain(builtin(last))
        .collect()
}

fn backend_of(step: &str) -> Option<Backend> {
    match step {
        "identity" => Some(Backend::Keycloak),
        "postgres" | "migrate" | "check_schema" => Some(Backend::Postgres),
        "mongo" => Some(Backend::Mongo),
        "qdrant" => Some(Backend::Qdrant),
        _ => None,
    }
}

/// The provisioning step whose resources a deprovisioning step handles.
pub fn deprovision_source(step: &str) -> Option<&'static str> {
    match step {
        "disable_identity" | "drop_identity" => Some("identity"),
        "revoke_login" | "drop_postgres" => Some("postgres"),
        "drop_mongo" => Some("mongo"),
        "drop_qdrant" => Some("qdrant"),
        "drop_storage" => Some("storage"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::Catalogue;

    fn default_plan() -> Plan {
        Catalogue::builtin().resolve(None).unwrap()
    }

    #[test]
    fn steps_the_plan_leaves_out_are_skipped_naming_the_plan() {
        let mut plan = default_plan();
        plan.name = "lean".into();
        plan.steps.retain(|s| s == "postgres" || s == "migrate");
        let steps = plan_provision_for(&plan, |_| true, Backend::Folder);
        let by_name = |n: &str| steps.iter().find(|s| s.name == n).unwrap().clone();
        assert_eq!(by_name("postgres").needs, Some(Backend::Postgres));
        assert_eq!(by_name("register").skipped, None);
        assert_eq!(
            by_name("mongo").skipped.as_deref(),
            Some("not in plan 'lean'")
        );
        assert_eq!(
            by_name("storage").skipped.as_deref(),
            Some("not in plan 'lean'")
        );
    }

    fn cfg(pairs: &[(&str, &str)]) -> Config {
        let map: std::collections::HashMap<&str, &str> = pairs.iter().copied().collect();
        Config::from_lookup(|k| map.get(k).map(|v| (*v).to_owned())).unwrap()
    }

    #[test]
    fn unconfigured_backends_are_skipped_at_creation() {
        let plan = plan_provision(
            &cfg(&[
                ("MASTER_DATABASE_URL", "postgres://x/y"),
                ("POSTGRES_ADMIN_URL", "postgres://x/postgres"),
            ]),
            &default_plan(),
        );
        let by_name = |n: &str| plan.iter().find(|s| s.name == n).unwrap().clone();
        assert_eq!(by_name("postgres").needs, Some(Backend::Postgres));
        assert_eq!(by_name("storage").needs, Some(Backend::Folder));
        assert_eq!(by_name("validate").needs, None);
        let identity = by_name("identity");
        assert_eq!(identity.needs, None);
        assert!(identity.skipped.unwrap().contains("KEYCLOAK_BASE_URL"));
        assert_eq!(plan.len(), PROVISION_STEPS.len());
    }

    #[test]
    fn storage_follows_the_deployment() {
        let plan = plan_provision(
            &cfg(&[
                ("MASTER_DATABASE_URL", "postgres://x/y"),
                ("S3_ENDPOINT", "http://s3"),
                ("S3_ACCESS_KEY", "a"),
                ("S3_SECRET_KEY", "b"),
            ]),
            &default_plan(),
        );
        let storage = plan.iter().find(|s| s.name == "storage").unwrap();
        assert_eq!(storage.needs, Some(Backend::S3));
    }
}
