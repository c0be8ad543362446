//! What Landlord's integration tests (`tests/`) and benchmarks (`bench/`)
//! share. One crate instead of `#[path]`-included files: it compiles once
//! for every test binary and bench, and its own lints apply.

mod cleanup;
pub mod harness;
mod master_template;
pub mod otlp;
