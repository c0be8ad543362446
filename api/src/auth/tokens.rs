//! API tokens for service callers: `ll_` + 43 characters of base64url over
//! 32 random bytes. Only the SHA-256 is stored; the token is shown once,
//! when created.

use super::scope::Scope;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::PgExecutor;
use uuid::Uuid;

pub const PREFIX: &str = "ll_";

#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct ApiToken {
    pub id: Uuid,
    pub name: String,
    pub permissions: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    /// Refused from then on; `None`: until revoked.
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error(
        "token name must be 1 to 64 characters of A-Z, a-z, 0-9, '_', '.', '-', starting with a letter or digit"
    )]
    BadName,
    #[error("unknown permission '{0}': use one of {names}", names = Scope::names())]
    BadPermission(String),
    #[error("a token named '{0}' already exists")]
    Duplicate(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    (1..=64).contains(&b.len())
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

pub fn hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// 43 characters of base64url over 32 random bytes.
pub fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn generate() -> String {
    format!("{PREFIX}{}", random_secret())
}

/// Creates a token (expiring after `lifetime`, if given) and returns it
/// with the only copy of its secret.
pub async fn create(
    ex: impl PgExecutor<'_>,
    name: &str,
    permissions: &[String],
    lifetime: Option<std::time::Duration>,
) -> Result<(ApiToken, String), TokenError> {
    if !valid_name(name) {
        return Err(TokenError::BadName);
    }
    if let Some(unknown) = permissions.iter().find(|p| Scope::parse(p).is_none()) {
        return Err(TokenError::BadPermission(unknown.clone()));
    }
    let secret = generate();
    let row = sqlx::query_as!(
        ApiToken,
        "INSERT INTO api_tokens (id, name, token_hash, permissions, expires_at)
         VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5))
         ON CONFLICT (name) DO NOTHING
         RETURNING id, name, permissions, created_at, revoked_at, last_used_at, expires_at",
        Uuid::now_v7(),
        name,
        hash(&secret),
        permissions,
        lifetime.map(|d| d.as_secs_f64())
    )
    .fetch_optional(ex)
    .await?;
    let row = row.ok_or_else(|| TokenError::Duplicate(name.to_owned()))?;
    Ok((row, secret))
}

pub async fn list(ex: impl PgExecutor<'_>) -> sqlx::Result<Vec<ApiToken>> {
    sqlx::query_as!(
        ApiToken,
        "SELECT id, name, permissions, created_at, revoked_at, last_used_at, expires_at
         FROM api_tokens ORDER BY created_at"
    )
    .fetch_all(ex)
    .await
}

/// Revokes by id (when the argument is a UUID) or name; `None` when no such token exists. Revoking twice
/// keeps the first revocation time.
pub async fn revoke(ex: impl PgExecutor<'_>, name_or_id: &str) -> sqlx::Result<Option<ApiToken>> {
    let id = Uuid::parse_str(name_or_id).ok();
    sqlx::query_as!(
        ApiToken,
        "UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, now())
         WHERE CASE WHEN $2::uuid IS NULL THEN name = $1 ELSE id = $2 END
         RETURNING id, name, permissions, created_at, revoked_at, last_used_at, expires_at",
        name_or_id,
        id
    )
    .fetch_optional(ex)
    .await
}

/// The live (unrevoked, unexpired) token with this secret, marking it used. The
/// last-use time is written at most once a minute per token, so a busy
/// caller does not turn every read into a write.
pub async fn authenticate(pool: &sqlx::PgPool, secret: &str) -> sqlx::Result<Option<ApiToken>> {
    let token = sqlx::query_as!(
        ApiToken,
        "SELECT id, name, permissions, created_at, revoked_at, last_used_at, expires_at
         FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL
           AND (expires_at IS NULL OR expires_at > now())",
        hash(secret)
    )
    .fetch_optional(pool)
    .await?;
    if let Some(t) = &token
        && t.last_used_at
            .is_none_or(|at| Utc::now() - at > chrono::Duration::minutes(1))
    {
        sqlx::query!(
            "UPDATE api_tokens SET last_used_at = now() WHERE id = $1",
            t.id
        )
        .execute(pool)
        .await?;
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_prefixed_random_and_hash_to_hex() {
        let a = generate();
        let b = generate();
        assert!(a.starts_with(PREFIX) && a.len() == 3 + 43);
        assert_ne!(a, b);
        let h = hash(&a);
        assert_eq!(h.len(), 64);
        assert_eq!(h, hash(&a));
        assert_ne!(h, hash(&b));
    }

    #[test]
    fn names() {
        assert!(valid_name("ci-deployer.prod"));
        assert!(!valid_name(""));
        assert!(!valid_name("-x"));
        assert!(!valid_name("a b"));
        assert!(!valid_name(&"a".repeat(65)));
    }
}
