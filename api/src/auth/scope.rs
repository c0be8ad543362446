//! Permissions ("scopes") a caller holds, and the one each endpoint needs.
//! A signup service gets `tenants:create` and `tenants:read`; support staff
//! `runs:operate`; only `system:*` holds every scope. Each handler takes a
//! [`Need`] naming its scope, and its OpenAPI `security` names the same
//! one (`tests/it/api/scopes.rs` calls every operation one scope short).

use super::Actor;
use crate::error::ApiError;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use std::marker::PhantomData;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Start provisioning (`POST /tenants`).
    TenantsCreate,
    /// Read tenants, runs and their steps.
    TenantsRead,
    /// Retry, roll back or cancel runs.
    RunsOperate,
    /// Deprovision tenants.
    TenantsDelete,
    /// Obtain a tenant's credentials.
    TenantsCredentials,
    /// Every scope.
    System,
}

impl Scope {
    pub const ALL: [Scope; 6] = [
        Self::TenantsCreate,
        Self::TenantsRead,
        Self::RunsOperate,
        Self::TenantsDelete,
        Self::TenantsCredentials,
        Self::System,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::TenantsCreate => "tenants:create",
            Self::TenantsRead => "tenants:read",
            Self::RunsOperate => "runs:operate",
            Self::TenantsDelete => "tenants:delete",
            Self::TenantsCredentials => "tenants:credentials",
            Self::System => "system:*",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// Every scope's name, for error messages.
    pub fn names() -> String {
        Self::ALL.map(Self::as_str).join(", ")
    }
}

/// What a caller may do: the scopes its token or JWT names (unknown names
/// count for nothing).
#[derive(Debug, Clone, Default)]
pub struct Grants(Vec<Scope>);

impl Grants {
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        Self(names.into_iter().filter_map(Scope::parse).collect())
    }

    pub fn with(mut self, scope: Scope) -> Self {
        self.0.push(scope);
        self
    }

    pub fn allows(&self, scope: Scope) -> bool {
        self.0.iter().any(|&s| s == scope || s == Scope::System)
    }
}

/// Names a scope at the type level, for [`Need`].
pub trait Required {
    const SCOPE: Scope;
}

macro_rules! required {
    ($($name:ident => $scope:ident),* $(,)?) => {$(
        pub struct $name;
        impl Required for $name {
            const SCOPE: Scope = Scope::$scope;
        }
    )*};
}

required! {
    TenantsCreate => TenantsCreate,
    TenantsRead => TenantsRead,
    RunsOperate => RunsOperate,
    TenantsDelete => TenantsDelete,
    TenantsCredentials => TenantsCredentials,
}

/// The authenticated caller, when it holds `S`'s scope; 403 naming the
/// scope otherwise. Put it first among a handler's arguments, so that a
/// caller without the scope learns nothing from body or path checks.
pub struct Need<S: Required>(pub Actor, pub PhantomData<S>);

impl<S: Required, St: Send + Sync> FromRequestParts<St> for Need<S> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &St) -> Result<Self, ApiError> {
        let actor = parts
            .extensions
            .get::<Actor>()
            .cloned()
            .ok_or(ApiError::Unauthorized("missing credentials"))?;
        if !actor.grants.allows(S::SCOPE) {
            tracing::info!(actor = %actor.name, kind = actor.kind, "refused: lacks {}", S::SCOPE.as_str());
            return Err(ApiError::lacks(S::SCOPE.as_str()));
        }
        Ok(Self(actor, PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_allows_every_scope_and_others_only_themselves() {
        let all = Grants::from_names(["system:*"]);
        let read = Grants::from_names(["tenants:read", "nonsense"]);
        for s in Scope::ALL {
            assert!(all.allows(s));
            assert_eq!(read.allows(s), s == Scope::TenantsRead, "{s:?}");
            assert_eq!(Scope::parse(s.as_str()), Some(s));
        }
        assert!(!Grants::default().allows(Scope::TenantsRead));
    }
}
