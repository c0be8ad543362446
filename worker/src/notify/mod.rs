//! Outbox delivery: one job per event delivers it to every configured
//! channel, retrying failed channels as later jobs with backoff. Every
//! attempt of an event carries the same idempotency key.

mod novu;
mod sweep;
mod webhook;

pub use sweep::sweep;

use crate::deps::Deps;
use crate::engine::{Budget, Verdict};
use crate::step::StepError;
use landlord_shared::jobs::{NotifyJob, push_notify_job};
pub use landlord_shared::model::Event;
use landlord_shared::secrets::SecretError;
use landlord_shared::store::{self, Channel, DeliveryStatus};
use secrecy::ExposeSecret;
use serde_json::Value;

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

/// Secrets an event names by reference, stored apart from it, and the
/// field each is sent in.
const SECRET_FIELDS: [(&str, &str); 2] = [
    ("adminPasswordRef", "adminInitialPassword"),
    ("verificationTokenRef", "verificationToken"),
];

/// The payload as sent: the stored one with the secrets it refers to read
/// from the secret store (the welcome event's initial password, a lead's
/// verification token). A verification token that is gone (the lead was
/// verified since) is left out.
async fn outgoing(deps: &Deps, event: &Event) -> Result<Value, StepError> {
    let mut data = event.payload.clone();
    for (reference, field) in SECRET_FIELDS {
        if let (Some(r), Some(store)) = (data[reference].as_str(), deps.secrets.as_ref()) {
            match store.get(&deps.master, r).await {
                Ok(secret) => data[field] = Value::String(secret.expose_secret().to_owned()),
                Err(SecretError::NotFound(_)) if field == "verificationToken" => {}
                Err(e) => return Err(StepError::transient(e)),
            }
        }
        if let Some(obj) = data.as_object_mut() {
            obj.remove(reference);
        }
    }
    Ok(data)
}

pub async fn deliver(deps: &Deps, job: NotifyJob) -> Result<(), sqlx::Error> {
    let Some(event) = store::event_by_id(&deps.master, job.event_id).await? else {
        return Ok(());
    };
    let notify = &deps.cfg.notify;
    let channels = notify.channels();
    if channels.is_empty() {
        // Only a worker with a channel takes notify jobs; should another
        // get one, the event stays as it is.
        return Ok(());
    }
    let budget = Budget {
        attempts: notify.attempts,
        base_delay: deps.cfg.retry_delay,
        max_delay: deps.cfg.retry_max_delay,
    };
    // The longest delay any channel asks for: one job retries them all.
    let mut retry_after: Option<std::time::Duration> = None;
    // Delivered when every channel took it (or had nothing to send).
    let mut all_done = true;
    // Resolved once for all channels (it may read the secret store).
    let data = outgoing(deps, &event).await.map_err(|e| e.to_string());
    let mut conn = deps.master.acquire().await?;
    for channel in channels {
        let attempt = match store::start_delivery(&mut conn, event.id, channel).await? {
            Ok(attempt) => attempt,
            Err(status) => {
                all_done &= status != DeliveryStatus::Failed;
                continue;
            }
        };
        let result = match &data {
            Ok(data) => send(deps, channel, &event, data).await,
            Err(e) => Err(StepError::transient(e)),
        };
        let (status, error) = match &result {
            Ok(true) => (DeliveryStatus::Delivered, None),
            Ok(false) => (DeliveryStatus::Skipped, None),
            Err(e) => {
                all_done = false;
                match budget.judge(e, attempt) {
                    Verdict::Retry(delay) => {
                        retry_after = Some(retry_after.map_or(delay, |d| d.max(delay)));
                        (DeliveryStatus::Retrying, Some(e.to_string()))
                    }
                    Verdict::GiveUp => (DeliveryStatus::Failed, Some(e.to_string())),
                }
            }
        };
        if let Some(err) = &error {
            tracing::warn!(event = %event.id, channel = %channel, attempt, "delivery failed: {err}");
        }
        store::finish_delivery(&mut *conn, event.id, channel, status, error.as_deref()).await?;
    }
    match retry_after {
        Some(delay) => {
            push_notify_job(&mut conn, &job, delay)
                .await
                .map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
        }
        None if all_done => store::event_delivered(&mut *conn, event.id).await?,
        None => {}
    }
    Ok(())
}
