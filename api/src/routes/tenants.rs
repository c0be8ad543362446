//! `/tenants`: create (idempotent), list, show, runs, retry, rollback,
//! deprovision.

use super::{find_tenant, page_cursor, page_limit, summaries, summary, tenant_key};
use crate::AppState;
use crate::audit::api_action;
use crate::auth::Actor;
use crate::cursor::Cursor;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiPath, ApiQuery, JsonBody};
use crate::input::{CreateTenant, idempotency_key};
use crate::queries;
use crate::views::{RunList, RunSummary, TenantDetail, TenantPage, TenantRun, TenantView};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use landlord_shared::actions::{DeprovisionMode, retry_run, rollback_run, start_deprovision};
use landlord_shared::db;
use landlord_shared::start::{NewRun, create_run, workflow_id};
use landlord_shared::tenant::TenantKey;
use serde::Deserialize;
use serde_json::json;
use sqlx::PgPool;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TenantStatus {
    Provisioning,
    Active,
    Suspended,
    Deleting,
    Deleted,
}

impl TenantStatus {
    fn as_str(self) -> &'static str {
        match self {
            Self::Provisioning => "provisioning",
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Deleting => "deleting",
            Self::Deleted => "deleted",
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListTenants {
    #[param(inline)]
    pub status: Option<TenantStatus>,
    /// `next_cursor` of the previous page.
    #[param(
        pattern = "^[0-9]{1,16}_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
    )]
    #[serde(default, deserialize_with = "super::present")]
    pub cursor: Option<String>,
    #[param(minimum = 1, maximum = 200, default = 50)]
    pub limit: Option<u32>,
}

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

/// Attaches each tenant's newest run.
async fn with_latest_runs(
    pool: &PgPool,
    tenants: Vec<landlord_shared::model::Tenant>,
) -> ApiResult<Vec<TenantView>> {
    let names: Vec<String> = tenants.iter().map(|t| t.name.clone()).collect();
    let mut latest: std::collections::HashMap<String, RunSummary> =
        queries::latest_runs(pool, &names)
            .await?
            .into_iter()
            .map(|r| (r.run.tenant_name.clone(), RunSummary::from(r)))
            .collect();
    Ok(tenants
        .into_iter()
        .map(|t| {
            let run = latest.remove(&t.name);
            TenantView::new(t, run)
        })
        .collect())
}

async fn tenant_view(pool: &PgPool, name: &str) -> ApiResult<Option<TenantView>> {
    let Some(t) = db::tenant_by_name(pool, name).await? else {
        return Ok(None);
    };
    Ok(with_latest_runs(pool, vec![t]).await?.pop())
}

/// Why a tenant in this state cannot be provisioned again.
fn blocked(key: &TenantKey, status: &str) -> Option<String> {
    match status {
        "suspended" => Some(format!(
            "tenant '{key}' is suspended after a failed provisioning run: retry it \
             (POST /tenants/{key}/retry), roll it back (POST /tenants/{key}/rollback) or deprovision it"
        )),
        "deleting" => Some(format!("tenant '{key}' is being deprovisioned")),
        "deleted" => Some(format!(
            "tenant '{key}' was deleted; its name cannot be provisioned again"
        )),
        _ => None,
    }
}

/// Start provisioning a tenant
///
/// One run per tenant name (`provision-tenant-{name}`): asking again, with
/// or without the same `Idempotency-Key`, answers 200 with the existing
/// run. An `Idempotency-Key` already used for another name is 409.
#[utoipa::path(
    post, path = "/tenants", tag = "tenants",
    request_body = CreateTenant,
    operation_id = "createTenant",
    params(("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]([ -~]{0,253}[!-~])?$",
        description = "Printable ASCII, at most 255 characters; bound to the first request's tenant name")),
    responses(
        (status = 202, description = "Run started", body = TenantRun,
            headers(("Location" = String, description = "/runs/{run_id}")),
            links(
                ("GetRun" = (operation_id = "getRun", parameters(("id" = "$response.body#/run/id")))),
                ("ListTenantRuns" = (operation_id = "listTenantRuns", parameters(("id" = "$response.body#/run/tenant_name")))),
            )),
        (status = 200, description = "The tenant's run already existed", body = TenantRun,
            headers(("Location" = String, description = "/runs/{run_id}")),
            links(
                ("GetRun" = (operation_id = "getRun", parameters(("id" = "$response.body#/run/id")))),
                ("ListTenantRuns" = (operation_id = "listTenantRuns", parameters(("id" = "$response.body#/run/tenant_name")))),
            )),
        (status = 400, description = "Malformed JSON or header", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Lacks system:*", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Tenant suspended, deleting or deleted, or Idempotency-Key already used for another name", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Identity provider unreachable", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn create(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<CreateTenant>,
) -> ApiResult<Response> {
    let idem = idempotency_key(headers.get("idempotency-key"))?;
    let (key, params) = body.parse()?;
    let outcome = start(&state, &key, &params, idem.as_deref()).await;
    let details = json!({ "idempotency_key": idem, "plan": params.plan });
    let outcome = api_action(
        &state.pool,
        &actor,
        "tenant.create",
        key.as_str(),
        details,
        outcome,
    )
    .await;
    let (status, body) = outcome?;
    let location = format!("/runs/{}", body.run.id);
    let mut res = (status, Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    Ok(res)
}

async fn start(
    state: &AppState,
    key: &TenantKey,
    params: &landlord_shared::model::ProvisionParams,
    idem: Option<&str>,
) -> ApiResult<(StatusCode, TenantRun)> {
    let mut tx = state.pool.begin().await?;
    if let Some(t) = db::tenant_by_name(&mut *tx, key.as_str()).await?
        && let Some(why) = blocked(key, &t.status)
    {
        return Err(ApiError::Conflict(why));
    }
    if let Some(idem) = idem {
        // Waits for a concurrent request with the same key to commit.
        let claimed: Option<String> = sqlx::query_scalar(
            "INSERT INTO idempotency_keys (key, tenant_name) VALUES ($1, $2)
             ON CONFLICT (key) DO NOTHING RETURNING tenant_name",
        )
        .bind(idem)
        .bind(key.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        if claimed.is_none() {
            let bound: String =
                sqlx::query_scalar("SELECT tenant_name FROM idempotency_keys WHERE key = $1")
                    .bind(idem)
                    .fetch_one(&mut *tx)
                    .await?;
            if bound != key.as_str() {
                return Err(ApiError::Conflict(format!(
                    "this Idempotency-Key was already used to provision tenant '{bound}'"
                )));
            }
        }
    }
    let wf = workflow_id(key);
    let new = NewRun {
        workflow_id: &wf,
        kind: "provision",
        key,
        tenant_id: None,
        params,
        rollback: state.cfg.rollback_on_failure,
    };
    let started = create_run(&mut tx, &new).await?;
    if let Some(idem) = idem {
        sqlx::query("UPDATE idempotency_keys SET run_id = $2 WHERE key = $1 AND run_id IS NULL")
            .bind(idem)
            .bind(started.run.id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    let body = TenantRun {
        tenant: tenant_view(&state.pool, key.as_str()).await?,
        run: summary(&state.pool, started.run.id).await?,
    };
    let status = if started.created {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((status, body))
}

/// List tenants, newest first
#[utoipa::path(
    get, path = "/tenants", tag = "tenants", operation_id = "listTenants",
    params(ListTenants),
    responses(
        (status = 200, body = TenantPage),
        (status = 400, description = "Bad query value or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListTenants>,
) -> ApiResult<Json<TenantPage>> {
    let limit = page_limit(q.limit)?;
    let after = page_cursor(q.cursor.as_deref())?;
    let mut rows = queries::tenants_page(
        &state.pool,
        q.status.map(TenantStatus::as_str),
        after,
        limit + 1,
    )
    .await?;
    let next_cursor = (rows.len() as i64 > limit).then(|| {
        rows.truncate(limit as usize);
        rows.last().map(|t| {
            Cursor {
                created_at: t.created_at,
                id: t.id,
            }
            .encode()
        })
    });
    Ok(Json(TenantPage {
        items: with_latest_runs(&state.pool, rows).await?,
        next_cursor: next_cursor.flatten(),
    }))
}

/// Show a tenant with its latest run and resources
#[utoipa::path(
    get, path = "/tenants/{id}", tag = "tenants", operation_id = "getTenant",
    params(("id" = String, Path, description = "Tenant UUID or name")),
    responses(
        (status = 200, body = TenantDetail),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such tenant (a run that failed before `register` has none; see GET /runs)", body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn show(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<TenantDetail>> {
    let t = find_tenant(&state.pool, &id).await?;
    let resources = queries::resources(&state.pool, t.id).await?;
    let tenant = with_latest_runs(&state.pool, vec![t])
        .await?
        .pop()
        .ok_or_else(|| ApiError::NotFound("tenant".into()))?;
    Ok(Json(TenantDetail { tenant, resources }))
}

/// A tenant's runs, newest first
#[utoipa::path(
    get, path = "/tenants/{id}/runs", tag = "tenants", operation_id = "listTenantRuns",
    params(("id" = String, Path, description = "Tenant UUID or name")),
    responses(
        (status = 200, body = RunList),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn runs(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<RunList>> {
    let key = tenant_key(&state.pool, &id).await?;
    let rows = queries::runs_of_tenant(&state.pool, key.as_str()).await?;
    Ok(Json(RunList {
        items: summaries(rows),
    }))
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
    security(("bearer" = []))
)]
pub async fn retry(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<(StatusCode, Json<RunSummary>)> {
    let key = tenant_key(&state.pool, &id).await?;
    let outcome = async {
        let run = db::latest_run_for_tenant(&state.pool, key.as_str())
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
    security(("bearer" = []))
)]
pub async fn rollback(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<(StatusCode, Json<RunSummary>)> {
    let key = tenant_key(&state.pool, &id).await?;
    let outcome = async {
        let run = queries::latest_provision_run(&state.pool, key.as_str())
            .await?
            .ok_or_else(|| ApiError::Conflict("the tenant has no provisioning run".into()))?;
        let run = rollback_run(&state.pool, run.run.id).await?;
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
    security(("bearer" = []))
)]
pub async fn delete(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<DeleteParams>,
) -> ApiResult<(StatusCode, Json<TenantRun>)> {
    let t = find_tenant(&state.pool, &id).await?;
    let key = TenantKey::parse(&t.name).map_err(|e| ApiError::Internal(e.into()))?;
    let mode = DeprovisionMode::from(q.mode.unwrap_or(DeleteMode::Soft));
    let force = q.force.unwrap_or(false);
    let outcome = async {
        let started = start_deprovision(&state.pool, &key, mode, force).await?;
        let body = TenantRun {
            tenant: tenant_view(&state.pool, key.as_str()).await?,
            run: summary(&state.pool, started.run.id).await?,
        };
        let status = if started.created {
            StatusCode::ACCEPTED
        } else {
            StatusCode::OK
        };
        Ok((status, body))
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
