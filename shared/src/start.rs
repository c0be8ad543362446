//! Starting a provisioning run: one transaction writes the run, its step
//! timeline and the first job. The workflow ID makes it idempotent.

use crate::backend::PlannedStep;
use crate::catalogue::Plan;
use crate::config::Config;
use crate::jobs::{Direction, StepJob, push_step_job};
use crate::model::{ProvisionParams, Run};
use crate::plan::plan_provision;
use crate::request::FieldError;
use crate::store;
use crate::store::RunKind;
use crate::tenant::TenantKey;
use sqlx::{PgConnection, PgPool};
use std::time::Duration;
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error("enqueue failed: {0}")]
    Queue(#[from] apalis_postgres::Error),
    /// The request names a plan the catalogue does not have.
    #[error("invalid {0}")]
    Plan(FieldError),
}

impl From<store::OutboxError> for StartError {
    fn from(e: store::OutboxError) -> Self {
        match e {
            store::OutboxError::Db(e) => Self::Db(e),
            store::OutboxError::Queue(e) => Self::Queue(e),
        }
    }
}

#[derive(Debug)]
pub struct Started {
    pub run: Run,
    /// False when the workflow ID already had a run: the caller got that one.
    pub created: bool,
}

pub fn workflow_id(key: &TenantKey) -> String {
    format!("provision-tenant-{key}")
}

/// Starts provisioning `key` on the plan `params` names (the catalogue's
/// default when none), with the timeline that plan and this deployment's
/// configuration (`cfg`) call for; rollback follows `ROLLBACK_ON_FAILURE`.
/// An unknown plan writes nothing.
pub async fn start_provision(
    pool: &PgPool,
    cfg: &Config,
    key: &TenantKey,
    params: &ProvisionParams,
    idempotency_key: Option<&str>,
) -> Result<Started, StartError> {
    let wf = idempotency_key.map_or_else(|| workflow_id(key), str::to_owned);
    let plan = cfg
        .plans
        .resolve(params.plan.as_deref())
        .map_err(StartError::Plan)?;
    let params = ProvisionParams {
        plan: Some(plan.name.clone()),
        ..params.clone()
    };
    let steps = plan_provision(cfg, &plan);
    let mut tx = pool.begin().await?;
    let new = NewRun {
        workflow_id: &wf,
        kind: RunKind::Provision,
        key,
        tenant_id: None,
        params: &params,
        rollback: cfg.rollback_on_failure,
        steps: &steps,
        plan: Some(&plan),
    };
    let started = create_run(&mut tx, &new).await?;
    tx.commit().await?;
    Ok(started)
}

/// A run about to be written, with its timeline decided.
pub struct NewRun<'a> {
    pub workflow_id: &'a str,
    pub kind: RunKind,
    pub key: &'a TenantKey,
    pub tenant_id: Option<Uuid>,
    pub params: &'a ProvisionParams,
    pub rollback: bool,
    pub steps: &'a [PlannedStep],
    /// A provisioning run's resolved plan, stored with it.
    pub plan: Option<&'a Plan>,
}

/// Writes the run, its whole step timeline and the first job in the
/// caller's transaction, or returns the run already holding the workflow ID.
/// A provisioning run that was rolled back completely left nothing behind:
/// its workflow ID is released (the old run keeps its history under
/// `{workflow_id}@{run id}`) so the name can be provisioned again.
pub async fn create_run(tx: &mut PgConnection, new: &NewRun<'_>) -> Result<Started, StartError> {
    store::release_compensated(&mut *tx, new.workflow_id).await?;
    let insert = store::RunInsert {
        workflow_id: new.workflow_id,
        kind: new.kind,
        tenant_name: new.key.as_str(),
        tenant_id: new.tenant_id,
        params: new.params,
        rollback: new.rollback,
        plan: new.plan,
    };
    let inserted = store::insert_run(&mut *tx, &insert).await?;
    let Some(run_id) = inserted else {
        let run = store::run_by_workflow_id(&mut *tx, new.workflow_id)
            .await?
            .ok_or(sqlx::Error::RowNotFound)?;
        return Ok(Started {
            run,
            created: false,
        });
    };
    let steps: Vec<store::StepInsert<'_>> = new
        .steps
        .iter()
        .map(|s| store::StepInsert {
            name: &s.name,
            needs: s.needs.map(|b| b.as_str()),
            skipped: s.skipped.clone(),
        })
        .collect();
    store::insert_steps(&mut *tx, run_id, &steps).await?;
    let run = store::run_by_id(&mut *tx, run_id)
        .await?
        .ok_or(sqlx::Error::RowNotFound)?;
    let first = new
        .steps
        .iter()
        .position(|s| s.skipped.is_none())
        .unwrap_or(0);
    let job = StepJob::new(
        run.id,
        i32::try_from(first).unwrap_or(0),
        Direction::Forward,
    );
    push_step_job(tx, &job, Duration::ZERO).await?;
    // Counted before the caller commits: a rolled-back start over-counts,
    // which is rare and harmless for a rate.
    crate::metrics::metrics()
        .runs_started
        .with_label_values(&[new.kind.as_str()])
        .inc();
    Ok(Started { run, created: true })
}
