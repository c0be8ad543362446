//! `GET /tenants/{id}/connections`: where the tenant's application reaches
//! each service, and, asked for with `include=credentials` and the
//! `tenants:credentials` scope, the secrets to log in. Every credentials
//! read is an audit row (naming the services, never the secrets).

use super::find_tenant;
use crate::AppState;
use crate::audit::api_action;
use crate::auth::scope::{self, Need, Scope};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiPath, ApiQuery};
use crate::queries;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use landlord_shared::secrets::SecretError;
use landlord_shared::store::TenantStatus;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Clone, Copy, Deserialize, ToSchema, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum Include {
    Credentials,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConnectionParams {
    /// `credentials` adds each connection's secret; needs the
    /// `tenants:credentials` scope, and is audited.
    #[param(inline)]
    pub include: Option<Include>,
}

/// One service of the tenant, as its application connects to it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionView {
    /// `postgres`, `mongodb` or `qdrant`.
    #[schema(example = "postgres")]
    pub service: String,
    pub host: Option<String>,
    pub port: Option<i32>,
    /// Database, or collection for Qdrant.
    pub database: String,
    pub user: Option<String>,
    /// What a client needs besides host, port and database (a pooled
    /// tenant's schema and `search_path`, a shared collection's filter).
    pub options: Option<serde_json::Value>,
    /// Where the secret is kept.
    pub secret_ref: Option<String>,
    /// The secret at `secret_ref` (a password), with `include=credentials`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionList {
    pub items: Vec<ConnectionView>,
}

/// The tenant's connections
///
/// Host, port, database, user and options of each service, with where its
/// secret is kept. `include=credentials` adds the secrets themselves: it
/// needs `tenants:credentials` besides `tenants:read`, only active tenants
/// have them, and each such read is an audit row.
#[utoipa::path(
    get, path = "/tenants/{id}/connections", tag = "tenants", operation_id = "listTenantConnections",
    params(("id" = String, Path, description = "Tenant UUID or name"), ConnectionParams),
    responses(
        (status = 200, body = ConnectionList),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Lacks tenants:read, or tenants:credentials for include=credentials", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Credentials asked for a tenant that is not active", body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["tenants:read"]))
)]
pub async fn list(
    Need(actor, _): Need<scope::TenantsRead>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<ConnectionParams>,
) -> ApiResult<Json<ConnectionList>> {
    let t = find_tenant(&state.pool, &id).await?;
    let mut items = queries::connections(&state.pool, t.id).await?;
    if q.include != Some(Include::Credentials) {
        return Ok(Json(ConnectionList { items }));
    }
    let outcome = async {
        if !actor.grants.allows(Scope::TenantsCredentials) {
            return Err(ApiError::lacks(Scope::TenantsCredentials.as_str()));
        }
        if t.status != TenantStatus::Active {
            return Err(ApiError::Conflict(format!(
                "the tenant is {}: credentials are given for active tenants only",
                t.status.as_str()
            )));
        }
        let store = state.cfg.secrets.as_ref().ok_or(ApiError::Unavailable(
            "LANDLORD_SECRET_KEY is not set on this API",
        ))?;
        for c in &mut items {
            let Some(reference) = &c.secret_ref else {
                continue;
            };
            c.secret = match store.get(&state.pool, reference).await {
                Ok(s) => Some(s.expose_secret().to_owned()),
                // Recorded but gone (a deprovisioning in progress): say so
                // by its absence rather than fail the other connections.
                Err(SecretError::NotFound(_)) => None,
                Err(SecretError::Db(e)) => return Err(e.into()),
                Err(e) => return Err(ApiError::Internal(e.into())),
            };
        }
        Ok((StatusCode::OK, ConnectionList { items }))
    }
    .await;
    let details = match &outcome {
        Ok((_, list)) => json!({
            "services": list.items.iter().filter(|c| c.secret.is_some()).map(|c| &c.service).collect::<Vec<_>>(),
        }),
        Err(_) => json!({}),
    };
    let (_, body) = api_action(
        &state.pool,
        &actor,
        "tenant.credentials_read",
        &t.name,
        details,
        outcome,
    )
    .await?;
    Ok(Json(body))
}
