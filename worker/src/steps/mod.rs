//! One file per step: its run, its undo, its error mapping.

mod activate;
pub(crate) mod check_schema;
mod claim;
mod deprovision;
pub(crate) mod http_step;
mod identity;
mod identity_org;
mod migrate;
mod mongo;
mod mongo_shared;
mod postgres;
mod postgres_schema;
mod qdrant;
mod qdrant_shared;
mod record;
mod register;
mod storage;
mod storage_prefix;
mod validate;

use crate::step::Step;
use deprovision::DropResources;
use std::sync::Arc;

pub use crate::templates::TENANT_MIGRATIONS;

/// Every step of every plan (provisioning, soft and hard deprovisioning).
pub fn all_steps() -> Vec<Arc<dyn Step>> {
    let identity: Arc<dyn Step> = Arc::new(identity::Identity);
    let postgres: Arc<dyn Step> = Arc::new(postgres::Postgres);
    let mongo: Arc<dyn Step> = Arc::new(mongo::Mongo);
    let qdrant: Arc<dyn Step> = Arc::new(qdrant::Qdrant);
    let storage: Arc<dyn Step> = Arc::new(storage::Storage);
    let record: Arc<dyn Step> = Arc::new(record::Record);
    let mut steps: Vec<Arc<dyn Step>> = vec![
        Arc::new(validate::Validate),
        Arc::new(register::Register),
        identity.clone(),
        postgres.clone(),
        Arc::new(migrate::Migrate),
        Arc::new(check_schema::CheckSchema),
        mongo.clone(),
        qdrant.clone(),
        storage.clone(),
        record.clone(),
        Arc::new(activate::Activate),
        Arc::new(deprovision::MarkDeleting),
        Arc::new(deprovision::DropCustom),
        Arc::new(DropResources::new("drop_storage", storage)),
        Arc::new(DropResources::new("drop_qdrant", qdrant)),
        Arc::new(DropResources::new("drop_mongo", mongo)),
        Arc::new(DropResources::new("drop_postgres", postgres)),
        Arc::new(DropResources::new("drop_identity", identity)),
        Arc::new(DropResources::new("drop_connections", record)),
    ];
    steps.extend(deprovision::soft_steps());
    steps
}

/// Refuses a catalogue naming a step this binary has no code for, so a
/// worker fails at start-up rather than at that step of some run.
pub fn check_catalogue(
    plans: &landlord_shared::catalogue::Catalogue,
    steps: &[Arc<dyn Step>],
) -> anyhow::Result<()> {
    for name in plans.step_names() {
        if !plans.http_steps.contains_key(name) && !steps.iter().any(|s| s.name() == name) {
            anyhow::bail!(
                "{}: a plan names step '{name}', which this worker does not have",
                plans.source
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use landlord_shared::catalogue::{Catalogue, OPTIONAL_STEPS};
    use landlord_shared::plan::PROVISION_STEPS;

    #[test]
    fn the_worker_has_every_step_a_plan_can_name() {
        let steps = all_steps();
        check_catalogue(&Catalogue::builtin(), &steps).unwrap();
        for name in OPTIONAL_STEPS
            .iter()
            .chain(PROVISION_STEPS.iter().map(|(n, _)| n))
        {
            assert!(steps.iter().any(|s| s.name() == *name), "{name}");
        }
        let mut lacking = Catalogue::builtin();
        lacking
            .plans
            .values_mut()
            .for_each(|p| p.steps.push("terraform".into()));
        let e = check_catalogue(&lacking, &steps).unwrap_err().to_string();
        assert!(e.contains("'terraform'"), "{e}");
    }
}
