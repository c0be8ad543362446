//! Runs the engine as an apalis worker on the Postgres queue.

use crate::deps::Deps;
use crate::engine::Engine;
use crate::steps::all_steps;
use apalis::prelude::*;
use apalis_postgres::{PostgresStorage, Pubsub};
use futures::FutureExt;
use landlord_shared::config::Config;
use landlord_shared::jobs::{NOTIFY_QUEUE, NotifyJob, STEP_QUEUE, StepJob, Traced};
use landlord_shared::telemetry::remote_context;
use sqlx::PgPool;
use std::future::Future;
use std::sync::Arc;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

pub async fn build_engine(cfg: Config) -> anyhow::Result<Arc<Engine>> {
    cfg.check_runner()?;
    let deps = Arc::new(Deps::connect(cfg).await?);
    Ok(Arc::new(Engine::new(deps, all_steps())))
}

/// A name no other process shares: apalis tracks liveness per name, and a
/// restarted process reusing one can strand its old jobs (trap 2).
pub fn unique_worker_name() -> String {
    let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    let host = host.trim();
    let short = uuid::Uuid::new_v4().simple().to_string();
    format!(
        "landlord-{}-{}-{}",
        if host.is_empty() { "host" } else { host },
        std::process::id(),
        &short[..8]
    )
}

async fn handle(job: Traced<StepJob>, engine: Data<Arc<Engine>>) -> Result<(), BoxDynError> {
    engine
        .handle_traced(job.job, job.trace.as_deref())
        .await
        .map_err(|e| {
            tracing::error!("engine error, job will be re-delivered: {e}");
            e.into()
        })
}

/// A delivery belongs to the trace of the attempt that wrote its event.
async fn handle_notify(
    job: Traced<NotifyJob>,
    engine: Data<Arc<Engine>>,
) -> Result<(), BoxDynError> {
    let span = tracing::info_span!("notify", event_id = %job.job.event_id);
    if let Some(cx) = job.trace.as_deref().and_then(remote_context) {
        let _ = span.set_parent(cx);
    }
    crate::notify::deliver(&engine.deps, job.job)
        .instrument(span)
        .await
        .map_err(|e| {
            tracing::error!("delivery error, job will be re-delivered: {e}");
            e.into()
        })
}

/// A queue backend: LISTEN for prompt pickup, plus polling, since the insert
/// trigger does not fire for delayed jobs (trap 7).
fn backend<T>(
    cfg: &Config,
    pool: &PgPool,
    queue: &str,
    batch: usize,
) -> PollWith<PostgresStorage<T>, Strategy> {
    let config = apalis_postgres::Config::default()
        .queue(queue)
        .batch_size(batch)
        .heartbeat_interval(cfg.heartbeat_interval)
        .missed_heartbeats(cfg.missed_heartbeats);
    let storage = PostgresStorage::<T>::new(pool).with_config(config);
    let strategy = Strategy::new()
        .stream(Pubsub::new(pool.clone(), queue.to_owned()))
        .interval(cfg.poll_interval);
    PollWith::new(storage, strategy)
}

/// Consumes step and notification jobs until `shutdown` resolves;
/// in-flight jobs finish first.
pub async fn run_worker(
    engine: Arc<Engine>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let cfg = &engine.deps.cfg;
    let pool = engine.deps.master.clone();
    let name = unique_worker_name();
    tracing::info!(worker = %name, concurrency = cfg.worker_concurrency,
        orphan_timeout = ?cfg.orphan_timeout(), "worker started");
    let shutdown = shutdown.boxed().shared();
    let metrics = match &cfg.metrics_bind {
        Some(bind) => {
            let listener = tokio::net::TcpListener::bind(bind).await?;
            tracing::info!("metrics on http://{}/metrics", listener.local_addr()?);
            let server =
                landlord_shared::metrics::serve(listener, pool.clone(), cfg.orphan_timeout());
            Some(tokio::spawn(server))
        }
        None => None,
    };
    let steps = WorkerBuilder::new(name.clone())
        .backend(backend::<Traced<StepJob>>(
            cfg,
            &pool,
            STEP_QUEUE,
            cfg.worker_concurrency,
        ))
        .concurrency(cfg.worker_concurrency)
        .data(engine.clone())
        .build(handle);
    let notify = WorkerBuilder::new(format!("{name}-notify"))
        .backend(backend::<Traced<NotifyJob>>(cfg, &pool, NOTIFY_QUEUE, 2))
        .concurrency(2)
        .data(engine.clone())
        .build(handle_notify);
    let stop = |s: futures::future::Shared<_>| async move {
        s.await;
        Ok::<(), std::io::Error>(())
    };
    let (a, b) = tokio::join!(
        steps.run_until(stop(shutdown.clone())),
        notify.run_until(stop(shutdown))
    );
    if let Some(server) = metrics {
        server.abort();
    }
    a?;
    b?;
    Ok(())
}
