//! Outbox delivery: one job per event delivers it to every configured
//! channel, retrying failed channels as later jobs with backoff. Every
//! attempt of an event carries the same idempotency key.

mod novu;
mod webhook;

use crate::deps::Deps;
use crate::engine::retry_delay;
use crate::step::StepError;
use landlord_shared::jobs::{NotifyJob, push_notify_job};
use secrecy::ExposeSecret;
use serde_json::Value;
use sqlx::FromRow;
use uuid::Uuid;

#[derive(Debug, Clone, FromRow)]
pub struct Event {
    pub id: Uuid,
    #[sqlx(rename = "type")]
    pub kind: String,
    pub payload: Value,
    pub idempotency_key: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Channel {
    Webhook,
    Novu,
}

impl Channel {
    fn name(self) -> &'static str {
        match self {
            Self::Webhook => "webhook",
            Self::Novu => "novu",
        }
    }
}

/// `Ok(false)`: the channel has nothing to send for this event.
async fn send(
    deps: &Deps,
    channel: Channel,
    event: &Event,
    data: &Value,
) -> Result<bool, StepError> {
    match channel {
        Channel::Webhook => webhook::send(deps, event, data).await.map(|()| true),
        Channel::Novu => novu::send(deps, event, data).await,
    }
}

/// The payload as sent: the stored one plus, for the welcome event, the
/// admin's initial password read from the secret store.
async fn outgoing(deps: &Deps, event: &Event) -> Result<Value, StepError> {
    let mut data = event.payload.clone();
    if let (Some(reference), Some(store)) =
        (data["adminPasswordRef"].as_str(), deps.secrets.as_ref())
    {
        let password = store
            .get(&deps.master, reference)
            .await
            .map_err(StepError::transient)?;
        data["adminInitialPassword"] = Value::String(password.expose_secret().to_owned());
    }
    if let Some(obj) = data.as_object_mut() {
        obj.remove("adminPasswordRef");
    }
    Ok(data)
}

pub async fn deliver(deps: &Deps, job: NotifyJob) -> Result<(), sqlx::Error> {
    let Some(event): Option<Event> = sqlx::query_as("SELECT * FROM events WHERE id = $1")
        .bind(job.event_id)
        .fetch_optional(&deps.master)
        .await?
    else {
        return Ok(());
    };
    let notify = &deps.cfg.notify;
    let mut channels = Vec::new();
    if notify.webhook_url.is_some() {
        channels.push(Channel::Webhook);
    }
    if notify.novu_api_url.is_some() && notify.novu_api_key.is_some() {
        channels.push(Channel::Novu);
    }
    if channels.is_empty() {
        return Ok(()); // no channel configured: the event stays undelivered
    }
    let max = i32::try_from(notify.attempts).unwrap_or(i32::MAX);
    let mut retry_after: Option<i32> = None;
    // Delivered when every channel took it (or had nothing to send).
    let mut all_done = true;
    // Resolved once for all channels (it may read the secret store).
    let data = outgoing(deps, &event).await.map_err(|e| e.to_string());
    for channel in channels {
        sqlx::query(
            "INSERT INTO event_deliveries (event_id, channel, status) VALUES ($1, $2, 'pending')
             ON CONFLICT DO NOTHING",
        )
        .bind(event.id)
        .bind(channel.name())
        .execute(&deps.master)
        .await?;
        let attempt: Option<i32> = sqlx::query_scalar(
            "UPDATE event_deliveries SET attempts = attempts + 1
             WHERE event_id = $1 AND channel = $2 AND status IN ('pending', 'retrying') RETURNING attempts",
        )
        .bind(event.id)
        .bind(channel.name())
        .fetch_optional(&deps.master)
        .await?;
        let Some(attempt) = attempt else {
            let status: String = sqlx::query_scalar(
                "SELECT status FROM event_deliveries WHERE event_id = $1 AND channel = $2",
            )
            .bind(event.id)
            .bind(channel.name())
            .fetch_one(&deps.master)
            .await?;
            all_done &= status != "failed";
            continue;
        };
        let result = match &data {
            Ok(data) => send(deps, channel, &event, data).await,
            Err(e) => Err(StepError::transient(e)),
        };
        let (status, error) = match &result {
            Ok(true) => ("delivered", None),
            Ok(false) => ("skipped", None),
            Err(e) if e.is_transient() && attempt < max => {
                retry_after = Some(retry_after.map_or(attempt, |a| a.max(attempt)));
                all_done = false;
                ("retrying", Some(e.to_string()))
            }
            Err(e) => {
                all_done = false;
                ("failed", Some(e.to_string()))
            }
        };
        if let Some(err) = &error {
            tracing::warn!(event = %event.id, channel = channel.name(), attempt, "delivery failed: {err}");
        }
        sqlx::query(
            "UPDATE event_deliveries SET status = $3, last_error = $4,
                delivered_at = CASE WHEN $3 = 'delivered' THEN now() END
             WHERE event_id = $1 AND channel = $2",
        )
        .bind(event.id)
        .bind(channel.name())
        .bind(status)
        .bind(error)
        .execute(&deps.master)
        .await?;
    }
    let mut conn = deps.master.acquire().await?;
    match retry_after {
        Some(attempt) => {
            let delay = retry_delay(deps.cfg.retry_delay, attempt);
            push_notify_job(&mut conn, &job, delay)
                .await
                .map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
        }
        None if all_done => {
            sqlx::query(
                "UPDATE events SET delivered_at = now() WHERE id = $1 AND delivered_at IS NULL",
            )
            .bind(event.id)
            .execute(&mut *conn)
            .await?;
        }
        None => {}
    }
    Ok(())
}
