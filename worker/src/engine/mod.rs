//! The workflow engine: one apalis job per step attempt. Each attempt is
//! claimed in `workflow_steps`, run under a timeout, and its outcome
//! (checkpoint + next job, retry job, or failure + event) committed in one
//! transaction.

mod attempt;
mod backoff;
mod cancel;
mod forward;
mod observe;
pub(crate) mod store;
mod undo;

pub use backoff::retry_delay;

use crate::deps::Deps;
use crate::step::{Step, StepCtx};
use landlord_shared::db;
use landlord_shared::jobs::{Direction, StepJob};
use landlord_shared::model::Run;
use landlord_shared::plan::steps_for;
use landlord_shared::tenant::{TenantKey, TenantNames};
use std::collections::HashMap;
use std::sync::Arc;

/// Failures of the engine itself (the master DB is unreachable): the job
/// fails and apalis hands it out again.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Queue(#[from] apalis_postgres::Error),
    #[error(transparent)]
    Outbox(#[from] landlord_shared::db::OutboxError),
    #[error(transparent)]
    Start(#[from] landlord_shared::start::StartError),
    #[error("run {0} has no step at position {1}")]
    NoSuchStep(uuid::Uuid, i32),
}

pub struct Engine {
    pub deps: Arc<Deps>,
    steps: HashMap<&'static str, Arc<dyn Step>>,
}

impl Engine {
    pub fn new(deps: Arc<Deps>, steps: Vec<Arc<dyn Step>>) -> Self {
        let steps = steps.into_iter().map(|s| (s.name(), s)).collect();
        Self { deps, steps }
    }

    /// Why the step at `name` will not run on this worker, if it will not.
    fn skip_reason(&self, name: &str) -> Option<&'static str> {
        match self.steps.get(name) {
            Some(step) => step.skip_reason(&self.deps),
            None => Some("not available in this build"),
        }
    }

    pub async fn handle(&self, job: StepJob) -> Result<(), EngineError> {
        self.handle_traced(job, None).await
    }

    async fn dispatch(&self, run: Run, job: StepJob) -> Result<(), EngineError> {
        match job.direction {
            Direction::Forward => self.forward(run, job.position).await,
            Direction::Undo => self.undo(run, job.position).await,
        }
    }

    async fn context(&self, run: &Run, attempt: i32) -> Result<StepCtx, EngineError> {
        let outputs = db::steps_of_run(&self.deps.master, run.id)
            .await?
            .into_iter()
            .filter_map(|s| Some((s.name, s.output?)))
            .collect();
        // The run row was written from a parsed key; a row that no longer
        // parses is a broken invariant, surfaced by the validate step.
        let key = TenantKey::parse(&run.tenant_name)
            .unwrap_or_else(|_| TenantKey::parse("invalid").expect("literal key parses"));
        Ok(StepCtx {
            names: TenantNames::new(&self.deps.cfg.name_prefix, &key),
            key,
            deps: self.deps.clone(),
            tenant_id: run.tenant_id,
            run: run.clone(),
            outputs,
            attempt,
        })
    }
}

/// How many steps a run of this kind has.
pub fn total_steps(run: &Run) -> i32 {
    i32::try_from(steps_for(&run.kind).len()).unwrap_or(i32::MAX)
}
