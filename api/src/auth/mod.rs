//! Authentication and the `system:*` check in front of every admin
//! endpoint: `Authorization: Bearer ll_…` is an API token, any other
//! bearer value a JWT from the configured issuer.

pub mod jwt;
pub mod tokens;

use crate::AppState;
use crate::config::ADMIN_PERMISSION;
use crate::error::ApiError;
use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;
use jwt::JwtError;

/// The authenticated caller, put into the request's extensions for the
/// audit log.
#[derive(Debug, Clone)]
pub struct Actor {
    /// `token` or `jwt`.
    pub kind: &'static str,
    /// Token name, or the JWT's `preferred_username` (else `sub`).
    pub name: String,
    /// Token id or JWT `sub`.
    pub id: String,
}

fn bearer(req: &Request) -> Result<&str, ApiError> {
    let value = req
        .headers()
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
    let token = bearer(&req)?;
    let (actor, allowed) = if token.starts_with(tokens::PREFIX) {
        let t = tokens::authenticate(&state.pool, token)
            .await?
            .ok_or(ApiError::Unauthorized("unknown or revoked API token"))?;
        let allowed = t.has(ADMIN_PERMISSION);
        let actor = Actor {
            kind: "token",
            name: t.name,
            id: t.id.to_string(),
        };
        (actor, allowed)
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
        let actor = Actor {
            kind: "jwt",
            name: who.name,
            id: who.subject,
        };
        (actor, who.admin)
    };
    if !allowed {
        tracing::info!(actor = %actor.name, kind = actor.kind, "refused: lacks {ADMIN_PERMISSION}");
        return Err(ApiError::Forbidden);
    }
    req.extensions_mut().insert(actor);
    Ok(next.run(req).await)
}
