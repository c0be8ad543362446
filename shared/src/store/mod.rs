//! The workflow store: every write to the engine's tables (runs, steps,
//! tenants, leads, the provision log, events and their deliveries, resources,
//! connections, claims and worker sessions) and the reads the engine decides on. One
//! function per named transition, guarded by the state it leaves so it
//! happens at most once whatever the number of deliveries; statuses are
//! the enums of [`status`]; SQL is checked against the migrated schema at
//! compile time (`sqlx::query!`, with `.sqlx/` committed so a build needs
//! no database: `deploy/sqlx.sh prepare` refreshes it).

mod callbacks;
pub mod catalog;
mod events;
mod leads;
pub mod retention;
mod runs;
mod sessions;
pub mod status;
mod steps;
mod templates;
mod tenants;

pub use callbacks::*;
pub use events::*;
pub use leads::*;
pub use runs::*;
pub use sessions::*;
pub use status::*;
pub use steps::*;
pub use templates::*;
pub use tenants::*;
