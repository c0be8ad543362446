//! The API's answers and bodies as the client reads and writes them. Every
//! answer type refuses fields it does not know (`deny_unknown_fields`), so
//! `tests/it/api/typed_client.rs`, which reads real answers, fails when the
//! server and this crate drift apart.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresPlan {
    pub mode: String,
    pub template: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpStep {
    pub name: String,
    pub start: String,
    pub undo: Option<String>,
    pub timeout_secs: u64,
}

/// A plan as a run stored it when it was created.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub name: String,
    pub tier: String,
    pub description: String,
    pub naming: String,
    pub steps: Vec<String>,
    pub http: Vec<HttpStep>,
    pub identity: String,
    pub postgres: PostgresPlan,
    pub mongo: String,
    pub qdrant: String,
    pub storage: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSummary {
    pub id: Uuid,
    pub workflow_id: String,
    pub kind: String,
    pub tenant_name: String,
    pub tenant_id: Option<Uuid>,
    pub status: String,
    pub error: Option<String>,
    pub failed_step: Option<String>,
    pub cancel_requested: Option<bool>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub plan: Option<Plan>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tenant {
    pub id: Uuid,
    pub name: String,
    pub status: String,
    pub plan: Option<String>,
    pub realm_name: Option<String>,
    pub postgres_db: Option<String>,
    pub mongo_db: Option<String>,
    pub qdrant_collection: Option<String>,
    pub storage_path: Option<String>,
    pub template_key: Option<String>,
    pub template_version: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub latest_run: Option<RunSummary>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resource {
    pub kind: String,
    pub name: String,
    pub step: String,
    pub deleted_at: Option<DateTime<Utc>>,
}

/// A tenant with its resources (`GET /tenants/{id}`); the server sends the
/// tenant's fields and `resources` side by side.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantDetail {
    pub id: Uuid,
    pub name: String,
    pub status: String,
    pub plan: Option<String>,
    pub realm_name: Option<String>,
    pub postgres_db: Option<String>,
    pub mongo_db: Option<String>,
    pub qdrant_collection: Option<String>,
    pub storage_path: Option<String>,
    pub template_key: Option<String>,
    pub template_version: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub latest_run: Option<RunSummary>,
    pub resources: Vec<Resource>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub position: i32,
    pub name: String,
    pub description: String,
    pub status: String,
    pub attempts: i32,
    pub undo_attempts: i32,
    pub lost_attempts: i32,
    pub needs: Option<String>,
    pub waiting_for: Option<String>,
    pub duration_ms: Option<i64>,
    pub last_error: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub compensated_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Log {
    pub at: DateTime<Utc>,
    pub step: String,
    pub status: String,
    pub message: Option<String>,
}

/// A run with its step timeline and log (`GET /runs/{id}`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunDetail {
    pub id: Uuid,
    pub workflow_id: String,
    pub kind: String,
    pub tenant_name: String,
    pub tenant_id: Option<Uuid>,
    pub status: String,
    pub error: Option<String>,
    pub failed_step: Option<String>,
    pub cancel_requested: Option<bool>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub plan: Option<Plan>,
    pub steps: Vec<Step>,
    pub logs: Vec<Log>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantPage {
    pub items: Vec<Tenant>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunPage {
    pub items: Vec<RunSummary>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunList {
    pub items: Vec<RunSummary>,
}

/// A started (or found) run and its tenant, when it has a row yet.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantRun {
    pub tenant: Option<Tenant>,
    pub run: RunSummary,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Connection {
    pub service: String,
    pub host: Option<String>,
    pub port: Option<i32>,
    pub database: String,
    pub user: Option<String>,
    pub options: Option<serde_json::Value>,
    pub secret_ref: Option<String>,
    /// With `include=credentials` only.
    #[serde(default)]
    pub secret: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionList {
    pub items: Vec<Connection>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageCredentials {
    pub endpoint: String,
    pub region: String,
    pub bucket: String,
    pub prefix: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AdminContact {
    pub email: String,
    #[serde(rename = "firstName")]
    pub first_name: String,
    #[serde(rename = "lastName")]
    pub last_name: String,
}

/// `POST /tenants`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CreateTenant {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub domains: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin: Option<AdminContact>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Address {
    pub country: String,
    pub address: String,
    pub city: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    pub zip: String,
}

/// `POST /leads`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateLead {
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub company_name: String,
    pub address: Address,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LeadCreated {
    pub id: Uuid,
    pub verification_expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LeadVerified {
    pub id: Uuid,
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Contact {
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    #[serde(rename = "type")]
    pub kind: String,
}

/// A signup's tenant, `pending_provision`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PendingTenant {
    pub id: Uuid,
    pub key: String,
    pub name: String,
    pub status: String,
    pub domains: Vec<String>,
    pub contacts: Vec<Contact>,
}

/// One invalid field of a 422.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// An `application/problem+json` answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    #[serde(default)]
    pub errors: Option<Vec<FieldError>>,
}
