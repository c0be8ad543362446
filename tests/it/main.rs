//! Integration tests against the real Postgres started by tests/run.sh.

mod cli;
mod crash;
mod failures;
mod harness;
mod notify;
mod observe;
mod otlp;
mod provision;
mod quoting;
mod receiver;
mod stack;
mod template;
