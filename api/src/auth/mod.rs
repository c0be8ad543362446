//! Authentication in front of every admin endpoint: `Authorization: Bearer
//! ll_…` is an API token, any other bearer value a JWT from the configured
//! issuer. What the caller may do is checked by each handler ([`scope`]).

pub mod jwt;
pub mod scope;
pub mod tokens;

use crate::AppState;
use crate::error::ApiError;
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;
use jwt::JwtError;
use scope::Grants;

/// The authenticated caller, put into the request's extensions for the
/// scope checks and the audit log.
#[derive(Debug, Clone)]
pub struct Actor {
    /// `token` or `jwt`.
    pub kind: &'static str,
    /// Token name, or the JWT's `preferred_username` (else `sub`).
    pub name: String,
    /// Token id or JWT `sub`.
    pub id: String,
    pub grants: Grants,
}

/// The token of `Authorization: Bearer <token>`.
pub(crate) fn bearer(headers: &HeaderMap) -> Result<&str, ApiError> {
    let value = headers
        .get(AUTHORIZATION)
        .ok_or(ApiError::Unauthorized("missing Authorization header"))?
        .to_str()
        .map_err(|_| ApiError::Unauthorized("malformed Authorization header"))?;
    let (scheme, token) = value.split_once(' ').ok_or(ApiError::Unauthorized(
        "expected 'Authorization: Bearer <token>'",
    ))?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(ApiError::Unauthorized(
            "expected 'Authorization: Bearer <token>'",
        ));
    }
    Ok(token)
}

pub async fn authenticate(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let token = bearer(req.headers())?;
    let actor = if token.starts_with(tokens::PREFIX) {
        let t = tokens::authenticate(&state.pool, token)
            .await?
            .ok_or(ApiError::Unauthorized(
                "unknown, revoked or expired API token",
            ))?;
        Actor {
            kind: "token",
            grants: Grants::from_names(t.permissions.iter().map(String::as_str)),
            name: t.name,
            id: t.id.to_string(),
        }
    } else {
        let verifier = state.jwt.as_ref().ok_or(ApiError::Unauthorized(
            "JWT authentication is not configured",
        ))?;
        let who = verifier.verify(token).await.map_err(|e| match e {
            JwtError::Invalid(why) => {
                tracing::info!("JWT refused: {why}");
                ApiError::Unauthorized("invalid or expired token")
            }
            JwtError::Unreachable(why) => {
                tracing::warn!("cannot verify JWT: {why}");
                ApiError::Unavailable("the identity provider is unreachable")
            }
        })?;
        Actor {
            kind: "jwt",
            name: who.name,
            id: who.subject,
            grants: who.grants,
        }
    };
    req.extensions_mut().insert(actor);
    Ok(next.run(req).await)
}
