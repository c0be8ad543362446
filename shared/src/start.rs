//! Starting a provisioning run: one transaction writes the run, its step
//! timeline and the first job. The workflow ID makes it idempotent.

use crate::db;
use crate::jobs::{Direction, StepJob, push_step_job};
use crate::model::{ProvisionParams, Run};
use crate::plan::PROVISION_STEPS;
use crate::tenant::TenantKey;
use sqlx::PgPool;
use std::time::Duration;
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error("enqueue failed: {0}")]
    Queue(#[from] apalis_postgres::Error),
}

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
    // ON CONFLICT waits for a concurrent insert of the same workflow ID to
    // commit, so 50 simultaneous starts produce one row and 49 no-ops.
    let inserted: Option<Run> = sqlx::query_as(
        "INSERT INTO workflow_runs (id, workflow_id, kind, tenant_name, params, rollback, status)
         VALUES ($1, $2, 'provision', $3, $4, $5, 'running')
         ON CONFLICT (workflow_id) DO NOTHING RETURNING *",
    )
    .bind(Uuid::now_v7())
    .bind(&wf)
    .bind(key.as_str())
    .bind(sqlx::types::Json(params))
    .bind(rollback)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(run) = inserted else {
        let run = db::run_by_workflow_id(&mut *tx, &wf)
            .await?
            .ok_or(sqlx::Error::RowNotFound)?;
        tx.commit().await?;
        return Ok(Started {
            run,
            created: false,
        });
    };
    let names: Vec<&str> = PROVISION_STEPS.iter().map(|(n, _)| *n).collect();
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
    push_step_job(&mut tx, &job, Duration::ZERO).await?;
    tx.commit().await?;
    Ok(Started { run, created: true })
}

#[derive(Debug, thiserror::Error)]
pub enum RetryError {
    #[error("run not found")]
    NotFound,
    #[error("only a failed run can be retried; this one is {0}")]
    NotFailed(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error("enqueue failed: {0}")]
    Queue(#[from] apalis_postgres::Error),
}

/// Resumes a failed run at its failed step: completed checkpoints are kept
/// and not re-run; the failed step gets a fresh retry budget.
pub async fn retry_run(pool: &PgPool, run_id: Uuid) -> Result<Run, RetryError> {
    let mut tx = pool.begin().await?;
    let current = db::run_by_id(&mut *tx, run_id)
        .await?
        .ok_or(RetryError::NotFound)?;
    let run: Option<Run> = sqlx::query_as(
        "UPDATE workflow_runs SET status = 'running', error = NULL, finished_at = NULL, updated_at = now()
         WHERE id = $1 AND status = 'failed' RETURNING *",
    )
    .bind(run_id)
    .fetch_optional(&mut *tx)
    .await?;
    let run = run.ok_or(RetryError::NotFailed(current.status))?;
    let position: i32 = sqlx::query_scalar(
        "UPDATE workflow_steps SET status = 'pending', attempts = 0, last_error = NULL, finished_at = NULL
         WHERE run_id = $1 AND status = 'failed' RETURNING position",
    )
    .bind(run_id)
    .fetch_optional(&mut *tx)
    .await?
    .unwrap_or(0);
    if let Some(tenant_id) = run.tenant_id {
        sqlx::query(
            "UPDATE tenants SET status = 'provisioning', updated_at = now() WHERE id = $1 AND status = 'suspended'",
        )
        .bind(tenant_id)
        .execute(&mut *tx)
        .await?;
    }
    let step = crate::plan::PROVISION_STEPS
        .get(usize::try_from(position).unwrap_or(0))
        .map_or("", |s| s.0);
    db::insert_provision_log(
        &mut *tx,
        run.tenant_id,
        run.id,
        step,
        "retrying",
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
