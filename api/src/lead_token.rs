//! The short-lived token a verified lead creates its tenant with (seed 004:
//! 15 minutes): an HS256 JWT naming the lead, signed with a key derived
//! from `LANDLORD_SECRET_KEY` (so every API process of a deployment
//! accepts it, and it is not the secret store's key itself).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

pub const LIFETIME: Duration = Duration::minutes(15);
const AUDIENCE: &str = "landlord-lead";

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    aud: String,
    exp: i64,
    iat: i64,
}

#[derive(Clone)]
pub struct LeadTokens {
    key: [u8; 32],
}

impl std::fmt::Debug for LeadTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LeadTokens(..)")
    }
}

#[derive(Debug, PartialEq)]
pub enum TokenCheck {
    /// Signed by us, unexpired, for this lead.
    Valid,
    /// Signed by us for another lead.
    Foreign,
    /// Expired, or not ours at all.
    Invalid,
}

impl LeadTokens {
    /// `None` when the secret key is not valid base64 (the engine's config
    /// check refuses such a key at start-up already).
    pub fn new(secret_key: &SecretString) -> Option<Self> {
        let raw = STANDARD.decode(secret_key.expose_secret().trim()).ok()?;
        let mut h = Sha256::new();
        h.update(b"landlord/lead-token/v1");
        h.update(&raw);
        Some(Self {
            key: h.finalize().into(),
        })
    }

    pub fn issue(&self, lead: Uuid) -> (String, DateTime<Utc>) {
        let now = Utc::now();
        let exp = now + LIFETIME;
        let claims = Claims {
            sub: lead.to_string(),
            aud: AUDIENCE.into(),
            exp: exp.timestamp(),
            iat: now.timestamp(),
        };
        let token = encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(&self.key),
        )
        .expect("HS256 signing of a small claim set");
        (token, exp)
    }

    pub fn check(&self, token: &str, lead: Uuid) -> TokenCheck {
        let mut v = Validation::new(Algorithm::HS256);
        v.set_audience(&[AUDIENCE]);
        v.leeway = 0;
        match decode::<Claims>(token, &DecodingKey::from_secret(&self.key), &v) {
            Ok(data) if data.claims.sub == lead.to_string() => TokenCheck::Valid,
            Ok(_) => TokenCheck::Foreign,
            Err(_) => TokenCheck::Invalid,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(key: &str) -> LeadTokens {
        LeadTokens::new(&SecretString::from(STANDARD.encode(key.repeat(32)))).unwrap()
    }

    #[test]
    fn bound_to_its_lead_and_its_key() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let t = tokens("k");
        let (token, exp) = t.issue(a);
        assert!(exp > Utc::now() + Duration::minutes(14));
        assert_eq!(t.check(&token, a), TokenCheck::Valid);
        assert_eq!(t.check(&token, b), TokenCheck::Foreign);
        assert_eq!(tokens("x").check(&token, a), TokenCheck::Invalid);
        assert_eq!(t.check("garbage", a), TokenCheck::Invalid);
    }
}
