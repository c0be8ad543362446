//! Generic webhook: JSON POST signed with HMAC-SHA256 over
//! `"{timestamp}.{body}"` (header `X-Landlord-Signature: v1=<hex>`), with
//! the timestamp in `X-Landlord-Timestamp` so receivers can refuse replays.

use super::Event;
use crate::clients::http::TracedSend;
use crate::clients::http::unexpected;
use crate::deps::Deps;
use crate::step::StepError;
use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use sha2::Sha256;

pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1={}", hex::encode(mac.finalize().into_bytes()))
}

pub async fn send(deps: &Deps, event: &Event, data: &Value) -> Result<(), StepError> {
    let notify = &deps.cfg.notify;
    let Some(url) = &notify.webhook_url else {
        return Ok(());
    };
    let body = serde_json::to_vec(&json!({
        "id": event.id,
        "type": event.kind,
        "createdAt": event.created_at,
        "data": data,
    }))
    .map_err(StepError::permanent)?;
    let timestamp = chrono::Utc::now().timestamp();
    let mut req = deps
        .http
        .post(url)
        .header("content-type", "application/json")
        .header("idempotency-key", &event.idempotency_key)
        .header("x-landlord-event", &event.kind)
        .header("x-landlord-timestamp", timestamp.to_string());
    if let Some(secret) = &notify.webhook_secret {
        req = req.header(
            "x-landlord-signature",
            signature(secret.expose_secret().as_bytes(), timestamp, &body),
        );
    }
    let resp = req.body(body).traced_send().await?;
    if resp.status().is_success() {
        return Ok(());
    }
    Err(unexpected("webhook", resp).await)
}
