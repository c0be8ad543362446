//! Integration tests against the real Postgres started by tests/run.sh.

mod api;
mod chaos;
mod cli;
mod client;
mod console;
mod crash;
mod decided;
mod events;
mod failures;
mod fencing;
mod fuzz;
mod harness;
mod notify;
mod observe;
mod operator;
mod organizations;
mod otlp;
mod ownership;
mod pooled;
mod probe;
mod provision;
mod quoting;
mod receiver;
mod stack;
mod store_enums;
mod template;
