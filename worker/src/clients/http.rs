//! Retry semantics of HTTP failures: transport errors, timeouts, 408, 429
//! and 5xx are transient; other 4xx cannot be fixed by retrying.

use crate::step::StepError;
use reqwest::header::HeaderValue;
use reqwest::{RequestBuilder, Response, StatusCode};
use tracing::Instrument;
use tracing::field::Empty;

/// Sends a request in a client span and carries that span's `traceparent`.
/// The span names host and path only: query strings (S3 presigned URLs)
/// hold signatures.
pub trait TracedSend {
    fn traced_send(self) -> impl Future<Output = reqwest::Result<Response>> + Send;
}

impl TracedSend for RequestBuilder {
    async fn traced_send(self) -> reqwest::Result<Response> {
        let (client, request) = self.build_split();
        let mut request = request?;
        let host = request.url().host_str().unwrap_or_default().to_owned();
        let method = request.method().clone();
        let span = tracing::info_span!("http",
            otel.name = %format!("{method} {host}"),
            otel.kind = "client",
            http.request.method = %method,
            server.address = %host,
            url.path = %request.url().path(),
            http.response.status_code = Empty);
        if let Some(value) = landlord_shared::telemetry::traceparent_of(&span)
            .and_then(|tp| HeaderValue::from_str(&tp).ok())
        {
            request.headers_mut().insert("traceparent", value);
        }
        let response = client.execute(request).instrument(span.clone()).await;
        if let Ok(r) = &response {
            span.record("http.response.status_code", r.status().as_u16());
        }
        response
    }
}

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

/// The start of a text for an operator's error message, cut at a
/// character boundary (`String::truncate` panics inside a multibyte one).
pub fn shorten(text: &str) -> &str {
    let mut end = text.len().min(300);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Turns an unexpected response into a step error naming what was tried.
/// The body is cut short: it is for operators, not a data channel.
pub async fn unexpected(what: &str, resp: Response) -> StepError {
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    let body = shorten(&body);
    let msg = format!("{what}: HTTP {status}: {body}");
    // Keycloak answers 400 "Database operation failed" (a realm) or "Could
    // not create user" when a create collides with one still committing,
    // e.g. the retry of an attempt whose worker was killed mid-request: the
    // next attempt finds the object.
    let collided = status == reqwest::StatusCode::BAD_REQUEST
        && (body.contains("Database operation failed") || body.contains("Could not create user"));
    if is_transient(status) || collided {
        StepError::transient(msg)
    } else {
        StepError::permanent(msg)
    }
}
