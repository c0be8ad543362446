//! `POST /tenants`: start provisioning, idempotent per tenant name.

use super::tenants::started_answer;
use crate::AppState;
use crate::audit::api_action;
use crate::auth::scope::{self, Need};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::JsonBody;
use crate::input::{CreateTenant, idempotency_key};
use crate::views::TenantRun;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use landlord_shared::catalogue::Plan;
use landlord_shared::model::ProvisionParams;
use landlord_shared::start::{NewRun, create_run, workflow_id};
use landlord_shared::store::{self, RunKind, RunStatus, TenantStatus};
use landlord_shared::tenant::TenantKey;
use serde_json::json;

/// Why a tenant in this state cannot be provisioned again.
fn blocked(key: &TenantKey, status: TenantStatus) -> Option<String> {
    match status {
        TenantStatus::Suspended => Some(format!(
            "tenant '{key}' is suspended after a failed provisioning run: retry it \
             (POST /tenants/{key}/retry), roll it back (POST /tenants/{key}/rollback) or deprovision it"
        )),
        TenantStatus::Deleting => Some(format!("tenant '{key}' is being deprovisioned")),
        TenantStatus::PendingProvision => Some(format!(
            "tenant '{key}' was created by a signup and waits for provisioning with its \
             lead's details: POST /tenants/{key}/provision"
        )),
        TenantStatus::Deleted => Some(format!(
            "tenant '{key}' was deleted; its name cannot be provisioned again"
        )),
        _ => None,
    }
}

/// A tenant whose provisioning was rolled back completely is `deleted` but
/// holds nothing: its name may be provisioned again.
async fn rolled_back(tx: &mut sqlx::PgConnection, key: &TenantKey) -> sqlx::Result<bool> {
    let status = store::status_of_workflow(&mut *tx, &workflow_id(key)).await?;
    Ok(status == Some(RunStatus::Compensated))
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
        (status = 403, description = "Lacks tenants:create", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Tenant suspended, deleting or deleted, or Idempotency-Key already used for another name", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Identity provider unreachable", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["tenants:create"]))
)]
pub async fn create(
    Need(actor, _): Need<scope::TenantsCreate>,
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<CreateTenant>,
) -> ApiResult<Response> {
    let idem = idempotency_key(headers.get("idempotency-key"))?;
    let (key, mut params) = body.parse()?;
    let plan = state
        .cfg
        .plans
        .resolve(params.plan.as_deref())
        .map_err(|e| ApiError::field(&e.field, e.message))?;
    params.plan = Some(plan.name.clone());
    let outcome = start(&state, &key, &params, &plan, idem.as_deref(), false).await;
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

/// Starts (or finds) the tenant's provisioning run. `pending`: the tenant
/// is a signup's, waiting in `pending_provision` (and must be).
pub(super) async fn start(
    state: &AppState,
    key: &TenantKey,
    params: &ProvisionParams,
    plan: &Plan,
    idem: Option<&str>,
    pending: bool,
) -> ApiResult<(StatusCode, TenantRun)> {
    let mut tx = state.pool.begin().await?;
    // A signup may be creating its tenant under this key right now.
    store::lock_tenant_key(&mut tx, key.as_str()).await?;
    let found = store::tenant_by_name(&mut *tx, key.as_str()).await?;
    if pending {
        let status = found.map(|t| t.status);
        // Once its run has begun the tenant is `provisioning`: asking again
        // answers that run (below), as POST /tenants does.
        let begun = status == Some(TenantStatus::Provisioning)
            && store::status_of_workflow(&mut *tx, &workflow_id(key))
                .await?
                .is_some();
        if status != Some(TenantStatus::PendingProvision) && !begun {
            return Err(ApiError::Conflict(format!(
                "tenant '{key}' is {}: only a signup's pending_provision tenant is provisioned here",
                status.map_or("unknown", TenantStatus::as_str)
            )));
        }
    } else if let Some(t) = found
        && let Some(why) = blocked(key, t.status)
        && !(t.status == TenantStatus::Deleted && rolled_back(&mut tx, key).await?)
    {
        return Err(ApiError::Conflict(why));
    }
    if let Some(idem) = idem {
        // Waits for a concurrent request with the same key to commit.
        let bound = store::claim_idempotency_key(&mut tx, idem, key.as_str()).await?;
        {
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
        kind: RunKind::Provision,
        key,
        tenant_id: None,
        params,
        rollback: state.cfg.rollback_on_failure,
        steps: &state.cfg.timeline(plan),
        plan: Some(plan),
    };
    let started = create_run(&mut tx, &new).await?;
    if let Some(idem) = idem {
        store::bind_idempotency_key(&mut *tx, idem, started.run.id).await?;
    }
    tx.commit().await?;
    started_answer(&state.pool, key, &started).await
}
