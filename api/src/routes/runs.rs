//! `/runs`: list (the console's failed-runs view), show with the step
//! timeline and logs, cancel.

use super::{page_cursor, page_limit, summaries, summary};
use crate::AppState;
use crate::audit::api_action;
use crate::auth::scope::{self, Need};
use crate::cursor::Cursor;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiPath, ApiQuery};
use crate::queries;
use crate::views::{LogView, RunDetail, RunPage, RunSummary, StepView};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use landlord_shared::actions::cancel_run;
use landlord_shared::store;
use serde::Deserialize;
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    Completed,
    Failed,
    Cancelled,
    Compensating,
    Compensated,
    CompensationFailed,
}

impl RunStatus {
    fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Compensating => "compensating",
            Self::Compensated => "compensated",
            Self::CompensationFailed => "compensation_failed",
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunKind {
    Provision,
    DeprovisionSoft,
    DeprovisionHard,
}

impl RunKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Provision => "provision",
            Self::DeprovisionSoft => "deprovision_soft",
            Self::DeprovisionHard => "deprovision_hard",
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListRuns {
    #[param(inline)]
    pub status: Option<RunStatus>,
    #[param(inline)]
    pub kind: Option<RunKind>,
    /// `next_cursor` of the previous page.
    #[param(
        pattern = "^[0-9]{1,16}_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
    )]
    #[serde(default, deserialize_with = "super::present")]
    pub cursor: Option<String>,
    #[param(minimum = 1, maximum = 200, default = 50)]
    pub limit: Option<u32>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CancelParams {
    /// Undo what the run did once it has stopped. Default false.
    pub compensate: Option<bool>,
}

fn run_id(raw: &str) -> ApiResult<Uuid> {
    Uuid::parse_str(raw).map_err(|_| ApiError::BadRequest("run id must be a UUID".into()))
}

/// List runs, newest first
///
/// Includes runs that failed before `register` and so have no tenant row.
#[utoipa::path(
    get, path = "/runs", tag = "runs", operation_id = "listRuns",
    params(ListRuns),
    responses(
        (status = 200, body = RunPage),
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
    ApiQuery(q): ApiQuery<ListRuns>,
) -> ApiResult<Json<RunPage>> {
    let limit = page_limit(q.limit)?;
    let after = page_cursor(q.cursor.as_deref())?;
    let mut rows = queries::runs_page(
        &state.pool,
        q.status.map(RunStatus::as_str),
        q.kind.map(RunKind::as_str),
        after,
        limit + 1,
    )
    .await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = more.then(|| rows.last()).flatten().map(|r| {
        Cursor {
            created_at: r.run.created_at,
            id: r.run.id,
        }
        .encode()
    });
    Ok(Json(RunPage {
        items: summaries(rows),
        next_cursor,
    }))
}

/// A run's step timeline and provision log
#[utoipa::path(
    get, path = "/runs/{id}", tag = "runs", operation_id = "getRun",
    params(("id" = Uuid, Path, description = "Run id")),
    responses(
        (status = 200, body = RunDetail),
        (status = 400, description = "Not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["tenants:read"]))
)]
pub async fn show(
    _: Need<scope::TenantsRead>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<RunDetail>> {
    let id = run_id(&id)?;
    let run = summary(&state.pool, id).await?;
    let steps = store::steps_of_run(&state.pool, id).await?;
    let logs = queries::logs(&state.pool, id).await?;
    Ok(Json(RunDetail {
        run,
        steps: steps.into_iter().map(StepView::from).collect(),
        logs: logs.into_iter().map(LogView::masked).collect(),
    }))
}

/// Stop a running run at its next step boundary
#[utoipa::path(
    post, path = "/runs/{id}/cancel", tag = "runs", operation_id = "cancelRun",
    params(("id" = Uuid, Path, description = "Run id"), CancelParams),
    responses(
        (status = 202, description = "Cancel requested", body = RunSummary),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The run is not running", body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["runs:operate"]))
)]
pub async fn cancel(
    Need(actor, _): Need<scope::RunsOperate>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<CancelParams>,
) -> ApiResult<(StatusCode, Json<RunSummary>)> {
    let id = run_id(&id)?;
    let compensate = q.compensate.unwrap_or(false);
    let outcome = async {
        cancel_run(&state.pool, id, compensate).await?;
        Ok((StatusCode::ACCEPTED, summary(&state.pool, id).await?))
    }
    .await;
    let details = json!({ "compensate": compensate });
    let (status, run) = api_action(
        &state.pool,
        &actor,
        "run.cancel",
        &id.to_string(),
        details,
        outcome,
    )
    .await?;
    Ok((status, Json(run)))
}
