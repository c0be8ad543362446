//! Bearer JWTs from an OIDC issuer (Keycloak), verified against the
//! issuer's JWKS. Keys are cached; an unknown `kid` (the issuer rotated its
//! keys) triggers a refetch, at most one per `MIN_REFRESH` so that tokens
//! with made-up key ids cannot make us hammer the issuer.

use super::scope::{Grants, Scope};
use crate::config::JwtConfig;
use jsonwebtoken::jwk::{Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde_json::Value;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, RwLock};

const MIN_REFRESH: Duration = Duration::from_secs(10);
const MAX_AGE: Duration = Duration::from_secs(600);
const LEEWAY_SECS: u64 = 30;

#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    /// The token is not acceptable: bad signature, expired, wrong issuer...
    #[error("{0}")]
    Invalid(String),
    /// The issuer could not be asked for its keys.
    #[error("identity provider unreachable: {0}")]
    Unreachable(String),
}

struct Key {
    key: DecodingKey,
    alg: Option<Algorithm>,
}

#[derive(Default)]
struct Cache {
    keys: HashMap<String, Key>,
    fetched: Option<Instant>,
    /// Last failed fetch: an unreachable issuer is asked again only after
    /// `MIN_REFRESH`, so requests meanwhile fail fast instead of queueing
    /// behind timeouts.
    failed: Option<Instant>,
}

pub struct JwtVerifier {
    cfg: JwtConfig,
    http: reqwest::Client,
    cache: RwLock<Cache>,
    refresh: Mutex<()>,
}

/// Who a verified token names, and the scopes it grants.
pub struct JwtIdentity {
    pub subject: String,
    pub name: String,
    pub grants: Grants,
}

fn alg_of(k: KeyAlgorithm) -> Option<Algorithm> {
    Some(match k {
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        _ => return None,
    })
}

impl JwtVerifier {
    pub fn new(cfg: JwtConfig) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_default();
        Self {
            cfg,
            http,
            cache: RwLock::new(Cache::default()),
            refresh: Mutex::new(()),
        }
    }

    async fn get_json(&self, url: &str) -> Result<Value, JwtError> {
        let res = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| JwtError::Unreachable(e.without_url().to_string()))?;
        if !res.status().is_success() {
            return Err(JwtError::Unreachable(format!(
                "{url} answered {}",
                res.status()
            )));
        }
        res.json()
            .await
            .map_err(|e| JwtError::Unreachable(e.without_url().to_string()))
    }

    async fn jwks_url(&self) -> String {
        if let Some(url) = &self.cfg.jwks_url {
            return url.clone();
        }
        let discovery = format!("{}/.well-known/openid-configuration", self.cfg.issuer);
        match self.get_json(&discovery).await {
            Ok(doc) => {
                if let Some(url) = doc.get("jwks_uri").and_then(Value::as_str) {
                    return url.to_owned();
                }
            }
            Err(e) => tracing::warn!("OIDC discovery failed, trying Keycloak's JWKS path: {e}"),
        }
        format!("{}/protocol/openid-connect/certs", self.cfg.issuer)
    }

    /// Fetches the key set again unless another request just did. When the
    /// issuer cannot be reached, keys already cached stay in use for tokens
    /// they know; only a `force`d refresh (an unknown `kid`) fails.
    async fn refresh(&self, force: bool) -> Result<(), JwtError> {
        let _one_at_a_time = self.refresh.lock().await;
        {
            let cache = self.cache.read().await;
            if let Some(at) = cache.fetched {
                let age = at.elapsed();
                if age < MIN_REFRESH || (!force && age < MAX_AGE) {
                    return Ok(());
                }
            }
            if cache.failed.is_some_and(|at| at.elapsed() < MIN_REFRESH) {
                return if force || cache.keys.is_empty() {
                    Err(JwtError::Unreachable(
                        "the last attempt failed moments ago".into(),
                    ))
                } else {
                    Ok(())
                };
            }
        }
        match self.fetch_keys().await {
            Ok(keys) => {
                tracing::info!(keys = keys.len(), "fetched the issuer's signing keys");
                *self.cache.write().await = Cache {
                    keys,
                    fetched: Some(Instant::now()),
                    failed: None,
                };
                Ok(())
            }
            Err(e) => {
                let mut cache = self.cache.write().await;
                cache.failed = Some(Instant::now());
                if force || cache.keys.is_empty() {
                    return Err(e);
                }
                tracing::warn!("keeping the cached signing keys: {e}");
                Ok(())
            }
        }
    }

    async fn fetch_keys(&self) -> Result<HashMap<String, Key>, JwtError> {
        let set = self.get_json(&self.jwks_url().await).await?;
        let mut keys = HashMap::new();
        // One key at a time: a key set may hold keys (encryption ones, new
        // algorithms) this library cannot parse, which must not hide the rest.
        for raw in set
            .get("keys")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Ok(jwk) = serde_json::from_value::<Jwk>(raw.clone()) else {
                continue;
            };
            if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
                continue;
            }
            let Ok(key) = DecodingKey::from_jwk(&jwk) else {
                continue;
            };
            let alg = jwk.common.key_algorithm.and_then(alg_of);
            let kid = jwk.common.key_id.clone().unwrap_or_default();
            keys.insert(kid, Key { key, alg });
        }
        Ok(keys)
    }

    /// Fetches the keys once at start-up, so a wrong issuer shows in the
    /// log right away rather than at the first operator's request.
    pub async fn prefetch(&self) {
        match self.refresh(false).await {
            Ok(()) => {}
            Err(e) => {
                tracing::warn!(issuer = %self.cfg.issuer, "cannot fetch the issuer's keys yet: {e}")
            }
        }
    }

    pub async fn verify(&self, token: &str) -> Result<JwtIdentity, JwtError> {
        let header =
            decode_header(token).map_err(|e| JwtError::Invalid(format!("malformed token: {e}")))?;
        if matches!(
            header.alg,
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
        ) {
            return Err(JwtError::Invalid(
                "symmetric algorithms are not accepted".into(),
            ));
        }
        let kid = header.kid.clone().unwrap_or_default();
        self.refresh(false).await?;
        if !self.cache.read().await.keys.contains_key(&kid) {
            self.refresh(true).await?;
        }
        let cache = self.cache.read().await;
        let key = cache
            .keys
            .get(&kid)
            .ok_or_else(|| JwtError::Invalid("token signed with an unknown key".into()))?;
        if key.alg.is_some_and(|a| a != header.alg) {
            return Err(JwtError::Invalid(
                "token algorithm does not match its key".into(),
            ));
        }
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.cfg.issuer]);
        validation.set_required_spec_claims(&["exp", "iss"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECS;
        // Checked below: Keycloak puts the client in `azp`, not always `aud`.
        validation.validate_aud = false;
        let claims = decode::<Value>(token, &key.key, &validation)
            .map_err(|e| JwtError::Invalid(format!("token rejected: {e}")))?
            .claims;
        // Keycloak marks its tokens: an ID or refresh token from the same
        // issuer is not an access token and must not be accepted as one.
        if let Some(typ) = claims.get("typ").and_then(Value::as_str)
            && !typ.eq_ignore_ascii_case("bearer")
        {
            return Err(JwtError::Invalid(format!(
                "not an access token (typ {typ})"
            )));
        }
        if let Some(aud) = &self.cfg.audience
            && !(claim_words(claims.get("aud")).contains(&aud.as_str())
                || claims.get("azp").and_then(Value::as_str) == Some(aud))
        {
            return Err(JwtError::Invalid(
                "token is not meant for this audience".into(),
            ));
        }
        let subject = claims
            .get("sub")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let name = ["preferred_username", "client_id", "azp"]
            .iter()
            .find_map(|c| claims.get(*c).and_then(Value::as_str))
            .unwrap_or(&subject)
            .to_owned();
        Ok(JwtIdentity {
            subject,
            name,
            grants: grants_of(&self.cfg, &claims),
        })
    }
}

/// The words of a claim value: a string split at spaces (OAuth `scope`),
/// or an array's strings.
fn claim_words(value: Option<&Value>) -> Vec<&str> {
    match value {
        Some(Value::String(s)) => s.split(' ').collect(),
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    }
}

fn claim_at<'a>(claims: &'a Value, dotted: &str) -> Option<&'a Value> {
    dotted.split('.').try_fold(claims, |v, part| v.get(part))
}

/// The scopes the permission claim names; the admin realm role, when
/// configured and held, grants `system:*`.
pub fn grants_of(cfg: &JwtConfig, claims: &Value) -> Grants {
    let grants = Grants::from_names(claim_words(claim_at(claims, &cfg.permission_claim)));
    let admin = cfg
        .role
        .as_deref()
        .is_some_and(|role| claim_words(claim_at(claims, "realm_access.roles")).contains(&role));
    if admin {
        grants.with(Scope::System)
    } else {
        grants
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cfg(claim: &str, role: Option<&str>) -> JwtConfig {
        JwtConfig {
            issuer: "https://kc/realms/ops".into(),
            audience: None,
            jwks_url: None,
            permission_claim: claim.into(),
            role: role.map(str::to_owned),
        }
    }

    fn admin(c: &JwtConfig, claims: Value) -> bool {
        grants_of(c, &claims).allows(Scope::System)
    }

    #[test]
    fn permission_from_claim_or_role() {
        let c = cfg("permissions", Some("landlord-admin"));
        assert!(admin(&c, json!({"permissions": ["system:*"]})));
        assert!(admin(&c, json!({"permissions": "read system:*"})));
        assert!(admin(
            &c,
            json!({"realm_access": {"roles": ["x", "landlord-admin"]}})
        ));
        assert!(!admin(
            &c,
            json!({"permissions": ["system:read"], "realm_access": {"roles": ["x"]}})
        ));
        let c = cfg("resource_access.landlord.roles", None);
        assert!(admin(
            &c,
            json!({"resource_access": {"landlord": {"roles": ["system:*"]}}})
        ));
        assert!(!admin(
            &c,
            json!({"realm_access": {"roles": ["landlord-admin"]}})
        ));
    }

    #[test]
    fn scopes_from_the_permission_claim() {
        let c = cfg("scope", Some("landlord-admin"));
        let g = grants_of(&c, &json!({"scope": "openid tenants:create tenants:read"}));
        assert!(g.allows(Scope::TenantsCreate) && g.allows(Scope::TenantsRead));
        assert!(!g.allows(Scope::TenantsDelete) && !g.allows(Scope::RunsOperate));
    }
}
