//! Rows of the engine's tables and the request that starts a run.

use crate::store::{RunKind, RunStatus, StepStatus, TenantStatus};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What a caller asks for; stored with the run so every step can read it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ProvisionParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    #[serde(default)]
    pub domains: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin: Option<AdminContact>,
}

/// The tenant's first administrator (seed 004's signup fields).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AdminContact {
    pub email: String,
    pub first_name: String,
    pub last_name: String,
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct Run {
    pub id: Uuid,
    pub workflow_id: String,
    pub kind: RunKind,
    pub tenant_name: String,
    pub tenant_id: Option<Uuid>,
    pub params: sqlx::types::Json<ProvisionParams>,
    pub rollback: bool,
    pub status: RunStatus,
    pub error: Option<String>,
    /// `Some(compensate)` once an operator asked the run to stop.
    pub cancel_requested: Option<bool>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Where the run's spans attach (see `telemetry::RunTrace`).
    #[sqlx(default)]
    #[serde(skip)]
    pub trace_context: Option<sqlx::types::Json<crate::telemetry::RunTrace>>,
    /// A provisioning run's plan, resolved from the catalogue when the run
    /// was created; what its workers follow.
    #[sqlx(default)]
    pub plan: Option<sqlx::types::Json<crate::catalogue::Plan>>,
}

impl Run {
    pub fn is_finished(&self) -> bool {
        self.status.is_finished()
    }
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct StepRow {
    pub run_id: Uuid,
    pub position: i32,
    pub name: String,
    pub status: StepStatus,
    pub attempts: i32,
    pub undo_attempts: i32,
    pub output: Option<serde_json::Value>,
    pub last_error: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub compensated_at: Option<DateTime<Utc>>,
    /// The backend a worker must have to run the step (decided at creation).
    pub needs: Option<String>,
    /// Set while the workers that picked the step up could not run it.
    pub waiting_for: Option<String>,
    /// Attempts lost to workers that died running them.
    pub lost_attempts: i32,
    pub undo_lost_attempts: i32,
}

impl StepRow {
    pub fn backend(&self) -> Option<crate::backend::Backend> {
        self.needs
            .as_deref()
            .and_then(crate::backend::Backend::parse)
    }

    pub fn duration_ms(&self) -> Option<i64> {
        Some((self.finished_at? - self.started_at?).num_milliseconds())
    }
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct Tenant {
    pub id: Uuid,
    pub name: String,
    pub plan: Option<String>,
    pub realm_name: Option<String>,
    pub postgres_db: Option<String>,
    pub mongo_db: Option<String>,
    pub qdrant_collection: Option<String>,
    pub storage_path: Option<String>,
    /// The template key and version its database was cloned from.
    #[sqlx(default)]
    pub template_key: Option<String>,
    #[sqlx(default)]
    pub template_version: Option<String>,
    pub status: TenantStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A resource a step reports in its checkpoint (`"resources": [...]`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ResourceRef {
    pub kind: String,
    pub name: String,
}

/// An outbox event (`events`), delivered by its own job.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub id: Uuid,
    /// The event type, e.g. `tenant.provisioned`.
    pub kind: String,
    pub payload: serde_json::Value,
    pub idempotency_key: String,
    pub created_at: DateTime<Utc>,
}
