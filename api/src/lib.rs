//! The admin HTTP API: tenants and runs behind scoped permissions, health, and the
//! OpenAPI document generated from the handlers.

pub mod audit;
pub mod auth;
pub mod config;
mod console;
mod cursor;
pub mod error;
mod extract;
mod input;
pub mod lead_token;
pub mod mask;
mod openapi;
mod queries;
mod routes;
pub mod sts;
mod views;

use crate::auth::jwt::JwtVerifier;
use crate::config::ApiConfig;
use crate::error::ApiError;
use crate::routes::{
    callbacks, connections, health, leads, pending, provision, runs, storage_credentials,
    tenant_actions, tenants,
};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use std::sync::Arc;
use std::time::Duration;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Request body limit unless `LANDLORD_API_BODY_LIMIT` says otherwise.
pub const BODY_LIMIT: usize = 64 * 1024;

#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub cfg: Arc<ApiConfig>,
    pub jwt: Option<Arc<JwtVerifier>>,
    /// Mints storage `prefix` credentials; `None` without S3.
    pub sts: Option<Arc<sts::Sts>>,
}

impl AppState {
    pub fn new(pool: PgPool, cfg: ApiConfig) -> Self {
        let jwt = cfg.jwt.clone().map(|j| Arc::new(JwtVerifier::new(j)));
        let sts = cfg.s3.clone().map(|s3| Arc::new(sts::Sts::new(s3)));
        Self {
            pool,
            cfg: Arc::new(cfg),
            jwt,
            sts,
        }
    }
}

/// The admin routes, each with its part of the OpenAPI document.
fn admin_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(provision::create, tenants::list))
        .routes(routes!(tenants::show, tenant_actions::delete))
        .routes(routes!(tenants::runs))
        .routes(routes!(connections::list))
        .routes(routes!(tenant_actions::retry))
        .routes(routes!(tenant_actions::rollback))
        .routes(routes!(pending::provision))
        .routes(routes!(storage_credentials::issue))
        .routes(routes!(runs::list))
        .routes(routes!(runs::show))
        .routes(routes!(runs::cancel))
}

/// Routes anyone may call.
fn public_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(callbacks::report))
        .routes(routes!(leads::create))
        .routes(routes!(leads::verify))
        .routes(routes!(leads::create_tenant))
}

/// The document /openapi.json serves.
pub fn openapi_document() -> serde_json::Value {
    let mut doc = admin_routes().into_openapi();
    doc.merge(public_routes().into_openapi());
    openapi::to_json(&doc)
}

/// The admin routes behind authentication, and the public ones.
fn routers(state: &AppState) -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (admin, mut doc) = admin_routes()
        .route_layer(from_fn_with_state(state.clone(), auth::authenticate))
        .split_for_parts();
    let (public, public_doc) = public_routes().split_for_parts();
    doc.merge(public_doc);
    (admin.merge(public), doc)
}

pub fn router(state: AppState) -> Router {
    let (routes, doc) = routers(&state);
    let doc = Arc::new(openapi::to_json(&doc));
    let limit = state.cfg.body_limit;
    let metrics =
        landlord_shared::metrics::router(state.pool.clone(), state.cfg.workers_live_within);
    routes
        .route(
            "/openapi.json",
            get(move || {
                let doc = doc.clone();
                async move { axum::Json(doc.as_ref().clone()) }
            }),
        )
        .merge(console::router())
        .fallback(|| async { ApiError::NotFound("route".into()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(limit))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panicked))
        .with_state(state)
        .merge(metrics)
        // Outermost, so a run started by a request joins the caller's trace.
        .layer(axum::middleware::from_fn(
            landlord_shared::telemetry::trace_requests,
        ))
}

/// A panicking handler answers 500 like any internal error instead of
/// dropping the connection.
fn panicked(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError::Internal(anyhow::anyhow!("handler panicked")).into_response()
}

/// How long a request waits for a master-database connection. While the
/// database is unreachable every connection attempt is refused and sqlx
/// retries until this deadline, so it bounds how long a request takes to
/// answer 503 (sqlx's default is 30 s). A saturated pool answers 503 too.
pub const DB_ACQUIRE_TIMEOUT: Duration = Duration::from_millis(1500);

/// The API's master-database pool: fails fast when the database is
/// unreachable and recovers by itself (connections that the server closed
/// are noticed by the ping before use and replaced).
pub fn pool_options() -> PgPoolOptions {
    PgPoolOptions::new()
        .acquire_timeout(DB_ACQUIRE_TIMEOUT)
        .test_before_acquire(true)
}

/// Serves with API tokens only (no JWT issuer), for tests and embedding.
pub async fn serve(pool: PgPool, listener: tokio::net::TcpListener) -> std::io::Result<()> {
    let cfg = ApiConfig::from_lookup(|_| None, false).map_err(std::io::Error::other)?;
    serve_with(pool, cfg, listener).await
}

pub async fn serve_with(
    pool: PgPool,
    cfg: ApiConfig,
    listener: tokio::net::TcpListener,
) -> std::io::Result<()> {
    serve_until(pool, cfg, listener, std::future::pending()).await
}

/// Serves until `shutdown` resolves, then finishes the requests in flight.
pub async fn serve_until(
    pool: PgPool,
    cfg: ApiConfig,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let state = AppState::new(pool, cfg);
    if let Some(jwt) = state.jwt.clone() {
        tokio::spawn(async move { jwt.prefetch().await });
    }
    // The peer address: signups are rate-limited per client.
    let app = router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
