//! The admin API as the support commands see it: one request helper that
//! turns problem+json answers into an error carrying its exit code.

use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use std::process::ExitCode;
use std::time::Duration;

/// Exit codes of the support commands, so scripts can branch on the cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Other = 1,
    BadInput = 2,
    NotFound = 3,
    Conflict = 4,
    Auth = 5,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e as u8)
    }
}

#[derive(Debug)]
pub struct ApiError {
    pub exit: Exit,
    /// `<title>: <detail>`, ready to print after `error: `.
    pub message: String,
    /// The problem document as the server sent it, for `--json`.
    pub problem: Option<Value>,
}

impl ApiError {
    pub fn other(message: impl Into<String>) -> Self {
        Self {
            exit: Exit::Other,
            message: message.into(),
            problem: None,
        }
    }

    fn from_response(status: StatusCode, body: &str) -> Self {
        let exit = match status.as_u16() {
            400 | 413 | 422 => Exit::BadInput,
            401 | 403 => Exit::Auth,
            404 => Exit::NotFound,
            409 => Exit::Conflict,
            _ => Exit::Other,
        };
        let problem: Option<Value> = serde_json::from_str(body).ok().filter(Value::is_object);
        let message = match &problem {
            Some(p) => {
                let title = p["title"]
                    .as_str()
                    .map_or_else(|| status.to_string(), str::to_owned);
                let mut detail = p["detail"].as_str().unwrap_or_default().to_owned();
                // Field errors are what a support engineer must fix; the
                // detail alone often only says "invalid request".
                for e in p["errors"].as_array().into_iter().flatten() {
                    let field = e["field"].as_str().unwrap_or("?");
                    let msg = e["message"].as_str().unwrap_or_default();
                    if !detail.is_empty() {
                        detail.push_str("; ");
                    }
                    detail.push_str(&format!("{field}: {msg}"));
                }
                if detail.is_empty() {
                    title
                } else {
                    format!("{title}: {detail}")
                }
            }
            None => format!("HTTP {status}"),
        };
        Self {
            exit,
            message,
            problem,
        }
    }
}

pub struct Api {
    http: reqwest::Client,
    base: String,
    token: Option<SecretString>,
}

impl Api {
    pub fn new(base: &str, token: Option<SecretString>) -> Result<Self, ApiError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| ApiError::other(format!("HTTP client: {e}")))?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            token,
        })
    }

    pub async fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Value, ApiError> {
        self.send(Method::GET, path, query).await
    }

    pub async fn post(&self, path: &str, query: &[(&str, String)]) -> Result<Value, ApiError> {
        self.send(Method::POST, path, query).await
    }

    pub async fn delete(&self, path: &str, query: &[(&str, String)]) -> Result<Value, ApiError> {
        self.send(Method::DELETE, path, query).await
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Value, ApiError> {
        // Checked per request rather than at start-up so `--help` and input
        // errors do not need a token.
        let token = self.token.as_ref().ok_or_else(|| ApiError {
            exit: Exit::Auth,
            message: "LANDLORD_API_TOKEN is not set (create one with `landlord tokens create`)"
                .into(),
            problem: None,
        })?;
        let url = format!("{}{path}", self.base);
        let resp = self
            .http
            .request(method, &url)
            .query(query)
            .bearer_auth(token.expose_secret())
            .send()
            .await
            .map_err(|e| ApiError::other(format!("cannot reach the API at {}: {e}", self.base)))?;
        let status = resp.status();
        let body = resp
            .text()
            .await
            .map_err(|e| ApiError::other(format!("reading the API's answer: {e}")))?;
        if !status.is_success() {
            return Err(ApiError::from_response(status, &body));
        }
        if body.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&body)
            .map_err(|e| ApiError::other(format!("the API answered {status} with bad JSON: {e}")))
    }
}

/// A path segment from user input: tenant names and run ids are validated
/// by the server, but must not be able to change the path's shape.
pub fn segment(raw: &str) -> String {
    // URL parsers resolve "." and ".." segments away.
    let dot_segment = raw == "." || raw == "..";
    let mut out = String::with_capacity(raw.len());
    for b in raw.bytes() {
        let plain = b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'~');
        if plain || (b == b'.' && !dot_segment) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_maps_to_exit_code_and_message() {
        let e = ApiError::from_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            r#"{"title":"Invalid request","status":422,"detail":"bad name",
                "errors":[{"field":"name","message":"must match ^[a-z0-9]{3,30}$"}]}"#,
        );
        assert_eq!(e.exit, Exit::BadInput);
        assert_eq!(
            e.message,
            "Invalid request: bad name; name: must match ^[a-z0-9]{3,30}$"
        );
        let e = ApiError::from_response(StatusCode::CONFLICT, r#"{"title":"Conflict"}"#);
        assert_eq!((e.exit, e.message.as_str()), (Exit::Conflict, "Conflict"));
        let e = ApiError::from_response(StatusCode::BAD_GATEWAY, "<html>");
        assert_eq!(e.exit, Exit::Other);
        assert_eq!(
            ApiError::from_response(StatusCode::FORBIDDEN, "{}").exit,
            Exit::Auth
        );
        assert_eq!(
            ApiError::from_response(StatusCode::NOT_FOUND, "").exit,
            Exit::NotFound
        );
    }

    #[test]
    fn segments_cannot_change_the_path() {
        assert_eq!(segment("acme"), "acme");
        assert_eq!(segment("../x"), "..%2Fx");
        assert_eq!(segment(".."), "%2E%2E");
        assert_eq!(segment("a b?c#"), "a%20b%3Fc%23");
    }
}
