//! Secret store: generated credentials encrypted with AES-256-GCM under the
//! key in `LANDLORD_SECRET_KEY`; callers keep only the reference.
//!
//! Each row names the key that encrypted it (`key_id`, a hash of the key).
//! To rotate: start every process with the new key as `LANDLORD_SECRET_KEY`
//! and the old one as `LANDLORD_SECRET_KEY_PREVIOUS` (both are read), run
//! `landlord secrets rotate-key` (re-encrypts what the old key holds), then
//! drop the old key.

use aes_gcm::aead::{Aead, KeyInit, OsRng};
use aes_gcm::{AeadCore, Aes256Gcm, Key, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use sqlx::PgExecutor;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("LANDLORD_SECRET_KEY must be 32 bytes, base64-encoded")]
    BadKey,
    #[error("LANDLORD_SECRET_KEY_PREVIOUS must be 32 bytes, base64-encoded")]
    BadPreviousKey,
    #[error("secret {0} not found")]
    NotFound(String),
    #[error("secret {0} cannot be decrypted with this key")]
    Decrypt(String),
    #[error(
        "secret {reference} is encrypted with key {key_id}, which is neither \
         LANDLORD_SECRET_KEY nor LANDLORD_SECRET_KEY_PREVIOUS"
    )]
    UnknownKey { reference: String, key_id: String },
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

#[derive(Clone)]
struct KeyRing {
    cipher: Aes256Gcm,
    id: String,
}

impl KeyRing {
    fn from_base64(key: &SecretString) -> Result<Self, SecretError> {
        let bytes = STANDARD
            .decode(key.expose_secret().trim())
            .map_err(|_| SecretError::BadKey)?;
        if bytes.len() != 32 {
            return Err(SecretError::BadKey);
        }
        let digest = Sha256::new_with_prefix(b"landlord/secret-key-id/v1")
            .chain_update(&bytes)
            .finalize();
        Ok(Self {
            cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&bytes)),
            id: digest.iter().take(8).map(|b| format!("{b:02x}")).collect(),
        })
    }

    fn open(&self, nonce: &[u8], ciphertext: &[u8]) -> Option<String> {
        let plain = self
            .cipher
            .decrypt(Nonce::from_slice(nonce), ciphertext)
            .ok()?;
        String::from_utf8(plain).ok()
    }
}

#[derive(Clone)]
pub struct SecretStore {
    current: KeyRing,
    previous: Option<KeyRing>,
}

/// What `rotate_key` did.
#[derive(Debug, PartialEq)]
pub struct Rotation {
    pub rotated: u64,
    /// References no known key opens (left as they are).
    pub unreadable: Vec<String>,
}

impl std::fmt::Debug for SecretStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretStore(..)")
    }
}

impl SecretStore {
    pub fn from_base64(key: &SecretString) -> Result<Self, SecretError> {
        Ok(Self {
            current: KeyRing::from_base64(key)?,
            previous: None,
        })
    }

    /// Also reads what `previous` encrypted (a key being rotated out).
    pub fn with_previous(mut self, previous: Option<&SecretString>) -> Result<Self, SecretError> {
        self.previous = previous
            .map(|k| KeyRing::from_base64(k).map_err(|_| SecretError::BadPreviousKey))
            .transpose()?;
        Ok(self)
    }

    /// The store the configuration names; `None` without a key.
    pub fn from_config(cfg: &crate::config::Config) -> Result<Option<Self>, SecretError> {
        cfg.secret_key
            .as_ref()
            .map(|k| Self::from_base64(k)?.with_previous(cfg.secret_key_previous.as_ref()))
            .transpose()
    }

    /// The current key's id, as rows record it.
    pub fn key_id(&self) -> &str {
        &self.current.id
    }

    fn seal(&self, reference: &str, value: &str) -> Result<(Vec<u8>, Vec<u8>), SecretError> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let ciphertext = self
            .current
            .cipher
            .encrypt(&nonce, value.as_bytes())
            .map_err(|_| SecretError::Decrypt(reference.to_owned()))?;
        Ok((nonce.to_vec(), ciphertext))
    }

    /// The plaintext of a row, with the key it names (a row from before key
    /// ids: whichever key opens it).
    fn open(
        &self,
        reference: &str,
        key_id: Option<&str>,
        nonce: &[u8],
        ciphertext: &[u8],
    ) -> Result<String, SecretError> {
        let rings = [Some(&self.current), self.previous.as_ref()];
        let mut candidates = rings
            .into_iter()
            .flatten()
            .filter(|r| key_id.is_none_or(|id| id == r.id))
            .peekable();
        if candidates.peek().is_none() {
            return Err(SecretError::UnknownKey {
                reference: reference.to_owned(),
                key_id: key_id.unwrap_or_default().to_owned(),
            });
        }
        candidates
            .find_map(|r| r.open(nonce, ciphertext))
            .ok_or_else(|| SecretError::Decrypt(reference.to_owned()))
    }

    /// Re-encrypts under the current key every secret another key holds.
    /// A row written meanwhile (its nonce changed) is left to its writer.
    pub async fn rotate_key(&self, pool: &sqlx::PgPool) -> Result<Rotation, SecretError> {
        let rows = sqlx::query!(
            "SELECT ref, key_id, nonce, ciphertext FROM secrets
             WHERE key_id IS DISTINCT FROM $1 ORDER BY ref",
            self.current.id
        )
        .fetch_all(pool)
        .await?;
        let mut done = Rotation {
            rotated: 0,
            unreadable: Vec::new(),
        };
        for row in rows {
            let Ok(plain) = self.open(
                &row.r#ref,
                row.key_id.as_deref(),
                &row.nonce,
                &row.ciphertext,
            ) else {
                done.unreadable.push(row.r#ref);
                continue;
            };
            let (nonce, ciphertext) = self.seal(&row.r#ref, &plain)?;
            let updated = sqlx::query!(
                "UPDATE secrets SET nonce = $2, ciphertext = $3, key_id = $4, updated_at = now()
                 WHERE ref = $1 AND nonce = $5",
                row.r#ref,
                nonce,
                ciphertext,
                self.current.id,
                row.nonce
            )
            .execute(pool)
            .await?;
            done.rotated += updated.rows_affected();
        }
        Ok(done)
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
        let (nonce, ciphertext) = self.seal(reference, value.expose_secret())?;
        sqlx::query!(
            "INSERT INTO secrets (ref, nonce, ciphertext, key_id) VALUES ($1, $2, $3, $4)
             ON CONFLICT (ref) DO UPDATE
                SET nonce = $2, ciphertext = $3, key_id = $4, updated_at = now()",
            reference,
            nonce,
            ciphertext,
            self.current.id
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
            "SELECT key_id, nonce, ciphertext FROM secrets WHERE ref = $1",
            reference
        )
        .fetch_optional(ex)
        .await?
        .ok_or_else(|| SecretError::NotFound(reference.to_owned()))?;
        self.open(
            reference,
            row.key_id.as_deref(),
            &row.nonce,
            &row.ciphertext,
        )
        .map(SecretString::from)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SecretString {
        SecretString::from(SecretStore::generate_key())
    }

    #[test]
    fn rows_open_with_the_key_they_name_current_or_previous() {
        let (a, b) = (key(), key());
        let old = SecretStore::from_base64(&a).unwrap();
        let (nonce, sealed) = old.seal("r", "hunter2").unwrap();
        let rotating = SecretStore::from_base64(&b)
            .unwrap()
            .with_previous(Some(&a))
            .unwrap();
        assert_ne!(old.key_id(), rotating.key_id());
        let open = |s: &SecretStore, id: Option<&str>| s.open("r", id, &nonce, &sealed);
        assert_eq!(open(&rotating, Some(old.key_id())).unwrap(), "hunter2");
        assert_eq!(
            open(&rotating, None).unwrap(),
            "hunter2",
            "a row from before key ids"
        );
        let only_new = SecretStore::from_base64(&b).unwrap();
        assert!(matches!(
            open(&only_new, Some(old.key_id())),
            Err(SecretError::UnknownKey { .. })
        ));
        assert!(matches!(
            open(&only_new, None),
            Err(SecretError::Decrypt(_))
        ));
        assert!(matches!(
            SecretStore::from_base64(&b)
                .unwrap()
                .with_previous(Some(&SecretString::from("x"))),
            Err(SecretError::BadPreviousKey)
        ));
    }
}
