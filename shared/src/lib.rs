//! Domain types, typed config and master-database access shared by the
//! landlord CLI, API and worker.

pub mod actions;
pub mod backend;
pub mod catalogue;
pub mod config;
pub mod executor;
pub mod faults;
pub mod jobs;
pub mod metrics;
pub mod migrate;
pub mod model;
pub mod plan;
pub mod request;
pub mod secrets;
pub mod start;
pub mod store;
pub mod telemetry;
pub mod tenant;
