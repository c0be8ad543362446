//! `worker_sessions`: each queue worker's own database session, so that a
//! worker that dies (SIGKILL, OOM, a lost host) is known dead as soon as
//! Postgres drops its connection, not when its heartbeat grows stale.

use sqlx::{PgConnection, PgExecutor};

/// Registers `worker` as alive for as long as `conn`, the connection this
/// runs on, stays open.
pub async fn register_session(conn: &mut PgConnection, worker: &str) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO worker_sessions (worker, pid, backend_start)
         SELECT $1, pid, backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid()
         ON CONFLICT (worker) DO UPDATE
            SET pid = EXCLUDED.pid, backend_start = EXCLUDED.backend_start, registered_at = now()",
        worker
    )
    .execute(conn)
    .await
    .map(drop)
}

/// A worker that stopped cleanly: nothing of its to recover.
pub async fn end_session(ex: impl PgExecutor<'_>, worker: &str) -> sqlx::Result<()> {
    sqlx::query!("DELETE FROM worker_sessions WHERE worker = $1", worker)
        .execute(ex)
        .await
        .map(drop)
}

/// Re-queues the jobs of every worker whose session has ended and forgets
/// those workers. The number of jobs re-queued. (It writes the queue's own
/// table, whose schema belongs to apalis; the compile-time check knows it
/// from apalis-postgres's migrations, see deploy/sqlx.sh.)
///
/// No NOTIFY: apalis's listener locks a notified job even when it is
/// `Queued` for another worker's poll, so a notified re-queue was handed
/// out twice (two attempts of one step, the first fenced off and counted
/// lost). Polling picks the job up within `LANDLORD_POLL_INTERVAL_MS`.
pub async fn requeue_jobs_of_dead_sessions(ex: impl PgExecutor<'_>) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        r#"WITH dead AS (
               DELETE FROM worker_sessions w
               WHERE NOT EXISTS (SELECT 1 FROM pg_stat_activity a
                                 WHERE a.pid = w.pid AND a.backend_start = w.backend_start)
               RETURNING w.worker),
           requeued AS (
               UPDATE apalis.jobs j
               SET status = 'Pending', done_at = NULL, lock_by = NULL, lock_at = NULL,
                   attempts = attempts + 1,
                   last_result = '{"Err": "Re-enqueued: its worker''s database session ended."}'
               FROM dead
               WHERE j.lock_by = dead.worker AND j.status IN ('Running', 'Queued')
               RETURNING j.id)
           SELECT count(*) AS "requeued!" FROM requeued"#
    )
    .fetch_one(ex)
    .await
}
