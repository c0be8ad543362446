//! Secret store: generated credentials encrypted with AES-256-GCM under the
//! key in `LANDLORD_SECRET_KEY`; callers keep only the reference.
//!
//! The trait is the seam for Vault/OpenBao; the table is the default.

use aes_gcm::aead::{Aead, KeyInit, OsRng};
use aes_gcm::{AeadCore, Aes256Gcm, Key, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use secrecy::{ExposeSecret, SecretString};
use sqlx::PgExecutor;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("LANDLORD_SECRET_KEY must be 32 bytes, base64-encoded")]
    BadKey,
    #[error("secret {0} not found")]
    NotFound(String),
    #[error("secret {0} cannot be decrypted with this key")]
    Decrypt(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

#[derive(Clone)]
pub struct SecretStore {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for SecretStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretStore(..)")
    }
}

impl SecretStore {
    pub fn from_base64(key: &SecretString) -> Result<Self, SecretError> {
        let bytes = STANDARD
            .decode(key.expose_secret().trim())
            .map_err(|_| SecretError::BadKey)?;
        if bytes.len() != 32 {
            return Err(SecretError::BadKey);
        }
        Ok(Self {
            cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&bytes)),
        })
    }

    /// A fresh random key, base64-encoded, for `landlord dev` and tests.
    pub fn generate_key() -> String {
        STANDARD.encode(Aes256Gcm::generate_key(OsRng))
    }

    pub async fn put(
        &self,
        ex: impl PgExecutor<'_>,
        reference: &str,
        value: &SecretString,
    ) -> Result<(), SecretError> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let ciphertext = self
            .cipher
            .encrypt(&nonce, value.expose_secret().as_bytes())
            .map_err(|_| SecretError::Decrypt(reference.to_owned()))?;
        sqlx::query!(
            "INSERT INTO secrets (ref, nonce, ciphertext) VALUES ($1, $2, $3)
             ON CONFLICT (ref) DO UPDATE SET nonce = $2, ciphertext = $3, updated_at = now()",
            reference,
            nonce.as_slice(),
            ciphertext
        )
        .execute(ex)
        .await?;
        Ok(())
    }

    pub async fn get(
        &self,
        ex: impl PgExecutor<'_>,
        reference: &str,
    ) -> Result<SecretString, SecretError> {
        let row = sqlx::query!(
            "SELECT nonce, ciphertext FROM secrets WHERE ref = $1",
            reference
        )
        .fetch_optional(ex)
        .await?;
        let (nonce, ciphertext) = row
            .map(|r| (r.nonce, r.ciphertext))
            .ok_or_else(|| SecretError::NotFound(reference.to_owned()))?;
        let plain = self
            .cipher
            .decrypt(Nonce::from_slice(&nonce), ciphertext.as_slice())
            .map_err(|_| SecretError::Decrypt(reference.to_owned()))?;
        String::from_utf8(plain)
            .map(SecretString::from)
            .map_err(|_| SecretError::Decrypt(reference.to_owned()))
    }

    pub async fn delete(ex: impl PgExecutor<'_>, reference: &str) -> Result<(), SecretError> {
        sqlx::query!("DELETE FROM secrets WHERE ref = $1", reference)
            .execute(ex)
            .await?;
        Ok(())
    }
}

/// Where the initial password of a realm's admin user is kept.
pub fn admin_secret_ref(realm: &str) -> String {
    format!("keycloak/{realm}/admin")
}

/// A random password of `len` alphanumeric characters: safe inside a quoted
/// SQL literal and in URLs without escaping.
pub fn generate_password(len: usize) -> SecretString {
    use rand::Rng;
    use rand::distr::Alphanumeric;
    let s: String = rand::rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect();
    SecretString::from(s)
}
