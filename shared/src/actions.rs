//! Operator actions on runs: retry, roll back, cancel, deprovision. Each
//! one is a guarded state change plus a job, committed together, so a
//! repeated or concurrent request changes nothing twice.

use crate::backend::{Backend, PlannedStep};
use crate::db;
use crate::jobs::{Direction, StepJob, push_step_job};
use crate::model::{ProvisionParams, Run};
use crate::plan::{deprovision_source, steps_for};
use crate::start::{NewRun, StartError, Started, create_run};
use crate::telemetry::RunTrace;
use crate::tenant::TenantKey;
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use std::time::Duration;
use uuid::Uuid;

/// `Conflict` messages are written for the caller and carry no database
/// text; `Db` and `Queue` are internal.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error("enqueue failed: {0}")]
    Queue(#[from] apalis_postgres::Error),
}

impl From<StartError> for ActionError {
    fn from(e: StartError) -> Self {
        match e {
            StartError::Db(e) => Self::Db(e),
            StartError::Queue(e) => Self::Queue(e),
        }
    }
}

/// Step states that may have left something behind to undo.
pub const UNDOABLE: &[&str] = &["completed", "failed", "compensating", "running", "retrying"];

/// Resumes a failed (or cancelled) run at its failed step: completed
/// checkpoints are kept and not re-run; that step gets a fresh retry budget.
pub async fn retry_run(pool: &PgPool, run_id: Uuid) -> Result<Run, ActionError> {
    let mut tx = pool.begin().await?;
    let current = db::run_by_id(&mut *tx, run_id)
        .await?
        .ok_or(ActionError::NotFound("run"))?;
    let run: Option<Run> = sqlx::query_as(
        "UPDATE workflow_runs SET status = 'running', error = NULL, finished_at = NULL,
                cancel_requested = NULL, updated_at = now(), trace_context = $2
         WHERE id = $1 AND status IN ('failed', 'cancelled') RETURNING *",
    )
    .bind(run_id)
    // The resumed run is a new run span, in the trace of whoever resumed it.
    .bind(sqlx::types::Json(RunTrace::for_current_span()))
    .fetch_optional(&mut *tx)
    .await?;
    let Some(run) = run else {
        return Err(ActionError::Conflict(format!(
            "only a failed or cancelled run can be retried; this one is {}",
            current.status
        )));
    };
    // The first step not yet done: the failed one, or where a cancel stopped.
    let position: i32 = sqlx::query_scalar(
        "UPDATE workflow_steps SET status = 'pending', attempts = 0, lost_attempts = 0,
                attempt_open = false, waiting_for = NULL, last_error = NULL, finished_at = NULL
         WHERE run_id = $1 AND position = (
             SELECT min(position) FROM workflow_steps
             WHERE run_id = $1 AND status NOT IN ('completed', 'skipped'))
         RETURNING position",
    )
    .bind(run_id)
    .fetch_optional(&mut *tx)
    .await?
    .unwrap_or(0);
    if run.kind == "provision"
        && let Some(tenant_id) = run.tenant_id
    {
        sqlx::query(
            "UPDATE tenants SET status = 'provisioning', updated_at = now() WHERE id = $1 AND status = 'suspended'",
        )
        .bind(tenant_id)
        .execute(&mut *tx)
        .await?;
    }
    let step = step_name(&run, position);
    db::insert_provision_log(
        &mut *tx,
        run.tenant_id,
        run.id,
        step,
        "requested",
        "retry requested by an operator",
    )
    .await?;
    let job = StepJob {
        run_id,
        position,
        direction: Direction::Forward,
    };
    push_step_job(&mut tx, &job, Duration::ZERO).await?;
    tx.commit().await?;
    Ok(run)
}

/// Compensates a failed, cancelled or half-compensated provisioning run:
/// every step that may have left something is undone in reverse order.
/// Rolling back a run already rolling back or rolled back is a no-op.
pub async fn rollback_run(pool: &PgPool, run_id: Uuid) -> Result<Run, ActionError> {
    let mut tx = pool.begin().await?;
    let current = db::run_by_id(&mut *tx, run_id)
        .await?
        .ok_or(ActionError::NotFound("run"))?;
    if current.kind != "provision" {
        return Err(ActionError::Conflict(format!(
            "a {} run cannot be rolled back; retry it instead",
            current.kind.replace('_', " ")
        )));
    }
    match current.status.as_str() {
        "compensating" | "compensated" => return Ok(current),
        "failed" | "cancelled" | "compensation_failed" => {}
        "running" => {
            return Err(ActionError::Conflict(
                "the run is still running; cancel it with compensation instead".into(),
            ));
        }
        other => {
            return Err(ActionError::Conflict(format!(
                "the run is {other}; an active tenant is removed by deprovisioning it"
            )));
        }
    }
    let run: Option<Run> = sqlx::query_as(
        "UPDATE workflow_runs SET status = 'compensating', finished_at = NULL, updated_at = now(),
                trace_context = $3
         WHERE id = $1 AND status = $2 RETURNING *",
    )
    .bind(run_id)
    .bind(&current.status)
    .bind(sqlx::types::Json(RunTrace::for_current_span()))
    .fetch_optional(&mut *tx)
    .await?;
    let Some(run) = run else {
        // A concurrent request moved it first.
        let now = db::run_by_id(&mut *tx, run_id)
            .await?
            .ok_or(ActionError::NotFound("run"))?;
        return Ok(now);
    };
    db::insert_provision_log(
        &mut *tx,
        run.tenant_id,
        run.id,
        "",
        "requested",
        "rollback requested by an operator",
    )
    .await?;
    start_compensation(&mut tx, &run).await?;
    tx.commit().await?;
    Ok(run)
}

/// Queues the undo of the last step with something to undo, or, when
/// there is none, ends the compensation at once. The run must already be
/// `compensating`.
pub async fn start_compensation(tx: &mut PgConnection, run: &Run) -> Result<(), StartError> {
    let statuses: Vec<&str> = UNDOABLE.to_vec();
    let last: Option<i32> = sqlx::query_scalar(
        "SELECT max(position) FROM workflow_steps WHERE run_id = $1 AND status = ANY($2)",
    )
    .bind(run.id)
    .bind(&statuses)
    .fetch_one(&mut *tx)
    .await?;
    match last {
        Some(position) => {
            let job = StepJob {
                run_id: run.id,
                position,
                direction: Direction::Undo,
            };
            push_step_job(tx, &job, Duration::ZERO).await?;
        }
        None => {
            let done = sqlx::query(
                "UPDATE workflow_runs SET status = 'compensated', finished_at = now(), updated_at = now()
                 WHERE id = $1 AND status = 'compensating'",
            )
            .bind(run.id)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 1 {
                crate::metrics::metrics().run_finished(&run.kind, "compensated");
                db::insert_finished_event(tx, run, "compensated", None).await?;
            }
        }
    }
    Ok(())
}

/// Asks a running run to stop before its next step attempt; with
/// `compensate` the engine then undoes what it did. Asking twice is
/// harmless; the first answer about compensation stands.
pub async fn cancel_run(pool: &PgPool, run_id: Uuid, compensate: bool) -> Result<Run, ActionError> {
    let mut tx = pool.begin().await?;
    let current = db::run_by_id(&mut *tx, run_id)
        .await?
        .ok_or(ActionError::NotFound("run"))?;
    let run: Option<Run> = sqlx::query_as(
        "UPDATE workflow_runs SET cancel_requested = COALESCE(cancel_requested, $2), updated_at = now()
         WHERE id = $1 AND status = 'running' RETURNING *",
    )
    .bind(run_id)
    .bind(compensate)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(run) = run else {
        return Err(ActionError::Conflict(format!(
            "only a running run can be cancelled; this one is {}",
            current.status
        )));
    };
    if current.cancel_requested.is_none() {
        let msg = if compensate {
            "cancel with rollback requested by an operator"
        } else {
            "cancel requested by an operator"
        };
        db::insert_provision_log(&mut *tx, run.tenant_id, run.id, "", "requested", msg).await?;
    }
    tx.commit().await?;
    Ok(run)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeprovisionMode {
    /// Lock everyone out, keep the data.
    Soft,
    /// Drop every resource recorded for the tenant.
    Hard,
}

impl DeprovisionMode {
    pub fn kind(self) -> &'static str {
        match self {
            Self::Soft => "deprovision_soft",
            Self::Hard => "deprovision_hard",
        }
    }
}

pub fn deprovision_workflow_id(key: &TenantKey, mode: DeprovisionMode) -> String {
    match mode {
        DeprovisionMode::Soft => format!("deprovision-soft-tenant-{key}"),
        DeprovisionMode::Hard => format!("deprovision-hard-tenant-{key}"),
    }
}

/// Starts (or returns the existing) deprovisioning run of a tenant. An
/// active tenant needs `force`; a tenant still being provisioned must have
/// that run cancelled first.
pub async fn start_deprovision(
    pool: &PgPool,
    key: &TenantKey,
    mode: DeprovisionMode,
    force: bool,
) -> Result<Started, ActionError> {
    let wf = deprovision_workflow_id(key, mode);
    let mut tx = pool.begin().await?;
    // Serialises against concurrent deprovision and retry requests.
    let tenant: Option<(Uuid, String)> =
        sqlx::query_as("SELECT id, status FROM tenants WHERE name = $1 FOR UPDATE")
            .bind(key.as_str())
            .fetch_optional(&mut *tx)
            .await?;
    let (tenant_id, status) = tenant.ok_or(ActionError::NotFound("tenant"))?;
    if let Some(run) = db::run_by_workflow_id(&mut *tx, &wf).await? {
        tx.commit().await?;
        return Ok(Started {
            run,
            created: false,
        });
    }
    let busy: Option<(String, String)> = sqlx::query_as(
        "SELECT kind, status FROM workflow_runs
         WHERE tenant_name = $1 AND status IN ('running', 'compensating') LIMIT 1",
    )
    .bind(key.as_str())
    .fetch_optional(&mut *tx)
    .await?;
    if let Some((kind, run_status)) = busy {
        return Err(ActionError::Conflict(format!(
            "a {} run of this tenant is {run_status}; cancel it or wait for it to finish",
            kind.replace('_', " ")
        )));
    }
    match (status.as_str(), mode) {
        ("active", _) if !force => {
            return Err(ActionError::Conflict(
                "the tenant is active; deprovisioning it needs force=true".into(),
            ));
        }
        ("active" | "suspended" | "provisioning", _) => {}
        ("deleted", DeprovisionMode::Hard) => {} // soft-deleted data can still be dropped
        (other, _) => {
            return Err(ActionError::Conflict(format!(
                "the tenant is already {other}"
            )));
        }
    }
    let steps = plan_deprovision(&mut tx, tenant_id, key, mode).await?;
    let new = NewRun {
        workflow_id: &wf,
        kind: mode.kind(),
        key,
        tenant_id: Some(tenant_id),
        params: &ProvisionParams::default(),
        rollback: false,
        steps: &steps,
    };
    let started = create_run(&mut tx, &new).await?;
    tx.commit().await?;
    Ok(started)
}

/// What the tenant's provisioning left on a backend: the status and
/// backend of each provisioning step of its latest provisioning run, and
/// which steps still have live resources recorded.
async fn provisioned(
    tx: &mut PgConnection,
    tenant_id: Uuid,
    key: &TenantKey,
) -> sqlx::Result<(Vec<(String, String, Option<String>)>, Vec<(String, String)>)> {
    let steps: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT s.name, s.status, s.needs FROM workflow_steps s
         WHERE s.run_id = (SELECT id FROM workflow_runs WHERE tenant_name = $1 AND kind = 'provision'
                           ORDER BY created_at DESC LIMIT 1)",
    )
    .bind(key.as_str())
    .fetch_all(&mut *tx)
    .await?;
    let live: Vec<(String, String)> = sqlx::query_as(
        "SELECT DISTINCT step, kind FROM tenant_resources WHERE tenant_id = $1 AND deleted_at IS NULL",
    )
    .bind(tenant_id)
    .fetch_all(&mut *tx)
    .await?;
    Ok((steps, live))
}

/// A deprovisioning timeline: a step whose provisioning counterpart never
/// ran and left nothing recorded is skipped now; every other one needs the
/// backend that counterpart used, and waits for a worker that has it.
async fn plan_deprovision(
    tx: &mut PgConnection,
    tenant_id: Uuid,
    key: &TenantKey,
    mode: DeprovisionMode,
) -> sqlx::Result<Vec<PlannedStep>> {
    let (steps, live) = provisioned(tx, tenant_id, key).await?;
    Ok(steps_for(mode.kind())
        .iter()
        .map(|(name, _)| {
            let Some(source) = deprovision_source(name) else {
                return PlannedStep::runs(name, None);
            };
            let row = steps.iter().find(|(n, _, _)| n == source);
            let touched = row.is_some_and(|(_, status, _)| UNDOABLE.contains(&status.as_str()));
            let kinds: Vec<&str> = live
                .iter()
                .filter(|(step, _)| step == source)
                .map(|(_, kind)| kind.as_str())
                .collect();
            if !touched && kinds.is_empty() {
                return PlannedStep::skipped(
                    name,
                    format!("nothing to do: {source} created nothing for this tenant"),
                );
            }
            let recorded = row.and_then(|(_, _, needs)| needs.as_deref().and_then(Backend::parse));
            // Runs from before needs were recorded: infer from what is there.
            let needs = recorded.unwrap_or(match source {
                "identity" => Backend::Keycloak,
                "postgres" => Backend::Postgres,
                "mongo" => Backend::Mongo,
                "qdrant" => Backend::Qdrant,
                _ if kinds.contains(&"s3_bucket") => Backend::S3,
                _ => Backend::Folder,
            });
            PlannedStep::runs(name, Some(needs))
        })
        .collect())
}

fn step_name(run: &Run, position: i32) -> &'static str {
    steps_for(&run.kind)
        .get(usize::try_from(position).unwrap_or(0))
        .map_or("", |s| s.0)
}
