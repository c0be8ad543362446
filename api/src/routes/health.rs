//! Liveness and readiness, unauthenticated.

use crate::AppState;
use crate::error::{ApiError, ApiResult, Problem};
use crate::views::Status;
use axum::Json;
use axum::extract::State;

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
    match landlord_shared::migrate::master_is_current(&state.pool).await {
        Ok(true) => Ok(Json(Status {
            status: "ready".into(),
        })),
        Ok(false) => Err(ApiError::Unavailable("master migrations are pending")),
        Err(e) => {
            tracing::warn!("readiness check failed: {e}");
            Err(ApiError::Unavailable("the master database is unreachable"))
        }
    }
}
