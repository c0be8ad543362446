//! Novu-style trigger (`POST {NOVU_API_URL}/v1/events/trigger`): workflow
//! `tenant-welcome`, `tenant-provisioning-failed` or `lead-verification`
//! with seed 004's payload
//! fields, subscriber `tenant-{tenantId}-{sanitized email}`, and the event's
//! idempotency key as `transactionId`.

use super::Event;
use crate::clients::http::TracedSend;
use crate::clients::http::unexpected;
use crate::deps::Deps;
use crate::step::StepError;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

fn template(kind: &str) -> Option<(&'static str, &'static [&'static str])> {
    match kind {
        "tenant.provisioned" => Some((
            "tenant-welcome",
            &[
                "tenantId",
                "tenantName",
                "firstName",
                "lastName",
                "appPlaneUrl",
                "adminPortalUrl",
                "loginUrl",
                "supportEmail",
                "adminInitialPassword",
            ],
        )),
        "tenant.provisioning_failed" => Some((
            "tenant-provisioning-failed",
            &[
                "tenantId",
                "tenantName",
                "firstName",
                "error",
                "failedStep",
                "supportEmail",
            ],
        )),
        "lead.verification_requested" => Some((
            "lead-verification",
            &[
                "leadId",
                "firstName",
                "lastName",
                "companyName",
                "verificationToken",
                "verifyUrl",
                "expiresAt",
            ],
        )),
        _ => None,
    }
}

/// `admin@newcompany.com` → `admin_newcompany_com` (seed 004).
pub fn subscriber_id(tenant_id: &str, email: &str) -> String {
    let sanitized: String = email
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("tenant-{tenant_id}-{sanitized}")
}

pub async fn send(deps: &Deps, event: &Event, data: &Value) -> Result<bool, StepError> {
    let notify = &deps.cfg.notify;
    let (Some(url), Some(key)) = (&notify.novu_api_url, &notify.novu_api_key) else {
        return Ok(false);
    };
    let Some((name, fields)) = template(&event.kind) else {
        return Ok(false);
    };
    // No address to send to (the run failed before an admin was known).
    let Some(email) = data["email"].as_str() else {
        return Ok(false);
    };
    // A lead has no tenant yet: its subscriber is named for the lead.
    let tenant_id = match data["leadId"].as_str() {
        Some(lead) => format!("lead-{lead}"),
        None => data["tenantId"].as_str().unwrap_or_default().to_owned(),
    };
    let payload: serde_json::Map<String, Value> = fields
        .iter()
        .filter_map(|f| Some(((*f).to_owned(), data.get(*f)?.clone())))
        .collect();
    let body = json!({
        "name": name,
        "to": {
            "subscriberId": subscriber_id(&tenant_id, email),
            "email": email,
            "firstName": data["firstName"],
            "lastName": data["lastName"],
        },
        "payload": payload,
        "transactionId": event.idempotency_key,
    });
    let resp = deps
        .http
        .post(format!("{url}/v1/events/trigger"))
        .header("authorization", format!("ApiKey {}", key.expose_secret()))
        .header("idempotency-key", &event.idempotency_key)
        .json(&body)
        .traced_send()
        .await?;
    if resp.status().is_success() {
        return Ok(true);
    }
    Err(unexpected("novu trigger", resp).await)
}
