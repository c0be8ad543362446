//! The HTTP API. This issue serves health endpoints only; the admin API
//! comes with its own issue.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use sqlx::PgPool;

mod console;

pub fn router(pool: PgPool) -> Router {
    Router::new()
        .route(
            "/healthz",
            get(|| async { Json(json!({ "status": "ok" })) }),
        )
        .route("/readyz", get(readyz))
        .merge(console::router())
        .with_state(pool)
}

/// Ready when the master database answers and every migration is applied.
async fn readyz(State(pool): State<PgPool>) -> (StatusCode, Json<serde_json::Value>) {
    match landlord_shared::migrate::master_is_current(&pool).await {
        Ok(true) => (StatusCode::OK, Json(json!({ "status": "ready" }))),
        Ok(false) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "migrations pending" })),
        ),
        Err(e) => {
            tracing::warn!("readiness check failed: {e}");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "database unreachable" })),
            )
        }
    }
}

pub async fn serve(pool: PgPool, listener: tokio::net::TcpListener) -> std::io::Result<()> {
    axum::serve(listener, router(pool)).await
}
