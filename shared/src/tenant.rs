//! Tenant keys and the resource names derived from them.
//!
//! Everything downstream takes a [`TenantKey`]; a raw string never reaches a
//! name builder or SQL.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Names a tenant may not take: they collide with Postgres' own databases or
/// with names operators expect to mean something else.
pub const RESERVED: &[&str] = &[
    "postgres",
    "template0",
    "template1",
    "admin",
    "master",
    "system",
    "root",
    "public",
    "default",
    "landlord",
    "keycloak",
    "internal",
    "test",
    "www",
    "api",
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TenantKeyError {
    #[error("tenant name must be 3 to 30 characters, got {0}")]
    Length(usize),
    #[error("tenant name may contain only lowercase letters a-z and digits 0-9")]
    Charset,
    #[error("tenant name '{0}' is reserved")]
    Reserved(String),
}

/// A validated tenant key: `[a-z0-9]{3,30}`, not reserved.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TenantKey(String);

impl TenantKey {
    pub fn parse(raw: &str) -> Result<Self, TenantKeyError> {
        let len = raw.chars().count();
        if !(3..=30).contains(&len) {
            return Err(TenantKeyError::Length(len));
        }
        if !raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        {
            return Err(TenantKeyError::Charset);
        }
        if RESERVED.contains(&raw) {
            return Err(TenantKeyError::Reserved(raw.to_owned()));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TenantKey {
    type Error = TenantKeyError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<TenantKey> for String {
    fn from(value: TenantKey) -> Self {
        value.0
    }
}

impl fmt::Display for TenantKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("name prefix must be 1 to 20 characters of a-z, 0-9, starting with a letter")]
pub struct PrefixError;

/// The resource name prefix (`freeflow` by default). Kept to the same charset
/// as tenant keys so that every derived name is a plain SQL identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamePrefix(String);

impl NamePrefix {
    pub fn parse(raw: &str) -> Result<Self, PrefixError> {
        let ok = (1..=20).contains(&raw.len())
            && raw.as_bytes()[0].is_ascii_lowercase()
            && raw
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        ok.then(|| Self(raw.to_owned())).ok_or(PrefixError)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A Postgres identifier (database or role) built only from a prefix and a
/// tenant key, so it matches `[a-z][a-z0-9_]*` and is at most 63 bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PgIdent(String);

impl PgIdent {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The identifier double-quoted for SQL. Quoting is belt and braces: the
    /// charset already excludes quotes.
    pub fn quoted(&self) -> String {
        quote_ident(&self.0)
    }
}

impl fmt::Display for PgIdent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Resource names for one tenant under one prefix (seed 000 and 001).
#[derive(Debug, Clone)]
pub struct TenantNames {
    pub key: TenantKey,
    prefix: NamePrefix,
    /// Seed 003's `tenant_{hash16}` for the Postgres names.
    hashed: bool,
}

impl TenantNames {
    pub fn new(prefix: &NamePrefix, key: &TenantKey) -> Self {
        Self {
            key: key.clone(),
            prefix: prefix.clone(),
            hashed: false,
        }
    }

    /// The same names under the run's plan's naming scheme.
    pub fn with_naming(mut self, naming: crate::catalogue::Naming) -> Self {
        self.hashed = naming == crate::catalogue::Naming::Hashed;
        self
    }

    /// 16 hex characters of the key's SHA-256 (seed 003's `stable_hex_16`).
    pub fn hash16(&self) -> String {
        use sha2::{Digest, Sha256};
        Sha256::digest(self.key.0.as_bytes())
            .iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// `freeflow_{tenant}`: the tenant's Postgres database; with hashed
    /// naming `tenant_{hash16}`.
    pub fn postgres_db(&self) -> PgIdent {
        if self.hashed {
            return PgIdent(format!("tenant_{}", self.hash16()));
        }
        PgIdent(format!("{}_{}", self.prefix.0, self.key.0))
    }

    /// The tenant's login role; the same name as its database.
    pub fn postgres_role(&self) -> PgIdent {
        self.postgres_db()
    }

    /// `tenant_{key}`: the tenant's schema in the pooled database (seed
    /// 002); with hashed naming `tenant_{hash16}`.
    pub fn postgres_schema(&self) -> PgIdent {
        if self.hashed {
            return PgIdent(format!("tenant_{}", self.hash16()));
        }
        PgIdent(format!("tenant_{}", self.key.0))
    }

    /// `{prefix}_pool`: the database pooled tenants' schemas live in.
    pub fn postgres_pool(&self) -> PgIdent {
        PgIdent(format!("{}_pool", self.prefix.0))
    }

    /// `{prefix}_pool_owner`: the marked role that owns the pooled database,
    /// so a pool whose comment a crash kept from being written is still
    /// known to be ours.
    pub fn postgres_pool_owner(&self) -> PgIdent {
        PgIdent(format!("{}_pool_owner", self.prefix.0))
    }

    /// `freeflow-{tenant}`: the Keycloak realm.
    pub fn realm(&self) -> String {
        format!("{}-{}", self.prefix.0, self.key.0)
    }

    /// `freeflow_shared`: the deployment's one realm for tenants in
    /// organization mode. The `_` keeps it apart from every tenant realm
    /// (`{prefix}-{tenant}`).
    pub fn shared_realm(&self) -> String {
        format!("{}_shared", self.prefix.0)
    }

    /// `freeflow_{tenant}`: the Mongo database.
    pub fn mongo_db(&self) -> String {
        format!("{}_{}", self.prefix.0, self.key.0)
    }

    /// `freeflow_{tenant}_vectors`: the Qdrant collection.
    pub fn qdrant_collection(&self) -> String {
        format!("{}_{}_vectors", self.prefix.0, self.key.0)
    }

    /// `freeflow-{tenant}-files`: the S3 bucket.
    pub fn bucket(&self) -> String {
        format!("{}-{}-files", self.prefix.0, self.key.0)
    }
}

/// Identifiers Landlord makes or needs besides the tenant names.
impl PgIdent {
    /// A name Landlord makes from checked parts: `None` unless it is
    /// `[a-z][a-z0-9_]*` of at most 63 bytes.
    pub fn generated(raw: &str) -> Option<Self> {
        let b = raw.as_bytes();
        let ok = (1..=63).contains(&b.len())
            && b[0].is_ascii_lowercase()
            && b.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_');
        ok.then(|| Self(raw.to_owned()))
    }

    /// The `public` schema.
    pub fn public() -> Self {
        Self("public".to_owned())
    }
}

/// Quotes an SQL identifier the way Postgres' `quote_ident` does.
pub fn quote_ident(raw: &str) -> String {
    format!("\"{}\"", raw.replace('"', "\"\""))
}

/// Quotes an SQL string literal the way Postgres' `quote_literal` does (with
/// `standard_conforming_strings` on, the default since 9.1).
pub fn quote_literal(raw: &str) -> String {
    format!("'{}'", raw.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_names() {
        let key = TenantKey::parse("acme42").unwrap();
        let names = TenantNames::new(&NamePrefix::parse("freeflow").unwrap(), &key);
        assert_eq!(names.postgres_db().as_str(), "freeflow_acme42");
        assert_eq!(names.realm(), "freeflow-acme42");
        assert_eq!(names.qdrant_collection(), "freeflow_acme42_vectors");
        assert_eq!(names.bucket(), "freeflow-acme42-files");
    }

    #[test]
    fn refuses_bad_keys() {
        assert_eq!(TenantKey::parse("ab"), Err(TenantKeyError::Length(2)));
        assert_eq!(TenantKey::parse("Acme"), Err(TenantKeyError::Charset));
        assert_eq!(TenantKey::parse("ac_me"), Err(TenantKeyError::Charset));
        assert!(matches!(
            TenantKey::parse("template1"),
            Err(TenantKeyError::Reserved(_))
        ));
        assert!(matches!(
            TenantKey::parse("postgres"),
            Err(TenantKeyError::Reserved(_))
        ));
    }

    #[test]
    fn quoting() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        fn is_ident(s: &str) -> bool {
            let b = s.as_bytes();
            !b.is_empty()
                && b.len() <= 63
                && b[0].is_ascii_lowercase()
                && b.iter()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_')
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            /// Whatever the input, a key is accepted only if it is
            /// `[a-z0-9]{3,30}` and not reserved.
            #[test]
            fn parse_accepts_exactly_the_grammar(raw in any::<String>()) {
                let expected = (3..=30).contains(&raw.len())
                    && raw.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
                    && !RESERVED.contains(&raw.as_str());
                prop_assert_eq!(TenantKey::parse(&raw).is_ok(), expected);
            }

            /// Hostile-looking strings near the grammar: quotes, unicode,
            /// SQL and path fragments.
            #[test]
            fn hostile_strings_are_refused(
                head in "[a-z0-9]{0,10}",
                evil in prop::sample::select(vec!["'", "\"", ";", "--", "/", "..", " ", "é", "\u{0}", "A", "_", "-", "DROP"]),
                tail in "[a-z0-9]{0,10}",
            ) {
                let raw = format!("{head}{evil}{tail}");
                prop_assert!(TenantKey::parse(&raw).is_err());
            }

            /// Every accepted key yields names that are plain identifiers.
            #[test]
            fn names_of_valid_keys_are_plain(raw in "[a-z0-9]{3,30}", prefix in "[a-z][a-z0-9]{0,19}") {
                prop_assume!(!RESERVED.contains(&raw.as_str()));
                let key = TenantKey::parse(&raw).unwrap();
                let names = TenantNames::new(&NamePrefix::parse(&prefix).unwrap(), &key);
                prop_assert!(is_ident(names.postgres_db().as_str()));
                prop_assert!(is_ident(names.postgres_schema().as_str()));
                let hashed = names.clone().with_naming(crate::catalogue::Naming::Hashed);
                prop_assert!(is_ident(hashed.postgres_db().as_str()));
                prop_assert_eq!(hashed.postgres_db().as_str().len(), "tenant_".len() + 16);
                prop_assert!(is_ident(names.postgres_pool_owner().as_str()));
                prop_assert!(is_ident(&names.qdrant_collection()));
            }
        }
    }
}
