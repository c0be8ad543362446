//! Runs one attempt of a step on its own task so that a timeout can abandon
//! it and a panic is caught: both become an ordinary failed attempt (apalis
//! would leave the job `Running` otherwise, trap 4).

use crate::step::{Outcome, Step, StepCtx, StepError};
use landlord_shared::faults::{Fault, FaultKind};
use landlord_shared::metrics::metrics;
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Instrument;

pub async fn run_attempt(
    step: Arc<dyn Step>,
    ctx: StepCtx,
    faults: Vec<Fault>,
    timeout: Duration,
) -> Result<Outcome, StepError> {
    let name = step.name();
    let started = Instant::now();
    // The spawned task keeps the attempt's span: log lines and outgoing
    // calls of the step body belong to the attempt.
    let task = tokio::spawn(async move { faulty_run(step, ctx, faults).await }.in_current_span());
    let result = guard(name, task, timeout).await;
    observe(name, "forward", started, result.as_ref().err());
    result
}

pub async fn compensate_attempt(
    step: Arc<dyn Step>,
    ctx: StepCtx,
    output: Option<Value>,
    faults: Vec<Fault>,
    timeout: Duration,
) -> Result<(), StepError> {
    let name = step.name();
    let started = Instant::now();
    let refused = faults
        .iter()
        .any(|f| f.step == name && f.kind == FaultKind::UndoPermanent);
    let task = tokio::spawn(
        async move {
            if refused {
                return Err(StepError::permanent("injected permanent fault in the undo"));
            }
            step.compensate(&ctx, output.as_ref()).await
        }
        .in_current_span(),
    );
    let result = guard(name, task, timeout).await;
    observe(name, "undo", started, result.as_ref().err());
    result
}

/// Records the attempt's outcome on its span and in the step histogram.
fn observe(name: &str, direction: &str, started: Instant, err: Option<&StepError>) {
    let outcome = match err {
        None => "ok",
        Some(e) if e.is_transient() => "transient_error",
        Some(_) => "permanent_error",
    };
    tracing::Span::current().record("outcome", outcome);
    metrics().step_attempt(name, direction, outcome, started.elapsed());
}

/// Aborts the step's task when the attempt is dropped: a worker generation
/// that lost the database drops its handlers (runner::supervise), and the
/// step body must stop with them, as in a crashed process, rather than run
/// on beside the re-delivered attempt.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn guard<T>(
    name: &str,
    task: tokio::task::JoinHandle<Result<T, StepError>>,
    timeout: Duration,
) -> Result<T, StepError> {
    let mut task = AbortOnDrop(task);
    let task = &mut task.0;
    match tokio::time::timeout(timeout, &mut *task).await {
        Ok(Ok(result)) => result,
        Ok(Err(join)) if join.is_panic() => Err(StepError::transient(format!(
            "step {name} panicked: {}",
            panic_text(join)
        ))),
        Ok(Err(join)) => Err(StepError::transient(format!(
            "step {name} was cancelled: {join}"
        ))),
        Err(_) => {
            task.abort();
            Err(StepError::transient(format!(
                "step {name} timed out after {timeout:?}"
            )))
        }
    }
}

fn panic_text(join: tokio::task::JoinError) -> String {
    let payload = join.into_panic();
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-text panic".into())
}

async fn faulty_run(
    step: Arc<dyn Step>,
    ctx: StepCtx,
    faults: Vec<Fault>,
) -> Result<Outcome, StepError> {
    let mine: Vec<FaultKind> = faults
        .into_iter()
        .filter(|f| f.step == step.name())
        .map(|f| f.kind)
        .collect();
    for kind in &mine {
        match kind {
            FaultKind::Transient(n) if ctx.attempt <= i32::try_from(*n).unwrap_or(i32::MAX) => {
                return Err(StepError::transient(format!(
                    "injected transient fault (attempt {})",
                    ctx.attempt
                )));
            }
            FaultKind::Permanent => return Err(StepError::permanent("injected permanent fault")),
            FaultKind::Panic => panic!("injected panic in step {}", step.name()),
            FaultKind::Hang => std::future::pending::<()>().await,
            _ => {}
        }
    }
    let output = step.start(&ctx).await?;
    for kind in &mine {
        match kind {
            FaultKind::PermanentAfter => {
                return Err(StepError::permanent(
                    "injected permanent fault after the step ran",
                ));
            }
            FaultKind::SleepAfter(d) => tokio::time::sleep(*d).await,
            _ => {}
        }
    }
    Ok(output)
}
