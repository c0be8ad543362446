//! The admin API as the support commands see it: the typed client, and its
//! refusals as an error carrying the command's exit code.

use landlord_client::Client;
use landlord_client::models::Problem;
use secrecy::SecretString;
use serde_json::Value;
use std::process::ExitCode;

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

    fn from_problem(p: Problem) -> Self {
        let exit = match p.status {
            400 | 413 | 422 => Exit::BadInput,
            401 | 403 => Exit::Auth,
            404 => Exit::NotFound,
            409 => Exit::Conflict,
            _ => Exit::Other,
        };
        let mut detail = p.detail.clone();
        // Field errors are what a support engineer must fix; the detail
        // alone often only says how many fields are invalid.
        for e in p.errors.iter().flatten() {
            if !detail.is_empty() {
                detail.push_str("; ");
            }
            detail.push_str(&format!("{}: {}", e.field, e.message));
        }
        let message = if detail.is_empty() {
            p.title.clone()
        } else {
            format!("{}: {detail}", p.title)
        };
        Self {
            exit,
            message,
            problem: serde_json::to_value(&p).ok(),
        }
    }
}

impl From<landlord_client::Error> for ApiError {
    fn from(e: landlord_client::Error) -> Self {
        match e {
            landlord_client::Error::Problem(p) => Self::from_problem(p),
            landlord_client::Error::Transport(why) => {
                Self::other(format!("calling the API: {why}"))
            }
        }
    }
}

/// The typed client, once a token is known.
pub struct Api {
    client: Client,
    has_token: bool,
}

impl Api {
    pub fn new(base: &str, token: Option<SecretString>) -> Result<Self, ApiError> {
        let has_token = token.is_some();
        let client = Client::new(base, token).map_err(ApiError::from)?;
        Ok(Self { client, has_token })
    }

    /// Checked per call rather than at start-up so `--help` and input
    /// errors do not need a token.
    pub fn client(&self) -> Result<&Client, ApiError> {
        if !self.has_token {
            return Err(ApiError {
                exit: Exit::Auth,
                message: "LANDLORD_API_TOKEN is not set (create one with `landlord tokens create`)"
                    .into(),
                problem: None,
            });
        }
        Ok(&self.client)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(status: u16, detail: &str, errors: serde_json::Value) -> Problem {
        serde_json::from_value(serde_json::json!({
            "type": "https://landlord.dev/problems/x", "title": "Invalid request",
            "status": status, "detail": detail, "errors": errors,
        }))
        .unwrap()
    }

    #[test]
    fn problem_maps_to_exit_code_and_message() {
        let e = ApiError::from_problem(problem(
            422,
            "1 invalid field",
            serde_json::json!([{"field": "name", "message": "must match ^[a-z0-9]{3,30}$"}]),
        ));
        assert_eq!(e.exit, Exit::BadInput);
        assert_eq!(
            e.message,
            "Invalid request: 1 invalid field; name: must match ^[a-z0-9]{3,30}$"
        );
        let e = ApiError::from_problem(problem(409, "", serde_json::Value::Null));
        assert_eq!(
            (e.exit, e.message.as_str()),
            (Exit::Conflict, "Invalid request")
        );
        assert_eq!(
            ApiError::from_problem(problem(502, "x", serde_json::Value::Null)).exit,
            Exit::Other
        );
        assert_eq!(
            ApiError::from_problem(problem(403, "x", serde_json::Value::Null)).exit,
            Exit::Auth
        );
        assert_eq!(
            ApiError::from_problem(problem(404, "x", serde_json::Value::Null)).exit,
            Exit::NotFound
        );
    }
}
