//! Starting a provisioning run: one transaction writes the run, its step
//! timeline and the first job. The workflow ID makes it idempotent.

use crate::db;
use crate::jobs::{Direction, StepJob, push_step_job};
use crate::model::{ProvisionParams, Run};
use crate::plan::steps_for;
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

#[derive(Debug)]
pub struct Started {
    pub run: Run,
    /// False when the workflow ID already had a run: the caller got that one.
    pub created: bool,
}

pub fn workflow_id(key: &TenantKey) -> String {
    format!("provision-tenant-{key}")
}

pub async fn start_provision(
    pool: &PgPool,
    key: &TenantKey,
    params: &ProvisionParams,
    rollback: bool,
    idempotency_key: Option<&str>,
) -> Result<Started, StartError> {
    let wf = idempotency_key.map_or_else(|| workflow_id(key), str::to_owned);
    let mut tx = pool.begin().await?;
    let new = NewRun {
        workflow_id: &wf,
        kind: "provision",
        key,
        tenant_id: None,
        params,
        rollback,
    };
    let started = create_run(&mut tx, &new).await?;
    tx.commit().await?;
    Ok(started)
}

/// A run about to be written; `kind` picks its plan.
pub struct NewRun<'a> {
    pub workflow_id: &'a str,
    pub kind: &'static str,
    pub key: &'a TenantKey,
    pub tenant_id: Option<Uuid>,
    pub params: &'a ProvisionParams,
    pub rollback: bool,
}

/// Writes the run, its whole step timeline and the first job in the
/// caller's transaction, or returns the run already holding the workflow ID.
pub async fn create_run(tx: &mut PgConnection, new: &NewRun<'_>) -> Result<Started, StartError> {
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
    let names: Vec<&str> = steps_for(new.kind).iter().map(|(n, _)| *n).collect();
    sqlx::query(
        "INSERT INTO workflow_steps (run_id, position, name, status)
         SELECT $1, ord::int - 1, name, 'pending' FROM unnest($2::text[]) WITH ORDINALITY AS t(name, ord)",
    )
    .bind(run.id)
    .bind(&names)
    .execute(&mut *tx)
    .await?;
    let job = StepJob {
        run_id: run.id,
        position: 0,
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
