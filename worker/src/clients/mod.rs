//! Clients of the external services steps talk to.

pub mod http;
pub mod keycloak;
