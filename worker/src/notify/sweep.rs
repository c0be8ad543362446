//! Queues the delivery jobs of events written by a process with no
//! notification channel (an API or worker configured without one), so a
//! fleet whose processes disagree on channels still delivers every event.

use landlord_shared::store;
use sqlx::PgPool;
use std::time::Duration;

/// How often a worker with a channel looks for events without a job.
const EVERY: Duration = Duration::from_secs(2);
/// Events older than this are left undelivered: a channel configured
/// later does not send what was written long before it.
const WITHIN: Duration = Duration::from_secs(3600);
/// Jobs queued per sweep, in one transaction.
const BATCH: i64 = 100;

pub async fn sweep(pool: PgPool) {
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match queue_batch(&pool).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                events = n,
                "queued the delivery of events written without a job"
            ),
            Err(e) => tracing::debug!("outbox sweep failed: {e}"),
        }
    }
}

async fn queue_batch(pool: &PgPool) -> Result<usize, store::OutboxError> {
    let mut tx = pool.begin().await?;
    let n = store::queue_unqueued_events(&mut tx, WITHIN, BATCH).await?;
    tx.commit().await?;
    Ok(n)
}
