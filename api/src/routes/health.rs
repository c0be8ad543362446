//! Liveness and readiness, unauthenticated.

use crate::AppState;
use crate::error::{ApiError, ApiResult, Problem};
use crate::views::Status;
use axum::Json;
use axum::extract::State;
use std::time::Duration;

/// The process is up
#[utoipa::path(get, path = "/healthz", tag = "health", operation_id = "healthz",
    responses((status = 200, body = Status)))]
pub async fn healthz() -> Json<Status> {
    Json(Status {
        status: "ok".into(),
    })
}

/// The master database answers and every migration is applied
#[utoipa::path(get, path = "/readyz", tag = "health", operation_id = "readyz",
    responses(
        (status = 200, body = Status),
        (status = 503, description = "Database unreachable or migrations pending", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn readyz(State(state): State<AppState>) -> ApiResult<Json<Status>> {
    let check = landlord_shared::migrate::master_is_current(&state.pool);
    match tokio::time::timeout(READY_WITHIN, check).await {
        Ok(Ok(true)) => Ok(Json(Status {
            status: "ready".into(),
        })),
        Ok(Ok(false)) => Err(ApiError::Unavailable("master migrations are pending")),
        Ok(Err(e)) => {
            tracing::warn!("readiness check failed: {e}");
            Err(ApiError::Unavailable("the master database is unreachable"))
        }
        Err(_) => {
            tracing::warn!("readiness check gave no answer within {READY_WITHIN:?}");
            Err(ApiError::Unavailable("the master database is unreachable"))
        }
    }
}

/// A probe answers within a second: a database that has not answered by
/// then is unreachable as far as a load balancer is concerned (the pool
/// would keep trying for `DB_ACQUIRE_TIMEOUT`).
const READY_WITHIN: Duration = Duration::from_millis(700);
