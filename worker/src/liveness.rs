//! Liveness by database session (`store::sessions`): each queue worker
//! holds a connection of its own while it runs, and every worker sweeps
//! for workers whose connection Postgres has dropped. A SIGKILLed worker's
//! jobs are back on the queue within a sweep, where the heartbeat timeout
//! (`LANDLORD_HEARTBEAT_MS` × `LANDLORD_MISSED_HEARTBEATS`, whole seconds
//! in apalis) would take seconds. The heartbeat path stays as the fallback
//! for what a session cannot show: a worker cut off from the network whose
//! connection Postgres has not yet timed out.

use landlord_shared::store;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool};
use std::time::Duration;

/// How often a session checks that its connection still stands.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// The session of one queue worker; ended (or, when dropped, left to the
/// sweep) with it.
pub struct Session {
    worker: String,
    pool: PgPool,
    keeper: tokio::task::JoinHandle<()>,
}

impl Session {
    /// Opens the session before the worker registers with the queue, so
    /// no job is ever locked to a worker without one.
    pub async fn open(pool: &PgPool, worker: &str) -> sqlx::Result<Self> {
        let opts = pool
            .connect_options()
            .as_ref()
            .clone()
            .application_name("landlord-worker-session");
        let mut conn = opts.connect().await?;
        store::register_session(&mut conn, worker).await?;
        let keeper = tokio::spawn(keep(conn, opts, worker.to_owned()));
        Ok(Self {
            worker: worker.to_owned(),
            pool: pool.clone(),
            keeper,
        })
    }

    /// A clean stop: the worker has handed back or finished its jobs.
    pub async fn end(self) {
        self.keeper.abort();
        if let Err(e) = store::end_session(&self.pool, &self.worker).await {
            tracing::debug!(worker = %self.worker, "session row left to the sweep: {e}");
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.keeper.abort();
    }
}

/// Holds the connection; a connection lost while the worker lives is
/// opened and registered again (its jobs may have been re-queued
/// meanwhile: the engine's fencing makes that safe).
async fn keep(mut conn: PgConnection, opts: PgConnectOptions, worker: String) {
    loop {
        tokio::time::sleep(CHECK_EVERY).await;
        if conn.ping().await.is_ok() {
            continue;
        }
        tracing::warn!(%worker, "worker session lost; opening it again");
        match opts.connect().await {
            Ok(mut fresh) => {
                if store::register_session(&mut fresh, &worker).await.is_ok() {
                    conn = fresh;
                }
            }
            Err(e) => tracing::debug!(%worker, "worker session not reopened yet: {e}"),
        }
    }
}

/// Re-queues the jobs of workers whose session ended, every `every`.
pub async fn sweep(pool: PgPool, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match store::requeue_jobs_of_dead_sessions(&pool).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                jobs = n,
                "re-queued the jobs of workers whose database session ended"
            ),
            Err(e) => tracing::debug!("session sweep failed: {e}"),
        }
    }
}
