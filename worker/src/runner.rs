//! Runs the engine as an apalis worker on the Postgres queue.

use crate::deps::Deps;
use crate::engine::Engine;
use crate::steps::provision_steps;
use apalis::prelude::*;
use apalis_postgres::{PostgresStorage, Pubsub};
use landlord_shared::config::Config;
use landlord_shared::jobs::{STEP_QUEUE, StepJob};
use std::future::Future;
use std::sync::Arc;

pub async fn build_engine(cfg: Config) -> anyhow::Result<Arc<Engine>> {
    if cfg.postgres_admin_url.is_some() && cfg.secret_key.is_none() {
        anyhow::bail!("LANDLORD_SECRET_KEY is required when POSTGRES_ADMIN_URL is set");
    }
    let deps = Arc::new(Deps::connect(cfg).await?);
    Ok(Arc::new(Engine::new(deps, provision_steps())))
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

async fn handle(job: StepJob, engine: Data<Arc<Engine>>) -> Result<(), BoxDynError> {
    engine.handle(job).await.map_err(|e| {
        tracing::error!("engine error, job will be re-delivered: {e}");
        e.into()
    })
}

/// Consumes step jobs until `shutdown` resolves; in-flight jobs finish first.
pub async fn run_worker(
    engine: Arc<Engine>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let cfg = &engine.deps.cfg;
    let pool = engine.deps.master.clone();
    let config = apalis_postgres::Config::default()
        .queue(STEP_QUEUE)
        .batch_size(cfg.worker_concurrency)
        .heartbeat_interval(cfg.heartbeat_interval)
        .missed_heartbeats(cfg.missed_heartbeats);
    let storage = PostgresStorage::<StepJob>::new(&pool).with_config(config);
    // LISTEN for prompt pickup, plus polling: the insert trigger does not
    // fire for delayed jobs (trap 7).
    let strategy = Strategy::new()
        .stream(Pubsub::new(pool.clone(), STEP_QUEUE.to_owned()))
        .interval(cfg.poll_interval);
    let backend = PollWith::new(storage, strategy);
    let name = unique_worker_name();
    tracing::info!(worker = %name, concurrency = cfg.worker_concurrency,
        orphan_timeout = ?cfg.orphan_timeout(), "worker started");
    let worker = WorkerBuilder::new(name)
        .backend(backend)
        .concurrency(cfg.worker_concurrency)
        .data(engine.clone())
        .build(handle);
    worker
        .run_until(async move {
            shutdown.await;
            Ok::<(), std::io::Error>(())
        })
        .await?;
    Ok(())
}
