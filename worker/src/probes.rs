//! The worker's probes, on its metrics listener (`LANDLORD_METRICS_BIND`):
//! `/healthz` answers while the process runs; `/readyz` only while the
//! master database answers within the probe's second and the step queue's
//! worker is listening (not between generations after a lost database,
//! not once asked to stop).

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::json;
use sqlx::PgPool;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::watch;

/// Set while a generation of the step queue's worker runs.
#[derive(Clone, Default)]
pub struct Listening(Arc<AtomicBool>);

impl Listening {
    pub fn set(&self, on: bool) {
        self.0.store(on, Ordering::SeqCst);
    }

    fn get(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// As the API's: a database that has not answered by then is unreachable
/// as far as an orchestrator is concerned.
const READY_WITHIN: Duration = Duration::from_millis(700);

pub fn router(pool: PgPool, listening: Listening, stopping: watch::Receiver<bool>) -> Router {
    let ready = move || {
        let (pool, listening, stopping) = (pool.clone(), listening.clone(), stopping.clone());
        async move {
            let mut not = Vec::new();
            if *stopping.borrow() {
                not.push("the worker is stopping");
            }
            if !listening.get() {
                not.push("the step queue's worker is not listening");
            }
            let ping = sqlx::query_scalar!(r#"SELECT 1 AS "one!""#).fetch_one(&pool);
            if !matches!(tokio::time::timeout(READY_WITHIN, ping).await, Ok(Ok(1))) {
                not.push("the master database is unreachable");
            }
            if not.is_empty() {
                (StatusCode::OK, axum::Json(json!({ "status": "ready" })))
            } else {
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    axum::Json(json!({ "status": "not ready", "reasons": not })),
                )
            }
        }
    };
    Router::new()
        .route(
            "/healthz",
            get(|| async { axum::Json(json!({ "status": "ok" })) }),
        )
        .route("/readyz", get(ready))
}
