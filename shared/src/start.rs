//! Starting a provisioning run: one transaction writes the run, its step
//! timeline and the first job. The workflow ID makes it idempotent.

use crate::backend::PlannedStep;
use crate::config::Config;
use crate::db;
use crate::jobs::{Direction, StepJob, push_step_job};
use crate::model::{ProvisionParams, Run};
use crate::plan::plan_provision;
use crate::telemetry::RunTrace;
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
}

impl From<db::OutboxError> for StartError {
    fn from(e: db::OutboxError) -> Self {
        match e {
            db::OutboxError::Db(e) => Self::Db(e),
            db::OutboxError::Queue(e) => Self::Queue(e),
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

/// Starts provisioning `key` with the timeline this deployment's
/// configuration (`cfg`) calls for; rollback follows `ROLLBACK_ON_FAILURE`.
pub async fn start_provision(
    pool: &PgPool,
    cfg: &Config,
    key: &TenantKey,
    params: &ProvisionParams,
    idempotency_key: Option<&str>,
) -> Result<Started, StartError> {
    let wf = idempotency_key.map_or_else(|| workflow_id(key), str::to_owned);
    let mut tx = pool.begin().await?;
    let steps = plan_provision(cfg);
    let new = NewRun {
        workflow_id: &wf,
        kind: "provision",
        key,
        tenant_id: None,
        params,
        rollback: cfg.rollback_on_failure,
        steps: &steps,
    };
    let started = create_run(&mut tx, &new).await?;
    tx.commit().await?;
    Ok(started)
}

/// A run about to be written, with its timeline decided.
pub struct NewRun<'a> {
    pub workflow_id: &'a str,
    pub kind: &'static str,
    pub key: &'a TenantKey,
    pub tenant_id: Option<Uuid>,
    pub params: &'a ProvisionParams,
    pub rollback: bool,
    pub steps: &'a [PlannedStep],
}

/// Writes the run, its whole step timeline and the first job in the
/// caller's transaction, or returns the run already holding the workflow ID.
/// A provisioning run that was rolled back completely left nothing behind:
/// its workflow ID is released (the old run keeps its history under
/// `{workflow_id}@{run id}`) so the name can be provisioned again.
pub async fn create_run(tx: &mut PgConnection, new: &NewRun<'_>) -> Result<Started, StartError> {
    // The row lock makes a concurrent start wait, then find the new run.
    sqlx::query(
        "UPDATE workflow_runs SET workflow_id = workflow_id || '@' || id, updated_at = now()
         WHERE workflow_id = $1 AND kind = 'provision' AND status = 'compensated'",
    )
    .bind(new.workflow_id)
    .execute(&mut *tx)
    .await?;
    // ON CONFLICT waits for a concurrent insert of the same workflow ID to
    // commit, so 50 simultaneous starts produce one row and 49 no-ops.
    let inserted: Option<Run> = sqlx::query_as(
        "INSERT INTO workflow_runs (id, workflow_id, kind, tenant_name, tenant_id, params, rollback, status, trace_context)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'running', $8)
         ON CONFLICT (workflow_id) DO NOTHING RETURNING *",
    )
    .bind(Uuid::now_v7())
    .bind(new.workflow_id)
    .bind(new.kind)
    .bind(new.key.as_str())
    .bind(new.tenant_id)
    .bind(sqlx::types::Json(new.params))
    .bind(new.rollback)
    .bind(sqlx::types::Json(RunTrace::for_current_span()))
    .fetch_optional(&mut *tx)
    .await?;
    let Some(run) = inserted else {
        let run = db::run_by_workflow_id(&mut *tx, new.workflow_id)
            .await?
            .ok_or(sqlx::Error::RowNotFound)?;
        return Ok(Started {
            run,
            created: false,
        });
    };
    let names: Vec<&str> = new.steps.iter().map(|s| s.name).collect();
    let needs: Vec<Option<&str>> = new
        .steps
        .iter()
        .map(|s| s.needs.map(|b| b.as_str()))
        .collect();
    let skipped: Vec<Option<String>> = new
        .steps
        .iter()
        .map(|s| s.skipped.as_ref().map(|r| format!("skipped: {r}")))
        .collect();
    sqlx::query(
        "INSERT INTO workflow_steps (run_id, position, name, status, needs, last_error, started_at, finished_at)
         SELECT $1, ord::int - 1, name, CASE WHEN skip IS NULL THEN 'pending' ELSE 'skipped' END,
                needs, skip,
                CASE WHEN skip IS NULL THEN NULL ELSE now() END,
                CASE WHEN skip IS NULL THEN NULL ELSE now() END
         FROM unnest($2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS t(name, needs, skip, ord)",
    )
    .bind(run.id)
    .bind(&names)
    .bind(&needs)
    .bind(&skipped)
    .execute(&mut *tx)
    .await?;
    let first = new
        .steps
        .iter()
        .position(|s| s.skipped.is_none())
        .unwrap_or(0);
    let job = StepJob {
        run_id: run.id,
        position: i32::try_from(first).unwrap_or(0),
        direction: Direction::Forward,
    };
    push_step_job(tx, &job, Duration::ZERO).await?;
    // Counted before the caller commits: a rolled-back start over-counts,
    // which is rare and harmless for a rate.
    crate::metrics::metrics()
        .runs_started
        .with_label_values(&[new.kind])
        .inc();
    Ok(Started { run, created: true })
}
