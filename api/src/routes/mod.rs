//! Handlers, one file per resource, and what they share: resolving a
//! tenant from a path segment, list parameters.

pub mod callbacks;
pub mod connections;
pub mod health;
pub mod leads;
pub mod pending;
pub mod provision;
pub mod runs;
pub mod storage_credentials;
pub mod tenant_actions;
pub mod tenants;

use crate::cursor::Cursor;
use crate::error::{ApiError, ApiResult};
use crate::queries;
use crate::views::{RunRow, RunSummary};
use landlord_shared::model::Tenant;
use landlord_shared::store;
use landlord_shared::tenant::TenantKey;
use sqlx::PgPool;
use uuid::Uuid;

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 200;

/// A `{id}` segment: a tenant's UUID or its name.
pub enum TenantRef {
    Id(Uuid),
    Name(TenantKey),
}

impl TenantRef {
    /// `None` for a segment that can name no tenant: such a tenant does
    /// not exist, so callers answer 404.
    pub fn parse(raw: &str) -> Option<Self> {
        if let Ok(id) = Uuid::parse_str(raw) {
            return Some(Self::Id(id));
        }
        TenantKey::parse(raw).ok().map(Self::Name)
    }
}

fn tenant_not_found() -> ApiError {
    ApiError::NotFound("tenant".into())
}

/// The tenants row named by `{id}`.
pub async fn find_tenant(pool: &PgPool, raw: &str) -> ApiResult<Tenant> {
    let found = match TenantRef::parse(raw).ok_or_else(tenant_not_found)? {
        TenantRef::Id(id) => store::tenant_by_id(pool, id).await?,
        TenantRef::Name(key) => store::tenant_by_name(pool, key.as_str()).await?,
    };
    found.ok_or_else(tenant_not_found)
}

/// The tenant name `{id}` stands for. A name needs no tenants row: a run
/// that failed before `register` has none, and can still be retried or
/// rolled back by name. 404 when neither a row nor a run knows it.
pub async fn tenant_key(pool: &PgPool, raw: &str) -> ApiResult<TenantKey> {
    match TenantRef::parse(raw).ok_or_else(tenant_not_found)? {
        TenantRef::Id(id) => {
            let t = store::tenant_by_id(pool, id)
                .await?
                .ok_or_else(tenant_not_found)?;
            TenantKey::parse(&t.name).map_err(|e| ApiError::Internal(e.into()))
        }
        TenantRef::Name(key) => {
            let known = store::tenant_by_name(pool, key.as_str()).await?.is_some()
                || store::latest_run_for_tenant(pool, key.as_str())
                    .await?
                    .is_some();
            known.then_some(key).ok_or_else(tenant_not_found)
        }
    }
}

/// `Some` whenever the parameter is in the query, even empty (`cursor=`),
/// which plain `Option<String>` would read as absent.
pub fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    <String as serde::Deserialize>::deserialize(d).map(Some)
}

pub fn page_limit(limit: Option<u32>) -> ApiResult<i64> {
    match limit.unwrap_or(DEFAULT_LIMIT) {
        n @ 1..=MAX_LIMIT => Ok(i64::from(n)),
        _ => Err(ApiError::BadRequest(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        ))),
    }
}

pub fn page_cursor(raw: Option<&str>) -> ApiResult<Option<Cursor>> {
    raw.map(|c| Cursor::decode(c).ok_or_else(|| ApiError::BadRequest("invalid cursor".into())))
        .transpose()
}

/// A run as the API shows it (with its failed step), read after an action.
pub async fn summary(pool: &PgPool, run_id: Uuid) -> ApiResult<RunSummary> {
    queries::run(pool, run_id)
        .await?
        .map(RunSummary::from)
        .ok_or_else(|| ApiError::NotFound("run".into()))
}

pub fn summaries(rows: Vec<RunRow>) -> Vec<RunSummary> {
    rows.into_iter().map(RunSummary::from).collect()
}
