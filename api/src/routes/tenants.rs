//! `/tenants` reads: list, show, a tenant's runs.

use super::{find_tenant, page_cursor, page_limit, summaries, summary, tenant_key};
use crate::AppState;
use crate::auth::scope::{self, Need};
use crate::cursor::Cursor;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiPath, ApiQuery};
use crate::queries;
use crate::views::{RunList, RunSummary, TenantDetail, TenantPage, TenantRun, TenantView};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use landlord_shared::start::Started;
use landlord_shared::store;
use landlord_shared::tenant::TenantKey;
use serde::Deserialize;
use sqlx::PgPool;
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TenantStatus {
    PendingProvision,
    Provisioning,
    Active,
    Suspended,
    Deleting,
    Deleted,
}

impl TenantStatus {
    fn as_str(self) -> &'static str {
        match self {
            Self::PendingProvision => "pending_provision",
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

/// Attaches each tenant's newest run.
pub async fn with_latest_runs(
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

pub async fn tenant_view(pool: &PgPool, name: &str) -> ApiResult<Option<TenantView>> {
    let Some(t) = store::tenant_by_name(pool, name).await? else {
        return Ok(None);
    };
    Ok(with_latest_runs(pool, vec![t]).await?.pop())
}

/// The answer to a start: 202 for a new run, 200 for the run that already
/// held the workflow ID.
pub async fn started_answer(
    pool: &PgPool,
    key: &TenantKey,
    started: &Started,
) -> ApiResult<(StatusCode, TenantRun)> {
    let body = TenantRun {
        tenant: tenant_view(pool, key.as_str()).await?,
        run: summary(pool, started.run.id).await?,
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
    security(("bearer" = ["tenants:read"]))
)]
pub async fn list(
    _: Need<scope::TenantsRead>,
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
    security(("bearer" = ["tenants:read"]))
)]
pub async fn show(
    _: Need<scope::TenantsRead>,
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
    security(("bearer" = ["tenants:read"]))
)]
pub async fn runs(
    _: Need<scope::TenantsRead>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<RunList>> {
    let key = tenant_key(&state.pool, &id).await?;
    let rows = queries::runs_of_tenant(&state.pool, key.as_str()).await?;
    Ok(Json(RunList {
        items: summaries(rows),
    }))
}
