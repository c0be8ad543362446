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

/// `delay` is rounded up to whole seconds: apalis stores `run_at` in
/// seconds.
async fn push_json(
    conn: &mut PgConnection,
    queue: &str,
    job: &impl Serialize,
    delay: Duration,
) -> Result<(), apalis_postgres::Error> {
    let bytes = serde_json::to_vec(job).expect("job payloads serialize");
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
