//! The operator audit trail: who did what to which tenant or run, when,
//! and how it ended (the HTTP status answered). Refused attempts (409,
//! 422) are recorded too; unauthenticated ones never reach here.

use crate::auth::Actor;
use crate::error::{ApiError, ApiResult};
use axum::http::StatusCode;
use serde_json::Value;
use sqlx::PgExecutor;
use uuid::Uuid;

pub async fn record(
    ex: impl PgExecutor<'_>,
    actor_kind: &str,
    actor: &str,
    action: &str,
    target: &str,
    status: Option<u16>,
    details: &Value,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO audit_log (id, actor, actor_kind, action, target, status, details)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        Uuid::now_v7(),
        actor,
        actor_kind,
        action,
        target,
        status.map(i32::from),
        details
    )
    .execute(ex)
    .await
    .map(drop)
}

/// Records an API action with its outcome, then hands the outcome back.
/// The action has already happened (each one commits on its own), so an
/// audit write that fails is logged rather than turned into an error the
/// caller would read as "nothing happened".
pub async fn api_action<T>(
    pool: &sqlx::PgPool,
    actor: &Actor,
    action: &str,
    target: &str,
    details: Value,
    outcome: ApiResult<(StatusCode, T)>,
) -> ApiResult<(StatusCode, T)> {
    let status = match &outcome {
        Ok((status, _)) => status.as_u16(),
        // The database is unreachable: writing the audit row would wait
        // out the pool's acquire timeout a second time, and fail.
        Err(e @ ApiError::Unavailable(_)) => {
            tracing::warn!(action, target, "not audited: {e}");
            return outcome;
        }
        Err(e) => e.status().as_u16(),
    };
    let mut details = details;
    if let Value::Object(map) = &mut details {
        map.insert("actor_id".into(), Value::String(actor.id.clone()));
    }
    if let Err(e) = record(
        pool,
        actor.kind,
        &actor.name,
        action,
        target,
        Some(status),
        &details,
    )
    .await
    {
        tracing::error!(action, target, error = %e, "audit write failed");
    }
    outcome
}
