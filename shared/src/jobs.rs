//! Job payloads on the apalis queue and how they are pushed.

use apalis::prelude::TaskBuilder;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use uuid::Uuid;

/// The one queue every step job travels on.
pub const STEP_QUEUE: &str = "landlord::steps";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Forward,
    Undo,
}

/// Run (or undo) step `position` of run `run_id`. Attempts are counted in
/// `workflow_steps`, not in the job, so a re-delivered job is harmless.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepJob {
    pub run_id: Uuid,
    pub position: i32,
    pub direction: Direction,
    /// Wakes this attempt of a step awaiting its executor's callback (the
    /// callback came, its deadline passed, or an operator cancelled the
    /// run), and nothing else: it is dropped once that attempt no longer
    /// awaits, so a late one never takes over a run some worker drives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wake: Option<i32>,
}

impl StepJob {
    pub fn new(run_id: Uuid, position: i32, direction: Direction) -> Self {
        Self {
            run_id,
            position,
            direction,
            wake: None,
        }
    }
}

/// Delivery of one outbox event to every configured channel.
pub const NOTIFY_QUEUE: &str = "landlord::notify";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifyJob {
    pub event_id: Uuid,
}

/// Pushes a step job on the caller's connection, so it commits (or not)
/// together with the checkpoint that decided it.
pub async fn push_step_job(
    conn: &mut PgConnection,
    job: &StepJob,
    delay: Duration,
) -> Result<(), apalis_postgres::Error> {
    push_json(conn, STEP_QUEUE, job, delay).await
}

pub async fn push_notify_job(
    conn: &mut PgConnection,
    job: &NotifyJob,
    delay: Duration,
) -> Result<(), apalis_postgres::Error> {
    push_json(conn, NOTIFY_QUEUE, job, delay).await
}

/// A job as decoded by the worker: the payload plus the `traceparent` of
/// the span that pushed it (absent in jobs pushed before tracing existed,
/// or by a process that exports no spans).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Traced<T> {
    #[serde(flatten)]
    pub job: T,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
}

/// `delay` is rounded up to whole seconds: apalis stores `run_at` in
/// seconds. The current span's context travels in the payload (apalis#664:
/// no trace context across the queue yet).
async fn push_json(
    conn: &mut PgConnection,
    queue: &str,
    job: &impl Serialize,
    delay: Duration,
) -> Result<(), apalis_postgres::Error> {
    let traced = Traced {
        job,
        trace: crate::telemetry::traceparent_of(&tracing::Span::current()),
    };
    let bytes = serde_json::to_vec(&traced).expect("job payloads serialize");
    let mut builder = TaskBuilder::new(bytes);
    if !delay.is_zero() {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let at = (now + delay).as_secs_f64().ceil();
        builder = builder.run_at_timestamp(at as u64);
    }
    apalis_postgres::queries::push_tasks(conn, queue, vec![builder.build()]).await
}

/// A step job apalis re-queued from a dead worker (or after an engine
/// error) is ready and waiting: those have `attempts > 0`. (The queue's own
/// table, outside the store: its schema belongs to apalis; checked against
/// apalis-postgres's own migrations, see deploy/sqlx.sh.)
pub async fn recovered_job_waiting(ex: impl sqlx::PgExecutor<'_>) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM apalis.jobs WHERE job_type = $1 AND status = 'Pending'
                          AND attempts > 0 AND run_at <= now()) AS "waiting!""#,
        STEP_QUEUE
    )
    .fetch_one(ex)
    .await
}
