//! What the API answers: the JSON shapes of api-contract.md, built from
//! master-database rows with every error text masked.

use crate::mask::{mask_opt, mask_secrets};
use chrono::{DateTime, Utc};
use landlord_shared::catalogue::Plan;
use landlord_shared::model::{Run, StepRow, Tenant};
use landlord_shared::plan::describe;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Serialize, ToSchema)]
pub struct RunSummary {
    pub id: Uuid,
    #[schema(example = "provision-tenant-acme")]
    pub workflow_id: String,
    /// `provision`, `deprovision_soft` or `deprovision_hard`.
    #[schema(example = "provision")]
    pub kind: String,
    pub tenant_name: String,
    /// Null until the run's `register` step has written the tenant.
    pub tenant_id: Option<Uuid>,
    /// `running`, `completed`, `failed`, `cancelled`, `compensating`,
    /// `compensated` or `compensation_failed`.
    #[schema(example = "running")]
    pub status: String,
    /// The run's error, secrets masked.
    pub error: Option<String>,
    pub failed_step: Option<String>,
    /// Null: no cancel asked; false: stop; true: stop and compensate.
    pub cancel_requested: Option<bool>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The plan a provisioning run follows, resolved from the catalogue
    /// when the run was created; a deprovisioning run carries its tenant's
    /// (null for runs from before plans).
    pub plan: Option<Plan>,
}

/// A run row with the name of its failed step, if any.
#[derive(Debug, sqlx::FromRow)]
pub struct RunRow {
    #[sqlx(flatten)]
    pub run: Run,
    pub failed_step: Option<String>,
}

impl From<RunRow> for RunSummary {
    fn from(row: RunRow) -> Self {
        let r = row.run;
        Self {
            id: r.id,
            workflow_id: r.workflow_id,
            kind: r.kind.as_str().to_owned(),
            tenant_name: r.tenant_name,
            tenant_id: r.tenant_id,
            status: r.status.as_str().to_owned(),
            error: mask_opt(r.error.as_deref()),
            failed_step: row.failed_step,
            cancel_requested: r.cancel_requested,
            created_at: r.created_at,
            updated_at: r.updated_at,
            finished_at: r.finished_at,
            plan: r.plan.map(|p| p.0),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TenantView {
    pub id: Uuid,
    #[schema(example = "acme")]
    pub name: String,
    /// `provisioning`, `active`, `suspended`, `deleting` or `deleted`.
    #[schema(example = "active")]
    pub status: String,
    pub plan: Option<String>,
    pub realm_name: Option<String>,
    pub postgres_db: Option<String>,
    pub mongo_db: Option<String>,
    pub qdrant_collection: Option<String>,
    pub storage_path: Option<String>,
    /// The template key and version its database was cloned from.
    pub template_key: Option<String>,
    pub template_version: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub latest_run: Option<RunSummary>,
}

impl TenantView {
    pub fn new(t: Tenant, latest_run: Option<RunSummary>) -> Self {
        Self {
            id: t.id,
            name: t.name,
            status: t.status.as_str().to_owned(),
            plan: t.plan,
            realm_name: t.realm_name,
            postgres_db: t.postgres_db,
            mongo_db: t.mongo_db,
            qdrant_collection: t.qdrant_collection,
            storage_path: t.storage_path,
            template_key: t.template_key,
            template_version: t.template_version,
            created_at: t.created_at,
            updated_at: t.updated_at,
            latest_run,
        }
    }
}

/// Something a step created for the tenant on a server.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct ResourceView {
    #[schema(example = "postgres_database")]
    pub kind: String,
    pub name: String,
    pub step: String,
    /// Set once deprovisioning or compensation removed it.
    pub deleted_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TenantDetail {
    #[serde(flatten)]
    pub tenant: TenantView,
    pub resources: Vec<ResourceView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StepView {
    pub position: i32,
    pub name: String,
    pub description: String,
    /// `pending`, `running`, `retrying`, `completed`, `failed`, `skipped`,
    /// `compensating` or `compensated`.
    pub status: String,
    pub attempts: i32,
    pub undo_attempts: i32,
    /// Attempts lost with the worker running them (forward and undo): a
    /// crash does not count against the retry budget.
    pub lost_attempts: i32,
    /// The backend a worker needs to run the step, decided when the run was
    /// created (`keycloak`, `postgres`, `mongo`, `qdrant`, `s3`, `folder`).
    pub needs: Option<String>,
    /// Set while the step waits for a worker that has that backend.
    pub waiting_for: Option<String>,
    pub duration_ms: Option<i64>,
    /// Secrets masked.
    pub last_error: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub compensated_at: Option<DateTime<Utc>>,
}

impl From<StepRow> for StepView {
    fn from(s: StepRow) -> Self {
        Self {
            position: s.position,
            description: describe(&s.name).to_owned(),
            duration_ms: s.duration_ms(),
            last_error: mask_opt(s.last_error.as_deref()),
            name: s.name,
            status: s.status.as_str().to_owned(),
            attempts: s.attempts,
            undo_attempts: s.undo_attempts,
            lost_attempts: s.lost_attempts + s.undo_lost_attempts,
            needs: s.needs,
            waiting_for: s.waiting_for,
            started_at: s.started_at,
            finished_at: s.finished_at,
            compensated_at: s.compensated_at,
        }
    }
}

/// One line of the run's provision log.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct LogView {
    pub at: DateTime<Utc>,
    pub step: String,
    /// `success`, `error`, `retrying`, `skipped`, `compensated`,
    /// `cancelled`, `requested` or `waiting`.
    pub status: String,
    pub message: Option<String>,
}

impl LogView {
    pub fn masked(mut self) -> Self {
        self.message = self.message.as_deref().map(mask_secrets);
        self
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RunDetail {
    #[serde(flatten)]
    pub run: RunSummary,
    pub steps: Vec<StepView>,
    pub logs: Vec<LogView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TenantPage {
    pub items: Vec<TenantView>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RunPage {
    pub items: Vec<RunSummary>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RunList {
    pub items: Vec<RunSummary>,
}

/// A tenant (null until its `register` step ran) and its run.
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantRun {
    pub tenant: Option<TenantView>,
    pub run: RunSummary,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Status {
    #[schema(example = "ok")]
    pub status: String,
}
