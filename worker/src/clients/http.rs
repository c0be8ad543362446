//! Retry semantics of HTTP failures: transport errors, timeouts, 408, 429
//! and 5xx are transient; other 4xx cannot be fixed by retrying.

use crate::step::StepError;
use reqwest::{Response, StatusCode};

impl From<reqwest::Error> for StepError {
    fn from(e: reqwest::Error) -> Self {
        if e.is_decode() || e.is_builder() {
            Self::Permanent(e.into())
        } else {
            Self::Transient(e.into())
        }
    }
}

pub fn is_transient(status: StatusCode) -> bool {
    status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
}

/// Turns an unexpected response into a step error naming what was tried.
/// The body is cut short: it is for operators, not a data channel.
pub async fn unexpected(what: &str, resp: Response) -> StepError {
    let status = resp.status();
    let mut body = resp.text().await.unwrap_or_default();
    body.truncate(300);
    let msg = format!("{what}: HTTP {status}: {body}");
    if is_transient(status) {
        StepError::transient(msg)
    } else {
        StepError::permanent(msg)
    }
}
