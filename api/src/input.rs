//! The create-tenant request and its validation: the body is parsed into
//! the engine's typed request (`TenantKey`, `ProvisionParams`) or every
//! invalid field is named; nothing is written before that.

use crate::error::{ApiError, FieldError};
use landlord_shared::model::{AdminContact, ProvisionParams};
use landlord_shared::request::ProvisionRequest;
use landlord_shared::tenant::TenantKey;
use serde::Deserialize;
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    /// Tenant key; some names are reserved (`admin`, `postgres`, `system`, ...).
    #[schema(
        pattern = "^[a-z0-9]{3,30}$",
        min_length = 3,
        max_length = 30,
        example = "acme"
    )]
    pub name: String,
    #[schema(
        pattern = "^[A-Za-z0-9_.-]{1,64}$",
        min_length = 1,
        max_length = 64,
        example = "enterprise"
    )]
    pub plan: Option<String>,
    /// Lowercase host names: redirect URIs and web origins of the tenant's
    /// Keycloak client.
    #[schema(max_items = 20, example = json!(["acme.example.com"]))]
    pub domains: Option<Vec<Domain>>,
    pub admin: Option<AdminInput>,
}

/// A host name, at most 253 characters. A newtype only to carry its
/// constraints into the OpenAPI document.
#[derive(Debug, Deserialize)]
#[serde(transparent)]
pub struct Domain(pub String);

impl utoipa::PartialSchema for Domain {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(
                r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$",
            ))
            .max_length(Some(253))
            .into()
    }
}

impl ToSchema for Domain {}

/// The tenant's first administrator, created in its Keycloak realm.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AdminInput {
    #[schema(
        pattern = r"^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,180}\.[A-Za-z]{2,24}$",
        max_length = 254,
        example = "admin@acme.com"
    )]
    pub email: String,
    /// 1 to 100 characters, no control characters, not blank.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$",
        example = "Ada"
    )]
    pub first_name: String,
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$",
        example = "Lovelace"
    )]
    pub last_name: String,
}

impl CreateTenant {
    /// The engine's rules, shared with the CLI (`landlord_shared::request`).
    pub fn parse(self) -> Result<(TenantKey, ProvisionParams), ApiError> {
        let request = ProvisionRequest {
            name: self.name,
            plan: self.plan,
            domains: self
                .domains
                .unwrap_or_default()
                .into_iter()
                .map(|d| d.0)
                .collect(),
            admin: self.admin.map(|a| AdminContact {
                email: a.email,
                first_name: a.first_name,
                last_name: a.last_name,
            }),
        };
        request.parse().map_err(|errors| {
            ApiError::Validation(
                errors
                    .into_iter()
                    .map(|e| FieldError::new(e.field, e.message))
                    .collect(),
            )
        })
    }
}

/// `Idempotency-Key`: 1 to 255 printable ASCII characters.
pub fn idempotency_key(raw: Option<&axum::http::HeaderValue>) -> Result<Option<String>, ApiError> {
    let Some(raw) = raw else { return Ok(None) };
    let bytes = raw.as_bytes();
    if (1..=255).contains(&bytes.len()) && bytes.iter().all(|c| (0x20..0x7f).contains(c)) {
        Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
    } else {
        Err(ApiError::BadRequest(
            "Idempotency-Key must be 1 to 255 printable ASCII characters".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(v: serde_json::Value) -> Result<(TenantKey, ProvisionParams), ApiError> {
        serde_json::from_value::<CreateTenant>(v).unwrap().parse()
    }

    fn fields(r: Result<(TenantKey, ProvisionParams), ApiError>) -> Vec<String> {
        match r {
            Err(ApiError::Validation(e)) => e.into_iter().map(|f| f.field).collect(),
            other => panic!("expected validation error, got {other:?}"),
        }
    }

    #[test]
    fn valid_body() {
        let (key, params) = body(serde_json::json!({
            "name": "acme", "plan": "pro", "domains": ["acme.com"],
            "admin": {"email": "a.b+c@acme.co.uk", "firstName": "Zoë", "lastName": "O'Neil"}
        }))
        .unwrap();
        assert_eq!(key.as_str(), "acme");
        assert_eq!(params.domains, ["acme.com"]);
    }

    #[test]
    fn every_bad_field_is_named() {
        let f = fields(body(serde_json::json!({
            "name": "Robert'); DROP TABLE tenants;--", "plan": "a b",
            "domains": ["ok.com", "../etc/passwd", "-x.com"],
            "admin": {"email": "nope", "firstName": "", "lastName": "a\u{0}b"}
        })));
        assert_eq!(
            f,
            [
                "name",
                "plan",
                "domains[1]",
                "domains[2]",
                "admin.email",
                "admin.firstName",
                "admin.lastName"
            ]
        );
        assert_eq!(fields(body(serde_json::json!({"name": "admin"}))), ["name"]);
        assert_eq!(
            fields(body(serde_json::json!({"name": "x".repeat(10_000)}))),
            ["name"]
        );
        assert_eq!(fields(body(serde_json::json!({"name": "ünï"}))), ["name"]);
    }

    #[test]
    fn idempotency_keys() {
        use axum::http::HeaderValue;
        assert_eq!(idempotency_key(None).unwrap(), None);
        let ok = HeaderValue::from_static("abc-123");
        assert_eq!(
            idempotency_key(Some(&ok)).unwrap().as_deref(),
            Some("abc-123")
        );
        let long = HeaderValue::from_str(&"k".repeat(256)).unwrap();
        assert!(idempotency_key(Some(&long)).is_err());
    }
}
