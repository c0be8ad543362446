//! The provision log, the outbox (`events`, each with the job that
//! delivers it) and the per-channel state of each delivery.

use super::status::{Channel, DeliveryStatus, LogStatus, RunKind, RunStatus};
use crate::jobs::{NotifyJob, push_notify_job};
use crate::model::{Event, Run};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

pub async fn insert_provision_log(
    ex: impl PgExecutor<'_>,
    tenant_id: Option<Uuid>,
    run_id: Uuid,
    step: &str,
    status: LogStatus,
    message: &str,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO tenant_provision_logs (id, tenant_id, run_id, step, status, message)
         VALUES ($1, $2, $3, $4, $5, $6)",
        Uuid::now_v7(),
        tenant_id,
        run_id,
        step,
        status.as_str(),
        message
    )
    .execute(ex)
    .await
    .map(drop)
}

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error("enqueue failed: {0}")]
    Queue(#[from] apalis_postgres::Error),
}

/// How an event written by this process reaches the channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outbox {
    /// This process has a channel: the job that delivers the event is
    /// queued in the same transaction.
    Queue,
    /// It has none: the event is written alone, and a worker with a channel
    /// queues its job by sweep ([`queue_unqueued_events`]); with no channel
    /// anywhere it stays undelivered, at no cost to the queue.
    Sweep,
}

/// Writes an outbox event once per (run, type) and, in the same
/// transaction, the job that delivers it. For step bodies, which may run
/// again after a crash: the second write is a no-op.
pub async fn insert_event(
    conn: &mut PgConnection,
    outbox: Outbox,
    tenant_id: Option<Uuid>,
    run_id: Uuid,
    kind: &str,
    payload: &serde_json::Value,
) -> Result<(), OutboxError> {
    let key = format!("{run_id}:{kind}");
    write_event(conn, outbox, tenant_id, Some(run_id), kind, payload, key).await
}

/// Writes the event of a run's status transition. The caller's guarded
/// transition happens once per occurrence, and a run can reach the same
/// status again (failed, retried, failed again): each occurrence is its own
/// event, the first keyed `{run}:{type}` like any other.
pub async fn insert_transition_event(
    conn: &mut PgConnection,
    outbox: Outbox,
    tenant_id: Option<Uuid>,
    run_id: Uuid,
    kind: &str,
    payload: &serde_json::Value,
) -> Result<(), OutboxError> {
    let earlier = sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM events WHERE run_id = $1 AND type = $2"#,
        run_id,
        kind
    )
    .fetch_one(&mut *conn)
    .await?;
    let key = match earlier {
        0 => format!("{run_id}:{kind}"),
        n => format!("{run_id}:{kind}:{}", n + 1),
    };
    write_event(conn, outbox, tenant_id, Some(run_id), kind, payload, key).await
}

/// The event a run writes when it ends in `status` (failures write their
/// own, richer one; completions are written by the run's last step).
pub async fn insert_finished_event(
    conn: &mut PgConnection,
    outbox: Outbox,
    run: &Run,
    status: RunStatus,
    error: Option<&str>,
) -> Result<(), OutboxError> {
    let provisioning = run.kind == RunKind::Provision;
    let kind = match (status, provisioning) {
        (RunStatus::Compensated, _) => "tenant.rolled_back",
        (RunStatus::CompensationFailed, _) => "tenant.rollback_failed",
        (RunStatus::Cancelled, true) => "tenant.provisioning_cancelled",
        (RunStatus::Cancelled, false) => "tenant.deprovisioning_cancelled",
        _ => return Ok(()),
    };
    let payload = serde_json::json!({
        "tenantId": run.tenant_id,
        "tenantName": run.tenant_name,
        "runId": run.id,
        "kind": run.kind,
        "status": status,
        "error": error,
    });
    insert_transition_event(conn, outbox, run.tenant_id, run.id, kind, &payload).await
}

pub(super) async fn write_event(
    conn: &mut PgConnection,
    outbox: Outbox,
    tenant_id: Option<Uuid>,
    run_id: Option<Uuid>,
    kind: &str,
    payload: &serde_json::Value,
    key: String,
) -> Result<(), OutboxError> {
    let inserted = sqlx::query_scalar!(
        "INSERT INTO events (id, tenant_id, run_id, type, payload, idempotency_key, queued)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
        Uuid::now_v7(),
        tenant_id,
        run_id,
        kind,
        payload,
        key,
        outbox == Outbox::Queue
    )
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(event_id) = inserted.filter(|_| outbox == Outbox::Queue) {
        push_notify_job(conn, &NotifyJob { event_id }, std::time::Duration::ZERO).await?;
    }
    Ok(())
}

pub async fn event_by_id(ex: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Option<Event>> {
    sqlx::query_as!(
        Event,
        r#"SELECT id, type AS kind, payload, idempotency_key, created_at FROM events WHERE id = $1"#,
        id
    )
    .fetch_optional(ex)
    .await
}

/// Starts a delivery attempt on one channel: its number, or the final
/// status the delivery already has.
pub async fn start_delivery(
    conn: &mut PgConnection,
    event_id: Uuid,
    channel: Channel,
) -> sqlx::Result<Result<i32, DeliveryStatus>> {
    sqlx::query!(
        "INSERT INTO event_deliveries (event_id, channel, status) VALUES ($1, $2, 'pending')
         ON CONFLICT DO NOTHING",
        event_id,
        channel.as_str()
    )
    .execute(&mut *conn)
    .await?;
    let attempt = sqlx::query_scalar!(
        "UPDATE event_deliveries SET attempts = attempts + 1
         WHERE event_id = $1 AND channel = $2 AND status IN ('pending', 'retrying') RETURNING attempts",
        event_id,
        channel.as_str()
    )
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(attempt) = attempt {
        return Ok(Ok(attempt));
    }
    let status = sqlx::query_scalar!(
        r#"SELECT status AS "status: DeliveryStatus" FROM event_deliveries
           WHERE event_id = $1 AND channel = $2"#,
        event_id,
        channel.as_str()
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok(Err(status))
}

pub async fn finish_delivery(
    ex: impl PgExecutor<'_>,
    event_id: Uuid,
    channel: Channel,
    status: DeliveryStatus,
    error: Option<&str>,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE event_deliveries SET status = $3, last_error = $4,
            delivered_at = CASE WHEN $3 = 'delivered' THEN now() END
         WHERE event_id = $1 AND channel = $2",
        event_id,
        channel.as_str(),
        status.as_str(),
        error
    )
    .execute(ex)
    .await
    .map(drop)
}

/// Every channel is done with the event.
pub async fn event_delivered(ex: impl PgExecutor<'_>, event_id: Uuid) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE events SET delivered_at = now() WHERE id = $1 AND delivered_at IS NULL",
        event_id
    )
    .execute(ex)
    .await
    .map(drop)
}

/// Queues the delivery jobs of events written without one (by a process
/// with no channel) in the last `within`, oldest first, at most `limit`;
/// how many. Older ones stay undelivered: a channel configured later does
/// not send what was written long before it.
pub async fn queue_unqueued_events(
    conn: &mut PgConnection,
    within: std::time::Duration,
    limit: i64,
) -> Result<usize, OutboxError> {
    let ids = sqlx::query_scalar!(
        "UPDATE events SET queued = true WHERE id IN (
             SELECT id FROM events
             WHERE NOT queued AND created_at > now() - make_interval(secs => $1)
             ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED)
         RETURNING id",
        within.as_secs_f64(),
        limit
    )
    .fetch_all(&mut *conn)
    .await?;
    for &event_id in &ids {
        push_notify_job(conn, &NotifyJob { event_id }, std::time::Duration::ZERO).await?;
    }
    Ok(ids.len())
}
