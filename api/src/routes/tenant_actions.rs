//! Operator actions on a tenant: retry, roll back, deprovision.

use super::tenants::started_answer;
use super::{find_tenant, summary, tenant_key};
use crate::AppState;
use crate::audit::api_action;
use crate::auth::Actor;
use crate::auth::scope::{self, Need};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiPath, ApiQuery};
use crate::queries;
use crate::views::{RunSummary, TenantRun};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use landlord_shared::actions::{DeprovisionMode, retry_run, rollback_run, start_deprovision};
use landlord_shared::store;
use landlord_shared::tenant::TenantKey;
use serde::Deserialize;
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// `soft` locks everyone out and keeps the data; `hard` drops it.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeleteMode {
    Soft,
    Hard,
}

impl From<DeleteMode> for DeprovisionMode {
    fn from(m: DeleteMode) -> Self {
        match m {
            DeleteMode::Soft => Self::Soft,
            DeleteMode::Hard => Self::Hard,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeleteParams {
    /// Default `soft`.
    #[param(inline)]
    pub mode: Option<DeleteMode>,
    /// Needed to deprovision an active tenant.
    pub force: Option<bool>,
}

/// Resume the tenant's failed run at its failed step
///
/// Completed steps keep their checkpoints and are not run again.
#[utoipa::path(
    post, path = "/tenants/{id}/retry", tag = "tenants", operation_id = "retryTenant",
    params(("id" = String, Path, description = "Tenant UUID or name")),
    responses(
        (status = 202, body = RunSummary),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The latest run is not failed or cancelled", body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["runs:operate"]))
)]
pub async fn retry(
    Need(actor, _): Need<scope::RunsOperate>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<(StatusCode, Json<RunSummary>)> {
    let key = tenant_key(&state.pool, &id).await?;
    let outcome = async {
        let run = store::latest_run_for_tenant(&state.pool, key.as_str())
            .await?
            .ok_or_else(|| ApiError::Conflict("the tenant has no run to retry".into()))?;
        let run = retry_run(&state.pool, run.id).await?;
        Ok((StatusCode::ACCEPTED, summary(&state.pool, run.id).await?))
    }
    .await;
    let (status, run) = audited(&state, &actor, "tenant.retry", &key, outcome).await?;
    Ok((status, Json(run)))
}

/// Roll back the tenant's provisioning run
///
/// Every step that may have left something is undone in reverse order.
#[utoipa::path(
    post, path = "/tenants/{id}/rollback", tag = "tenants", operation_id = "rollbackTenant",
    params(("id" = String, Path, description = "Tenant UUID or name")),
    responses(
        (status = 202, body = RunSummary),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The run is not failed or cancelled", body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["runs:operate"]))
)]
pub async fn rollback(
    Need(actor, _): Need<scope::RunsOperate>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<(StatusCode, Json<RunSummary>)> {
    let key = tenant_key(&state.pool, &id).await?;
    let outcome = async {
        let run = queries::latest_provision_run(&state.pool, key.as_str())
            .await?
            .ok_or_else(|| ApiError::Conflict("the tenant has no provisioning run".into()))?;
        let run = rollback_run(&state.pool, run.run.id, state.cfg.outbox).await?;
        Ok((StatusCode::ACCEPTED, summary(&state.pool, run.id).await?))
    }
    .await;
    let (status, run) = audited(&state, &actor, "tenant.rollback", &key, outcome).await?;
    Ok((status, Json(run)))
}

async fn audited<T: serde::Serialize>(
    state: &AppState,
    actor: &Actor,
    action: &str,
    key: &TenantKey,
    outcome: ApiResult<(StatusCode, T)>,
) -> ApiResult<(StatusCode, T)> {
    let run_id = outcome
        .as_ref()
        .ok()
        .and_then(|(_, body)| serde_json::to_value(body).ok())
        .and_then(|v| v.get("id").cloned());
    let details = json!({ "run_id": run_id });
    api_action(&state.pool, actor, action, key.as_str(), details, outcome).await
}

/// Deprovision a tenant
///
/// Starts (or returns the existing) soft or hard deprovisioning run.
#[utoipa::path(
    delete, path = "/tenants/{id}", tag = "tenants", operation_id = "deleteTenant",
    params(("id" = String, Path, description = "Tenant UUID or name"), DeleteParams),
    responses(
        (status = 202, description = "Deprovisioning started", body = TenantRun),
        (status = 200, description = "The deprovisioning run already existed", body = TenantRun),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Active without force=true, busy, or already deleted", body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["tenants:delete"]))
)]
pub async fn delete(
    Need(actor, _): Need<scope::TenantsDelete>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<DeleteParams>,
) -> ApiResult<(StatusCode, Json<TenantRun>)> {
    let t = find_tenant(&state.pool, &id).await?;
    let key = TenantKey::parse(&t.name).map_err(|e| ApiError::Internal(e.into()))?;
    let mode = DeprovisionMode::from(q.mode.unwrap_or(DeleteMode::Soft));
    let force = q.force.unwrap_or(false);
    let outcome = async {
        let started = start_deprovision(&state.pool, &key, mode, force).await?;
        started_answer(&state.pool, &key, &started).await
    }
    .await;
    let run_id: Option<Uuid> = outcome.as_ref().ok().map(|(_, b)| b.run.id);
    let details = json!({ "mode": mode, "force": force, "run_id": run_id });
    let (status, body) = api_action(
        &state.pool,
        &actor,
        "tenant.delete",
        key.as_str(),
        details,
        outcome,
    )
    .await?;
    Ok((status, Json(body)))
}
