//! The landlord worker: the workflow engine and its steps.

pub mod clients;
pub mod deps;
pub mod engine;
pub mod liveness;
pub mod notify;
pub mod probes;
pub mod retention;
pub mod runner;
pub mod step;
pub mod steps;
pub mod stranded;
pub mod templates;

pub use engine::Engine;
