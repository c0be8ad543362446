//! The workflow engine on the apalis queue. A job drives a run forward
//! from a step: each attempt is claimed in `workflow_steps`, run under a
//! timeout, and its outcome (checkpoint, retry job, or failure + event)
//! committed in one transaction guarded by the attempt's lease. After a
//! checkpoint the same worker goes on with the next step in-process; the
//! queue carries a run only to start it, after a crash (apalis re-queues
//! the job of a dead worker), for a retry's delay, when a worker lacks a
//! backend, at shutdown, and when a saturated worker sees a recovered job
//! waiting. Each delivery takes the run's next driver epoch; a step is
//! claimed only under the current one.

mod attempt;
mod awaiting;
mod backoff;
mod cancel;
mod deliveries;
mod forward;
mod observe;
mod undo;
mod verdict;

pub use verdict::{Budget, Verdict};

use crate::deps::Deps;
use crate::step::{Step, StepCtx};
use landlord_shared::jobs::{Direction, StepJob, push_step_job};
use landlord_shared::model::{Run, StepRow};
use landlord_shared::plan::steps_for;
use landlord_shared::store;
use landlord_shared::store::LogStatus;
use landlord_shared::tenant::{TenantKey, TenantNames};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Failures of the engine itself (the master DB is unreachable): the job
/// fails and apalis hands it out again.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Queue(#[from] apalis_postgres::Error),
    #[error(transparent)]
    Outbox(#[from] landlord_shared::store::OutboxError),
    #[error(transparent)]
    Start(#[from] landlord_shared::start::StartError),
    #[error("run {0} has no step at position {1}")]
    NoSuchStep(uuid::Uuid, i32),
}

/// How long a step waits before a worker that could not run it offers it
/// to the fleet again.
const WAIT_FOR_WORKER: Duration = Duration::from_secs(1);

pub struct Engine {
    pub deps: Arc<Deps>,
    steps: HashMap<&'static str, Arc<dyn Step>>,
    /// Names this process in "waiting for a worker" messages.
    name: String,
    /// Set when the worker is shutting down: a run that reaches a step
    /// boundary is handed to the fleet instead of carried on here.
    draining: std::sync::atomic::AtomicBool,
    /// Jobs this process is handling now: with every slot taken, a run is
    /// handed back at its step boundary if a recovered job waits.
    in_flight: std::sync::atomic::AtomicUsize,
    /// Deliveries of each run's job live here, acked together.
    deliveries: deliveries::Deliveries,
    /// When [`Engine::hand_back`] last found no recovered job waiting.
    none_recovered: std::sync::Mutex<Option<std::time::Instant>>,
}

/// A saturated worker asks the queue for recovered jobs at most this often
/// (it asked at every step boundary: a third of a drain's statements). A
/// recovered job waits at most this much longer; its pickup takes up to a
/// poll interval anyway.
const RECOVERED_CHECK_EVERY: Duration = Duration::from_millis(100);

/// Counts a job in [`Engine::in_flight`] while it is handled.
pub(super) struct InFlight<'a>(&'a std::sync::atomic::AtomicUsize);

impl<'a> InFlight<'a> {
    fn new(count: &'a std::sync::atomic::AtomicUsize) -> Self {
        count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Self(count)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Engine {
    pub fn new(deps: Arc<Deps>, steps: Vec<Arc<dyn Step>>) -> Self {
        let steps = steps.into_iter().map(|s| (s.name(), s)).collect();
        let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
        let name = format!("worker {} pid {}", host.trim(), std::process::id());
        Self {
            deps,
            steps,
            name,
            draining: std::sync::atomic::AtomicBool::new(false),
            in_flight: std::sync::atomic::AtomicUsize::new(0),
            deliveries: deliveries::Deliveries::default(),
            none_recovered: std::sync::Mutex::new(None),
        }
    }

    /// The code of a run's step: built in, or the executor call of one of
    /// the custom steps the run's plan defined when it was created.
    fn step_impl(&self, run: &Run, name: &str) -> Option<Arc<dyn Step>> {
        self.steps.get(name).cloned().or_else(|| {
            let def = run.plan.as_ref()?.0.http_step(name)?.clone();
            Some(Arc::new(crate::steps::http_step::Custom(def)) as Arc<dyn Step>)
        })
    }

    pub(super) fn count_in_flight(&self) -> InFlight<'_> {
        InFlight::new(&self.in_flight)
    }

    /// Whether a run at a step boundary goes back to the queue instead of
    /// on here: when the worker is stopping, or when every slot is taken
    /// and a job re-queued from a dead worker waits (apalis hands it out
    /// first: it is the oldest), so carrying runs on never starves crash
    /// recovery.
    async fn hand_back(&self) -> Result<bool, EngineError> {
        if self.is_draining() {
            return Ok(true);
        }
        let busy = self.in_flight.load(std::sync::atomic::Ordering::SeqCst);
        if busy < self.deps.cfg.worker_concurrency {
            return Ok(false);
        }
        if let Ok(seen) = self.none_recovered.lock()
            && seen.is_some_and(|at| at.elapsed() < RECOVERED_CHECK_EVERY)
        {
            return Ok(false);
        }
        let waiting = landlord_shared::jobs::recovered_job_waiting(&self.deps.master).await?;
        if let Ok(mut seen) = self.none_recovered.lock() {
            *seen = (!waiting).then(std::time::Instant::now);
        }
        Ok(waiting)
    }

    /// From now on, runs leave this worker at their next step boundary.
    pub fn drain(&self) {
        self.draining
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    fn is_draining(&self) -> bool {
        self.draining.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Why this worker cannot run a step needing `needs`, if it cannot: it
    /// lacks the backend, and leaves the step for a worker that has it.
    fn cannot_run(&self, step: &StepRow) -> Option<String> {
        let needs = step.backend()?;
        (!needs.configured(&self.deps.cfg)).then(|| {
            format!(
                "waiting for a worker that can run {} ({} is not configured on {})",
                step.name,
                needs.variable(),
                self.name
            )
        })
    }

    /// Leaves a step this worker cannot run for another worker: the job
    /// comes back after a pause, and the step says what it waits for.
    async fn leave_for_another_worker(
        &self,
        run: &Run,
        step: &StepRow,
        direction: Direction,
        why: &str,
    ) -> Result<(), EngineError> {
        let mut tx = self.deps.master.begin().await?;
        if store::wait_for_worker(&mut *tx, run.id, step.position, why).await? {
            tracing::warn!(tenant = %run.tenant_name, run_id = %run.id, step = %step.name, "{why}");
            store::insert_provision_log(
                &mut *tx,
                run.tenant_id,
                run.id,
                &step.name,
                LogStatus::Waiting,
                why,
            )
            .await?;
        }
        landlord_shared::metrics::metrics()
            .steps_waiting
            .with_label_values(&[&step.name])
            .inc();
        let job = StepJob::new(run.id, step.position, direction);
        push_step_job(&mut tx, &job, WAIT_FOR_WORKER).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn handle(&self, job: StepJob) -> Result<(), EngineError> {
        self.handle_traced(job, None).await
    }

    async fn dispatch(
        &self,
        state: &mut RunState,
        job: &StepJob,
        driver: store::Driver,
    ) -> Result<forward::Next, EngineError> {
        match job.direction {
            Direction::Forward => self.forward(state, job.position, driver).await,
            Direction::Undo => self.undo(state, job.position, driver).await,
        }
    }

    /// The retry budget of a step attempt, forward or undo.
    fn step_budget(&self) -> Budget {
        Budget {
            attempts: self.deps.cfg.retry_attempts,
            base_delay: self.deps.cfg.retry_delay,
            max_delay: self.deps.cfg.retry_max_delay,
        }
    }

    fn context(&self, state: &RunState, step: &StepRow, attempt: i32) -> StepCtx {
        let run = &state.run;
        let outputs = state
            .steps
            .iter()
            .filter_map(|s| Some((s.name.clone(), s.output.clone()?)))
            .collect();
        // The run row was written from a parsed key; a row that no longer
        // parses is a broken invariant, surfaced by the validate step.
        let key = TenantKey::parse(&run.tenant_name)
            .unwrap_or_else(|_| TenantKey::parse("invalid").expect("literal key parses"));
        StepCtx {
            names: TenantNames::new(&self.deps.cfg.name_prefix, &key).with_naming(
                run.plan
                    .as_ref()
                    .map_or(landlord_shared::catalogue::Naming::Prefix, |p| p.0.naming),
            ),
            key,
            deps: self.deps.clone(),
            tenant_id: run.tenant_id,
            run: run.clone(),
            outputs,
            attempt,
            needs: step.backend(),
        }
    }
}

/// A run as the worker driving it knows it: read once per delivery, then
/// kept up to date by this worker's own commits while it carries the run
/// on, so a step boundary reads nothing. Only this delivery's driver
/// changes the steps (claims need its epoch); an operator's cancel is seen
/// by the claim, which refuses to start an attempt of a cancelled run.
pub(super) struct RunState {
    pub run: Run,
    pub steps: Vec<StepRow>,
    /// This delivery's right to drive the run.
    pub driver: store::Driver,
    /// The next step's attempt, claimed with the previous checkpoint.
    pub claimed: Option<(i32, store::Claim)>,
    /// When the last forward step body here ended: the next one's start
    /// measures the engine's time between them.
    pub body_ended: Option<std::time::Instant>,
}

impl RunState {
    pub(super) fn new(run: Run, steps: Vec<StepRow>, driver: store::Driver) -> Self {
        Self {
            run,
            steps,
            driver,
            claimed: None,
            body_ended: None,
        }
    }

    /// The attempt claimed for `position` with the previous checkpoint.
    fn take_claim(&mut self, position: i32) -> Option<store::Claim> {
        match self.claimed.take() {
            Some((p, claim)) if p == position => Some(claim),
            _ => None,
        }
    }

    fn step(&self, position: i32) -> Option<&StepRow> {
        self.steps.get(usize::try_from(position).ok()?)
    }

    fn total(&self) -> usize {
        self.steps.len()
    }

    fn first_unfinished(&self) -> Option<i32> {
        self.steps
            .iter()
            .find(|s| !s.status.is_done())
            .map(|s| s.position)
    }

    /// The first step at or after `from` that the run's plan does not skip.
    fn next_runnable(&self, from: i32) -> Option<i32> {
        self.steps
            .iter()
            .skip(usize::try_from(from).unwrap_or(usize::MAX))
            .find(|s| s.status != landlord_shared::store::StepStatus::Skipped)
            .map(|s| s.position)
    }

    fn completed(&mut self, position: i32, output: serde_json::Value, tenant: Option<uuid::Uuid>) {
        if let Some(row) = usize::try_from(position)
            .ok()
            .and_then(|i| self.steps.get_mut(i))
        {
            row.status = landlord_shared::store::StepStatus::Completed;
            row.output = Some(output);
        }
        self.run.tenant_id = self.run.tenant_id.or(tenant);
    }
}

/// How many steps a run of this kind has.
pub fn total_steps(run: &Run) -> i32 {
    i32::try_from(steps_for(run.kind).len()).unwrap_or(i32::MAX)
}
