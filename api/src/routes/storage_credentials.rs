//! `POST /tenants/{id}/storage-credentials`: short-lived S3 credentials for
//! a tenant in storage `prefix` mode, reaching its prefix of the shared
//! bucket and nothing else. Every issue is an audit row (never the secret).

use super::find_tenant;
use crate::AppState;
use crate::audit::api_action;
use crate::auth::scope::{self, Need};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiPath, ApiQuery};
use crate::queries;
use crate::sts::{StsError, prefix_policy};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use landlord_shared::store::TenantStatus;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::time::Duration;
use utoipa::{IntoParams, ToSchema};

/// Shortest lifetime STS grants (AWS's floor).
pub const MIN_SECS: u32 = 900;
/// Longest lifetime issued: a token cannot be revoked, only outlived.
pub const MAX_SECS: u32 = 43_200;
pub const DEFAULT_SECS: u32 = 3_600;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CredentialParams {
    /// Lifetime of the credentials in seconds.
    #[param(minimum = 900, maximum = 43200, default = 3600)]
    pub duration_secs: Option<u32>,
}

/// Credentials for the tenant's prefix: sign S3 requests with all three
/// parts (the session token as `x-amz-security-token`).
#[derive(Debug, Serialize, ToSchema)]
pub struct StorageCredentials {
    pub endpoint: String,
    pub region: String,
    pub bucket: String,
    /// Objects of the tenant live under this prefix; listing the bucket
    /// needs it as the `prefix` parameter.
    #[schema(example = "acme/")]
    pub prefix: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    pub expires_at: DateTime<Utc>,
}

/// Issue short-lived S3 credentials for the tenant's storage prefix
///
/// For tenants whose plan keeps files under a prefix of a shared bucket.
/// The credentials reach only that prefix and cannot be revoked: they end
/// when they expire, so ask again before `expires_at`. Active tenants only.
#[utoipa::path(
    post, path = "/tenants/{id}/storage-credentials", tag = "tenants",
    operation_id = "issueStorageCredentials",
    params(("id" = String, Path, description = "Tenant UUID or name"), CredentialParams),
    responses(
        (status = 200, body = StorageCredentials),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The tenant is not active, or keeps no storage prefix", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The master database or the STS service is unavailable", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["tenants:credentials"]))
)]
pub async fn issue(
    Need(actor, _): Need<scope::TenantsCredentials>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<CredentialParams>,
) -> ApiResult<Json<StorageCredentials>> {
    let secs = q.duration_secs.unwrap_or(DEFAULT_SECS);
    if !(MIN_SECS..=MAX_SECS).contains(&secs) {
        return Err(ApiError::BadRequest(format!(
            "duration_secs must be between {MIN_SECS} and {MAX_SECS}"
        )));
    }
    let t = find_tenant(&state.pool, &id).await?;
    let outcome = async {
        if t.status != TenantStatus::Active {
            return Err(ApiError::Conflict(format!(
                "the tenant is {}: storage credentials are issued to active tenants only",
                t.status.as_str()
            )));
        }
        let (bucket, prefix) = queries::storage_prefix(&state.pool, t.id)
            .await?
            .ok_or_else(|| {
                ApiError::Conflict(
                    "the tenant keeps no storage prefix (its plan's storage is not prefix mode)"
                        .into(),
                )
            })?;
        let (Some(sts), Some(s3)) = (&state.sts, &state.cfg.s3) else {
            return Err(ApiError::Unavailable("S3 is not configured on this API"));
        };
        let minted = sts
            .federation_token(
                &t.name,
                &prefix_policy(&bucket, &prefix),
                Duration::from_secs(secs.into()),
            )
            .await
            .map_err(|e| {
                tracing::error!(tenant = %t.name, "storage credentials: {e}");
                match e {
                    StsError::Unavailable(_) => {
                        ApiError::Unavailable("the STS service is unavailable")
                    }
                    StsError::Refused(_) => ApiError::Unavailable(
                        "the STS service refused to issue credentials (see the API log)",
                    ),
                }
            })?;
        Ok((
            StatusCode::OK,
            StorageCredentials {
                endpoint: s3.endpoint.clone(),
                region: s3.region.clone(),
                bucket,
                prefix,
                access_key_id: minted.access_key_id,
                secret_access_key: minted.secret_access_key,
                session_token: minted.session_token,
                expires_at: minted.expires_at,
            },
        ))
    }
    .await;
    let details = match &outcome {
        Ok((_, c)) => json!({
            "access_key_id": c.access_key_id,
            "expires_at": c.expires_at,
            "duration_secs": secs,
        }),
        Err(_) => json!({ "duration_secs": secs }),
    };
    let (_, body) = api_action(
        &state.pool,
        &actor,
        "tenant.storage_credentials",
        &t.name,
        details,
        outcome,
    )
    .await?;
    Ok(Json(body))
}
