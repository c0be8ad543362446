//! Operator actions on runs: retry, roll back, cancel, deprovision. Each
//! one is a guarded state change plus a job, committed together, so a
//! repeated or concurrent request changes nothing twice.

use crate::backend::{Backend, PlannedStep};
use crate::jobs::{Direction, StepJob, push_step_job};
use crate::model::{ProvisionParams, Run, StepRow};
use crate::plan::{deprovision_source, steps_for};
use crate::start::{NewRun, StartError, Started, create_run};
use crate::store;
use crate::store::{LogStatus, RunKind, RunStatus, StepStatus, TenantStatus};
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
    /// A request field the engine refused (a plan the catalogue lacks).
    #[error("invalid {0}")]
    Invalid(crate::request::FieldError),
}

impl From<StartError> for ActionError {
    fn from(e: StartError) -> Self {
        match e {
            StartError::Db(e) => Self::Db(e),
            StartError::Queue(e) => Self::Queue(e),
            StartError::Plan(e) => Self::Invalid(e),
        }
    }
}

/// Step states that may have left something behind to undo.
pub const UNDOABLE: &[StepStatus] = &[
    StepStatus::Awaiting,
    StepStatus::Completed,
    StepStatus::Failed,
    StepStatus::Compensating,
    StepStatus::Running,
    StepStatus::Retrying,
];

/// Resumes a failed (or cancelled) run at its failed step: completed
/// checkpoints are kept and not re-run; that step gets a fresh retry budget.
pub async fn retry_run(pool: &PgPool, run_id: Uuid) -> Result<Run, ActionError> {
    let mut tx = pool.begin().await?;
    let current = store::run_by_id(&mut *tx, run_id)
        .await?
        .ok_or(ActionError::NotFound("run"))?;
    let reopened = store::reopen_run(&mut *tx, run_id).await?;
    let run = match reopened {
        true => store::run_by_id(&mut *tx, run_id).await?,
        false => None,
    };
    let Some(run) = run else {
        return Err(ActionError::Conflict(format!(
            "only a failed or cancelled run can be retried; this one is {}",
            current.status
        )));
    };
    // The first step not yet done: the failed one, or where a cancel stopped.
    let position = store::reset_first_unfinished(&mut *tx, run_id)
        .await?
        .unwrap_or(0);
    if run.kind == RunKind::Provision
        && let Some(tenant_id) = run.tenant_id
    {
        store::move_tenant(
            &mut *tx,
            tenant_id,
            &[TenantStatus::Suspended],
            TenantStatus::Provisioning,
        )
        .await?;
    }
    let step = step_name(&run, position);
    store::insert_provision_log(
        &mut *tx,
        run.tenant_id,
        run.id,
        step,
        LogStatus::Requested,
        "retry requested by an operator",
    )
    .await?;
    let job = StepJob::new(run_id, position, Direction::Forward);
    push_step_job(&mut tx, &job, Duration::ZERO).await?;
    tx.commit().await?;
    Ok(run)
}

/// Compensates a failed, cancelled or half-compensated provisioning run:
/// every step that may have left something is undone in reverse order.
/// Rolling back a run already rolling back or rolled back is a no-op.
pub async fn rollback_run(
    pool: &PgPool,
    run_id: Uuid,
    outbox: store::Outbox,
) -> Result<Run, ActionError> {
    let mut tx = pool.begin().await?;
    let current = store::run_by_id(&mut *tx, run_id)
        .await?
        .ok_or(ActionError::NotFound("run"))?;
    if current.kind != RunKind::Provision {
        return Err(ActionError::Conflict(format!(
            "a {} run cannot be rolled back; retry it instead",
            current.kind.as_str().replace('_', " ")
        )));
    }
    match current.status {
        RunStatus::Compensating | RunStatus::Compensated => return Ok(current),
        RunStatus::Failed | RunStatus::Cancelled | RunStatus::CompensationFailed => {}
        RunStatus::Running => {
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
    let run = match store::begin_compensation(&mut *tx, run_id, current.status).await? {
        true => store::run_by_id(&mut *tx, run_id).await?,
        false => None,
    };
    let Some(run) = run else {
        // A concurrent request moved it first.
        let now = store::run_by_id(&mut *tx, run_id)
            .await?
            .ok_or(ActionError::NotFound("run"))?;
        return Ok(now);
    };
    store::insert_provision_log(
        &mut *tx,
        run.tenant_id,
        run.id,
        "",
        LogStatus::Requested,
        "rollback requested by an operator",
    )
    .await?;
    start_compensation(&mut tx, &run, outbox).await?;
    tx.commit().await?;
    Ok(run)
}

/// Queues the undo of the last step with something to undo, or, when
/// there is none, ends the compensation at once. The run must already be
/// `compensating`.
pub async fn start_compensation(
    tx: &mut PgConnection,
    run: &Run,
    outbox: store::Outbox,
) -> Result<(), StartError> {
    let last = store::last_step_in(&mut *tx, run.id, i32::MAX, UNDOABLE).await?;
    match last {
        Some(position) => {
            let job = StepJob::new(run.id, position, Direction::Undo);
            push_step_job(tx, &job, Duration::ZERO).await?;
        }
        None => {
            let to = RunStatus::Compensated;
            if store::transition_run(&mut *tx, run.id, RunStatus::Compensating, to, None).await? {
                store::insert_finished_event(tx, outbox, run, to, None).await?;
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
    let current = store::run_by_id(&mut *tx, run_id)
        .await?
        .ok_or(ActionError::NotFound("run"))?;
    let run = match store::request_cancel(&mut *tx, run_id, compensate).await? {
        true => store::run_by_id(&mut *tx, run_id).await?,
        false => None,
    };
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
        store::insert_provision_log(
            &mut *tx,
            run.tenant_id,
            run.id,
            "",
            LogStatus::Requested,
            msg,
        )
        .await?;
    }
    // A step awaiting its executor's callback has no job to reach the
    // next step boundary with: wake it, so the cancel takes effect now.
    if let Some((position, attempt)) = store::awaiting_step(&mut *tx, run_id).await? {
        let job = StepJob {
            wake: Some(attempt),
            ..StepJob::new(run_id, position, Direction::Forward)
        };
        push_step_job(&mut tx, &job, std::time::Duration::ZERO).await?;
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
    pub fn kind(self) -> RunKind {
        match self {
            Self::Soft => RunKind::DeprovisionSoft,
            Self::Hard => RunKind::DeprovisionHard,
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
    let tenant = store::lock_tenant(&mut *tx, key.as_str()).await?;
    let (tenant_id, status) = tenant.ok_or(ActionError::NotFound("tenant"))?;
    if let Some(run) = store::run_by_workflow_id(&mut *tx, &wf).await? {
        tx.commit().await?;
        return Ok(Started {
            run,
            created: false,
        });
    }
    let busy = store::busy_run_of_tenant(&mut *tx, key.as_str()).await?;
    if let Some((kind, run_status)) = busy {
        return Err(ActionError::Conflict(format!(
            "a {} run of this tenant is {run_status}; cancel it or wait for it to finish",
            kind.as_str().replace('_', " ")
        )));
    }
    match (status, mode) {
        (TenantStatus::Active, _) if !force => {
            return Err(ActionError::Conflict(
                "the tenant is active; deprovisioning it needs force=true".into(),
            ));
        }
        (TenantStatus::Active | TenantStatus::Suspended | TenantStatus::Provisioning, _) => {}
        (TenantStatus::Deleted, DeprovisionMode::Hard) => {} // soft-deleted data can still be dropped
        (other, _) => {
            return Err(ActionError::Conflict(format!(
                "the tenant is already {other}"
            )));
        }
    }
    let steps = plan_deprovision(&mut tx, tenant_id, key, mode).await?;
    // The plan the tenant was provisioned on names its resources (hashed
    // names, schema or database): the drop steps follow it too.
    let plan = match store::latest_provision_run(&mut *tx, key.as_str()).await? {
        Some(id) => store::run_by_id(&mut *tx, id)
            .await?
            .and_then(|r| r.plan)
            .map(|p| p.0),
        None => None,
    };
    let new = NewRun {
        workflow_id: &wf,
        kind: mode.kind(),
        key,
        tenant_id: Some(tenant_id),
        params: &ProvisionParams::default(),
        rollback: false,
        steps: &steps,
        plan: plan.as_ref(),
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
) -> sqlx::Result<(Vec<StepRow>, Vec<(String, String)>)> {
    let steps = match store::latest_provision_run(&mut *tx, key.as_str()).await? {
        Some(run_id) => store::steps_of_run(&mut *tx, run_id).await?,
        None => Vec::new(),
    };
    let live = store::live_resources(&mut *tx, tenant_id).await?;
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
        .map(|&(name, _)| {
            if name == "drop_custom" {
                let ran = steps.iter().any(|s| {
                    !crate::plan::is_builtin_step(&s.name) && UNDOABLE.contains(&s.status)
                });
                return match ran {
                    true => PlannedStep::runs(name, None),
                    false => PlannedStep::skipped(
                        name,
                        "nothing to do: no custom step ran for this tenant".into(),
                    ),
                };
            }
            let Some(source) = deprovision_source(name) else {
                return PlannedStep::runs(name, None);
            };
            let row = steps.iter().find(|s| s.name == source);
            let touched = row.is_some_and(|s| UNDOABLE.contains(&s.status));
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
            let recorded = row.and_then(StepRow::backend);
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
    steps_for(run.kind)
        .get(usize::try_from(position).unwrap_or(0))
        .map_or("", |s| s.0)
}
