//! Deprovisioning steps. Soft: suspend, disable the realm, revoke database
//! login, mark deleted — data stays. Hard: drop every resource the tenant
//! holds by running the undo of the provisioning step that created it.
//!
//! Deprovisioning runs are never rolled back (`rollback_run` refuses
//! them), so each undo here only restores what its run changed, for
//! completeness.

mod disable_identity;
mod drop;
mod drop_custom;
mod mark;
mod revoke_login;

use crate::step::Step;
use std::sync::Arc;

pub use drop::DropResources;
pub use drop_custom::DropCustom;
pub use mark::MarkDeleting;

pub fn soft_steps() -> Vec<Arc<dyn Step>> {
    vec![
        Arc::new(mark::Suspend),
        Arc::new(disable_identity::DisableIdentity),
        Arc::new(revoke_login::RevokeLogin),
        Arc::new(mark::MarkDeleted),
    ]
}
