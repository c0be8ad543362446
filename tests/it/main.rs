//! Integration tests against the real Postgres started by tests/run.sh.

mod cli;
mod crash;
mod failures;
mod harness;
mod provision;
mod quoting;
