//! `POST /tenants/{id}/provision`: seed 004's step 4. An operator starts
//! provisioning a signup's tenant (`pending_provision`) with the
//! subscription's plan; domains and admin come from its lead.

use super::find_tenant;
use super::provision::start;
use crate::AppState;
use crate::audit::api_action;
use crate::auth::scope::{self, Need};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiPath, JsonBody};
use crate::views::TenantRun;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use landlord_shared::model::{AdminContact, ProvisionParams};
use landlord_shared::store;
use landlord_shared::tenant::TenantKey;
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProvisionPending {
    /// The subscription's plan: a catalogue plan (the built-in tiers are
    /// `enterprise`, `standard` and `hybrid`); the catalogue's default
    /// when absent.
    #[schema(pattern = "^[A-Za-z0-9_.-]{1,64}$", example = "standard")]
    pub plan: Option<String>,
}

/// Provision a signup's tenant
///
/// For a tenant created by `POST /leads/{id}/tenants`: starts its
/// provisioning run on the plan given, with the lead's domains and the
/// lead as its administrator. Asking again while it provisions answers
/// the same run (200).
#[utoipa::path(
    post, path = "/tenants/{id}/provision", tag = "tenants", operation_id = "provisionPendingTenant",
    params(("id" = String, Path, description = "Tenant UUID or name")),
    request_body = ProvisionPending,
    responses(
        (status = 202, description = "Provisioning started", body = TenantRun),
        (status = 200, description = "The run already existed", body = TenantRun),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not a signup's pending tenant", body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown plan", body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["tenants:create"]))
)]
pub async fn provision(
    Need(actor, _): Need<scope::TenantsCreate>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    JsonBody(body): JsonBody<ProvisionPending>,
) -> ApiResult<(StatusCode, Json<TenantRun>)> {
    let t = find_tenant(&state.pool, &id).await?;
    let key = TenantKey::parse(&t.name).map_err(|e| ApiError::Internal(e.into()))?;
    let plan = state
        .cfg
        .plans
        .resolve(body.plan.as_deref())
        .map_err(|e| ApiError::field(&e.field, e.message))?;
    let outcome = async {
        let lead = store::lead_of_tenant(&state.pool, t.id)
            .await?
            .ok_or_else(|| {
                ApiError::Conflict(format!(
                    "tenant '{key}' was not created by a signup: provision it with POST /tenants"
                ))
            })?;
        let params = ProvisionParams {
            plan: Some(plan.name.clone()),
            domains: lead.domains,
            admin: Some(AdminContact {
                email: lead.email,
                first_name: lead.first_name,
                last_name: lead.last_name,
            }),
        };
        start(&state, &key, &params, &plan, None, true).await
    }
    .await;
    let details = json!({ "plan": plan.name });
    let (status, body) = api_action(
        &state.pool,
        &actor,
        "tenant.provision",
        key.as_str(),
        details,
        outcome,
    )
    .await?;
    Ok((status, Json(body)))
}
