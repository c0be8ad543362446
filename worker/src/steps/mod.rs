//! One file per step: its run, its undo, its error mapping.

mod activate;
mod identity;
mod migrate;
mod mongo;
mod postgres;
mod qdrant;
mod record;
mod register;
mod storage;
mod validate;

use crate::step::Step;
use std::sync::Arc;

pub use postgres::TENANT_MIGRATIONS;

/// Every step of the provisioning plan.
pub fn provision_steps() -> Vec<Arc<dyn Step>> {
    vec![
        Arc::new(validate::Validate),
        Arc::new(register::Register),
        Arc::new(identity::Identity),
        Arc::new(postgres::Postgres),
        Arc::new(migrate::Migrate),
        Arc::new(mongo::Mongo),
        Arc::new(qdrant::Qdrant),
        Arc::new(storage::Storage),
        Arc::new(record::Record),
        Arc::new(activate::Activate),
    ]
}
