//! Runs the engine as an apalis worker on the Postgres queue.

use crate::deps::Deps;
use crate::engine::Engine;
use crate::steps::all_steps;
use apalis::prelude::*;
use apalis_postgres::{PostgresStorage, Pubsub};
use backon::{BackoffBuilder, ExponentialBuilder};
use futures::FutureExt;
use futures::future::BoxFuture;
use landlord_shared::config::Config;
use landlord_shared::jobs::{NOTIFY_QUEUE, NotifyJob, STEP_QUEUE, StepJob, Traced};
use landlord_shared::telemetry::remote_context;
use sqlx::PgPool;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

pub async fn build_engine(cfg: Config) -> anyhow::Result<Arc<Engine>> {
    cfg.check_runner()?;
    let steps = all_steps();
    crate::steps::check_catalogue(&cfg.plans, &steps)?;
    let deps = Arc::new(Deps::connect(cfg).await?);
    Ok(Arc::new(Engine::new(deps, steps)))
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

/// A spawned task that ends with its handle: a dropped worker generation
/// takes its handlers and queue workers with it, as a crash would.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A job's handler in a task of its own, aborted if the worker drops it.
///
/// apalis-postgres fetches whenever its worker is polled with a free slot,
/// and a handler run inline is polled by the worker's task: each of its
/// queries' wake-ups polled the worker again, and every poll with a free
/// slot sent the queue a fetch (about 80 a second from an idle process,
/// about 150 per run in the latency benchmark). In a task of its own, a
/// handler wakes the worker only when it ends.
async fn in_own_task<T, F>(work: F) -> Result<T, BoxDynError>
where
    F: Future<Output = Result<T, BoxDynError>> + Send + 'static,
    T: Send + 'static,
{
    // The job's span (apalis's, with the trace context from the job) goes
    // along.
    let mut task = AbortOnDrop(tokio::spawn(work.in_current_span()));
    (&mut task.0).await.map_err(|e| {
        tracing::error!("handler task failed, job will be re-delivered: {e}");
        Box::new(e) as BoxDynError
    })?
}

async fn handle(job: Traced<StepJob>, engine: Data<Arc<Engine>>) -> Result<(), BoxDynError> {
    let engine = Arc::clone(&engine);
    in_own_task(async move {
        engine
            .handle_traced(job.job, job.trace.as_deref())
            .await
            .map_err(|e| {
                tracing::error!("engine error, job will be re-delivered: {e}");
                e.into()
            })
    })
    .await
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
    let engine = Arc::clone(&engine);
    in_own_task(async move {
        crate::notify::deliver(&engine.deps, job.job)
            .instrument(span)
            .await
            .map_err(|e| {
                tracing::error!("delivery error, job will be re-delivered: {e}");
                e.into()
            })
    })
    .await
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
/// in-flight jobs finish first. A lost connection to Postgres (restart,
/// failover, blip) does not end it: see [`supervise`].
pub async fn run_worker(
    engine: Arc<Engine>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let cfg = &engine.deps.cfg;
    let pool = engine.deps.master.clone();
    tracing::info!(concurrency = cfg.worker_concurrency,
        orphan_timeout = ?cfg.orphan_timeout(), "worker started");
    let stopping = stop_flag(shutdown);
    // Runs carried on in-process leave this worker at their next step
    // boundary once it is asked to stop, so a shutdown waits for one step
    // per slot, not for whole runs.
    tokio::spawn({
        let engine = engine.clone();
        let flag = stopping.clone();
        async move {
            stopped(flag).await;
            engine.drain();
        }
    });
    let listening = crate::probes::Listening::default();
    let metrics = match &cfg.metrics_bind {
        Some(bind) => {
            let listener = tokio::net::TcpListener::bind(bind).await?;
            tracing::info!(
                "metrics and probes on http://{}/{{metrics,healthz,readyz}}",
                listener.local_addr()?
            );
            // Each scrape reads the queue on its own; a scrape during an
            // outage counts a scrape error and still answers.
            let app = landlord_shared::metrics::router(pool.clone(), cfg.orphan_timeout()).merge(
                crate::probes::router(pool.clone(), listening.clone(), stopping.clone()),
            );
            Some(tokio::spawn(
                async move { axum::serve(listener, app).await },
            ))
        }
        None => None,
    };
    let sweeper = cfg
        .session_sweep
        .map(|every| tokio::spawn(crate::liveness::sweep(pool.clone(), every)));
    // A run is resumed after two sightings without a job, a sweep apart:
    // by then a job that was only being handed over has shown up.
    let stranded = tokio::spawn(crate::stranded::sweep(
        pool.clone(),
        cfg.orphan_timeout().max(Duration::from_secs(1)),
    ));
    let pruner = cfg.retention_every.map(|every| {
        tokio::spawn(crate::retention::prune_every(
            pool.clone(),
            every,
            cfg.retention,
            cfg.audit_retention,
        ))
    });
    // Each queue worker in a task of its own: apalis fetches whenever its
    // worker is polled with a free slot, and two workers joined in one task
    // polled each other at every wake-up (see `in_own_task`).
    let mut steps = AbortOnDrop(tokio::spawn({
        let (engine, pool, stopping) = (engine.clone(), pool.clone(), stopping.clone());
        async move {
            let cfg = &engine.deps.cfg;
            let sessions = cfg.session_sweep.is_some().then_some(&pool);
            supervise("steps", "", sessions, stopping, |name, stop| {
                let listening = listening.clone();
                listening.set(true);
                let worker = WorkerBuilder::new(name)
                    .backend(backend::<Traced<StepJob>>(
                        cfg,
                        &pool,
                        STEP_QUEUE,
                        cfg.worker_concurrency,
                    ))
                    .concurrency(cfg.worker_concurrency)
                    .data(engine.clone())
                    .build(handle)
                    .run_until(stop);
                async move {
                    let ended = worker.await;
                    listening.set(false);
                    ended
                }
            })
            .await
        }
    }));
    // A worker with no notification channel takes no notify jobs (and
    // writes its events without one): it would only mark them undelivered.
    let delivers = !cfg.notify.channels().is_empty();
    let outbox_sweep = delivers.then(|| tokio::spawn(crate::notify::sweep(pool.clone())));
    let mut notify = AbortOnDrop(tokio::spawn({
        let (engine, pool) = (engine.clone(), pool.clone());
        async move {
            if !delivers {
                return Ok(());
            }
            let cfg = &engine.deps.cfg;
            let sessions = cfg.session_sweep.is_some().then_some(&pool);
            supervise("notify", "-notify", sessions, stopping, |name, stop| {
                WorkerBuilder::new(name)
                    .backend(backend::<Traced<NotifyJob>>(cfg, &pool, NOTIFY_QUEUE, 2))
                    .concurrency(2)
                    .data(engine.clone())
                    .build(handle_notify)
                    .run_until(stop)
            })
            .await
        }
    }));
    let (a, b) = tokio::join!(&mut steps.0, &mut notify.0);
    if let Some(server) = metrics {
        server.abort();
    }
    if let Some(sweeper) = sweeper {
        sweeper.abort();
    }
    stranded.abort();
    if let Some(outbox_sweep) = outbox_sweep {
        outbox_sweep.abort();
    }
    if let Some(pruner) = pruner {
        pruner.abort();
    }
    a??;
    b??;
    Ok(())
}

/// `true` once `shutdown` has resolved; readable at any time, unlike the
/// future itself.
fn stop_flag(shutdown: impl Future<Output = ()> + Send + 'static) -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        tokio::select! {
            () = shutdown => { let _ = tx.send(true); }
            // Every receiver dropped: the worker is gone already.
            () = tx.closed() => {}
        }
    });
    rx
}

/// Resolves once the stop flag is raised (or its sender is gone).
async fn stopped(mut flag: watch::Receiver<bool>) {
    let _ = flag.wait_for(|stop| *stop).await;
}

/// Waits between worker generations: exponential with jitter, capped at a
/// few seconds so a worker is back soon after Postgres is.
fn reconnect_delays() -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(250))
        .with_max_delay(Duration::from_secs(3))
        .with_factor(2.0)
        .with_jitter()
        .without_max_times()
        .build()
}

/// A generation that ran this long before it failed was healthy: the next
/// failure starts the backoff over.
const HEALTHY_AFTER: Duration = Duration::from_secs(30);

/// Runs one apalis worker after another until the stop flag is raised.
///
/// apalis-postgres 1.0 turns any failed query of its own (register,
/// heartbeat, fetch, ack) into a dead backend: `run_until` returns
/// `WorkerError::BackendError` and the worker cannot be resumed (trap 11).
/// So each failure ends a *generation*: the worker, its backend and its
/// LISTEN connection are dropped, and after a backoff a new generation
/// starts under a new name (apalis tracks liveness per name, trap 2). Jobs
/// the dead generation held (fetched, running, or finished but not acked)
/// stay locked to its name until its heartbeat is `orphan_timeout` old; then
/// any live worker's register or heartbeat re-queues them and the engine's
/// guarded transitions make the re-delivery safe. The dropped handlers are
/// cancelled like a crashed process's (their step bodies are aborted).
async fn supervise<B, Fut>(
    role: &'static str,
    suffix: &str,
    sessions: Option<&PgPool>,
    stopping: watch::Receiver<bool>,
    mut build: B,
) -> anyhow::Result<()>
where
    B: FnMut(String, BoxFuture<'static, std::io::Result<()>>) -> Fut,
    Fut: Future<Output = Result<(), WorkerError>>,
{
    let mut delays = reconnect_delays();
    for generation in 1u64.. {
        let name = format!("{}{suffix}", unique_worker_name());
        let session = match sessions {
            Some(pool) => match crate::liveness::Session::open(pool, &name).await {
                Ok(session) => Some(session),
                Err(e) => {
                    let delay = delays.next().unwrap_or(Duration::from_secs(3));
                    tracing::warn!(worker = %name, role, generation, retry_in = ?delay,
                        "queue worker could not open its database session ({e})");
                    tokio::select! {
                        () = tokio::time::sleep(delay) => continue,
                        () = stopped(stopping.clone()) => return Ok(()),
                    }
                }
            },
            None => None,
        };
        tracing::info!(worker = %name, role, generation, "starting queue worker");
        let stop = stopped(stopping.clone()).map(Ok).boxed();
        let started = Instant::now();
        let result = build(name.clone(), stop).await;
        // A stopped worker ends its session; one that lost the database
        // drops it, and the sweep re-queues what it held.
        match (session, &result) {
            (Some(session), Ok(())) => session.end().await,
            (session, _) => drop(session),
        }
        if *stopping.borrow() {
            if let Err(e) = result {
                tracing::warn!(worker = %name, role, "stopped with an error: {e}");
            }
            return Ok(());
        }
        let why = match result {
            Ok(()) => "its job stream ended".to_owned(),
            Err(e @ (WorkerError::BackendError(_) | WorkerError::PanicError(_))) => e.to_string(),
            Err(e) => return Err(e.into()),
        };
        if started.elapsed() >= HEALTHY_AFTER {
            delays = reconnect_delays();
        }
        let delay = delays.next().unwrap_or(Duration::from_secs(3));
        tracing::warn!(worker = %name, role, generation, retry_in = ?delay,
            "queue worker lost the database ({why}); starting a new one");
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = stopped(stopping.clone()) => return Ok(()),
        }
    }
    Ok(())
}
