//! Spans and metrics around each job. One span per step attempt, a child of
//! the run's span (ids stored with the run) and linked to the span that
//! queued the job: for a retry, the failed attempt. The job that ends a run
//! exports the run span and counts the outcome.

use super::{Engine, EngineError, RunState, store};
use landlord_shared::jobs::{Direction, StepJob};
use landlord_shared::metrics::metrics;
use landlord_shared::model::{Run, StepRow};
use landlord_shared::store::{RunStatus, StepStatus};
use landlord_shared::telemetry::parse_traceparent;
use opentelemetry::KeyValue;
use tracing::Instrument;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt;

pub(super) fn direction_name(d: Direction) -> &'static str {
    match d {
        Direction::Forward => "forward",
        Direction::Undo => "undo",
    }
}

/// Every log line of the attempt carries tenant, run, step and attempt.
/// The attempt number is the one the claim is about to take.
fn attempt_span(
    run: &Run,
    job: &StepJob,
    row: Option<&StepRow>,
    origin: Option<&str>,
) -> tracing::Span {
    let step = row.map_or("unknown", |r| r.name.as_str());
    let attempt = row.map_or(0, |r| match job.direction {
        Direction::Forward => r.attempts + 1,
        Direction::Undo => r.undo_attempts + 1,
    });
    let direction = direction_name(job.direction);
    let span = tracing::info_span!("step",
        otel.name = %format!("{direction} {step}"),
        tenant = %run.tenant_name, run_id = %run.id, step, attempt, direction,
        outcome = Empty);
    if let Some(cx) = run.trace_context.as_ref().and_then(|t| t.run_context()) {
        // Fails only when spans are not exported; then there is no parent.
        let _ = span.set_parent(cx);
    }
    if let Some(link) = origin.and_then(parse_traceparent) {
        span.add_link(link);
    }
    span
}

/// Counts a recovery (a forward step found `running` was held by a worker
/// that stopped) and a retry.
fn count_recovery_and_retry(job: &StepJob, row: &StepRow) {
    let recovered = job.direction == Direction::Forward && row.status == StepStatus::Running;
    if recovered {
        metrics()
            .orphan_recoveries
            .with_label_values(&[&row.name])
            .inc();
    }
    let retry = match job.direction {
        Direction::Forward => row.status == StepStatus::Retrying,
        Direction::Undo => row.undo_attempts > 0,
    };
    if retry {
        metrics()
            .step_retries
            .with_label_values(&[&row.name, direction_name(job.direction)])
            .inc();
    }
}

impl Engine {
    /// Handles a job pushed by the span `origin` (a `traceparent`).
    pub async fn handle_traced(
        &self,
        job: StepJob,
        origin: Option<&str>,
    ) -> Result<(), EngineError> {
        let _counted = self.count_in_flight();
        let delivery = self.deliveries.enter(job.run_id);
        let handled = self.handle_delivery(job, origin).await;
        delivery.leave().await;
        handled
    }

    async fn handle_delivery(&self, job: StepJob, origin: Option<&str>) -> Result<(), EngineError> {
        let master = &self.deps.master;
        if let Some(attempt) = job.wake
            && !store::still_awaits(master, job.run_id, job.position, attempt).await?
        {
            return Ok(()); // a callback or deadline after the attempt ended
        }
        let Some((run, driver)) = store::drive_run(master, job.run_id).await? else {
            tracing::warn!(run_id = %job.run_id, "job for unknown run dropped");
            return Ok(());
        };
        let was_finished = run.is_finished();
        let steps = store::steps_of_run(master, run.id).await?;
        let mut state = RunState::new(run, steps, driver);
        let mut job = job;
        let mut origin = origin;
        loop {
            let row = state.step(job.position).cloned();
            if let Some(row) = &row {
                count_recovery_and_retry(&job, row);
            }
            let span = attempt_span(&state.run, &job, row.as_ref(), origin);
            match self
                .dispatch(&mut state, &job, driver)
                .instrument(span)
                .await?
            {
                super::forward::Next::Done => break,
                super::forward::Next::Continue(position) => {
                    job.position = position;
                    // Steps carried on in-process link to nothing: their
                    // parent, the run span, already orders them.
                    origin = None;
                }
            }
        }
        if !was_finished {
            self.after_job(&state.run).await?;
        }
        Ok(())
    }

    /// Exports the run span once the run has finished. `known` is the run
    /// as this delivery left it: finished by this worker's own last
    /// checkpoint, it needs no read.
    async fn after_job(&self, known: &Run) -> Result<(), EngineError> {
        if known.is_finished() {
            export_run_span(known);
        } else if let Some(run) = store::run_by_id(&self.deps.master, known.id).await?
            && run.is_finished()
        {
            export_run_span(&run);
        }
        Ok(())
    }
}

/// The run's span, ended with its outcome (once it has finished).
fn export_run_span(run: &Run) {
    if let Some(trace) = &run.trace_context {
        let attributes = vec![
            KeyValue::new("tenant", run.tenant_name.clone()),
            KeyValue::new("run_id", run.id.to_string()),
            KeyValue::new("kind", run.kind.as_str()),
            KeyValue::new("outcome", run.status.as_str()),
        ];
        trace.export_run_span(
            run.created_at.into(),
            attributes,
            run.status == RunStatus::Completed,
        );
    }
}
