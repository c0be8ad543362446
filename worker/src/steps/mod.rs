//! One file per step: its run, its undo, its error mapping.

mod activate;
mod migrate;
mod postgres;
mod record;
mod register;
mod storage;
mod validate;

use crate::step::Step;
use std::sync::Arc;

pub use postgres::tenant_connect_options;

/// The steps this build implements. Steps of the plan missing here
/// (identity, mongo, qdrant) are shown as skipped.
pub fn provision_steps() -> Vec<Arc<dyn Step>> {
    vec![
        Arc::new(validate::Validate),
        Arc::new(register::Register),
        Arc::new(postgres::Postgres),
        Arc::new(migrate::Migrate),
        Arc::new(storage::Storage),
        Arc::new(record::Record),
        Arc::new(activate::Activate),
    ]
}
