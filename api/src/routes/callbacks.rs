//! Callbacks of custom steps' executors: the end of work they accepted.
//! Public (an executor holds no API token): the one-time token of the call
//! is the credential, and it works once.

use crate::AppState;
use crate::error::{ApiError, ApiResult, FieldError, Problem};
use crate::extract::JsonBody;
use crate::views::Status;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use landlord_shared::executor::{CALLBACK_TOKEN_HEADER, Report, hash_callback_token};
use landlord_shared::jobs::{Direction, StepJob, push_step_job};
use landlord_shared::store::{self, StepStatus};
use std::time::Duration;

/// An executor reports the end of work it accepted
///
/// The token is the one Landlord sent in the call's `callback`; it is
/// taken with the first report, so a second report is refused and changes
/// nothing. The run goes on from the report whichever worker picks it up.
#[utoipa::path(
    post, path = "/callbacks/steps", tag = "executors", operation_id = "reportStep",
    params(("landlord-callback-token" = String, Header, description = "The one-time token of the accepted call")),
    request_body = Report,
    responses(
        (status = 202, description = "Report taken", body = Status),
        (status = 401, description = "No token", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "No step expects this token: already used, never issued, or its attempt is over", body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a done or failed report", body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn report(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(report): JsonBody<Report>,
) -> ApiResult<(StatusCode, Json<Status>)> {
    let token = headers
        .get(CALLBACK_TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|t| !t.is_empty())
        .ok_or(ApiError::Unauthorized("missing callback token"))?;
    if report == Report::Accepted {
        return Err(ApiError::Validation(vec![FieldError::new(
            "status",
            "a callback reports the end of the work: done or failed",
        )]));
    }
    let body = serde_json::to_value(&report).map_err(|e| ApiError::Internal(e.into()))?;
    let mut tx = state.pool.begin().await?;
    let taken = store::take_callback(&mut *tx, &hash_callback_token(token), &body)
        .await?
        .ok_or_else(|| {
            ApiError::Conflict(
                "no step expects this callback token: it was used already, never issued, or \
                 the attempt it belongs to is over"
                    .into(),
            )
        })?;
    // A step still `running` has not committed its wait: the attempt that
    // armed the token applies the report itself.
    if taken.status == StepStatus::Awaiting {
        let job = StepJob {
            wake: Some(taken.attempt),
            ..StepJob::new(taken.run_id, taken.position, Direction::Forward)
        };
        push_step_job(&mut tx, &job, Duration::ZERO)
            .await
            .map_err(|e| ApiError::Internal(e.into()))?;
    }
    tx.commit().await?;
    tracing::info!(run_id = %taken.run_id, position = taken.position, attempt = taken.attempt,
        "executor callback taken");
    Ok((
        StatusCode::ACCEPTED,
        Json(Status {
            status: "accepted".into(),
        }),
    ))
}
