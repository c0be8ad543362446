//! The OpenAPI document: paths and schemas come from the handlers'
//! `#[utoipa::path]` attributes as the router registers them, so the
//! document cannot list a route the server lacks or miss one it has.

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Landlord admin API",
        description = "Tenant provisioning. Every endpoint except /healthz, /readyz and \
            /openapi.json needs `Authorization: Bearer <token>` (an `ll_` API token or a JWT \
            from the configured issuer) holding the permission its `security` entry names \
            (`system:*` holds every one); 403 names a missing one. Errors are \
            `application/problem+json`."
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "tenants", description = "Provision, inspect and deprovision tenants"),
        (name = "runs", description = "Workflow runs and their step timelines"),
        (name = "signup", description = "Seed 004's signup: leads, their verification, their tenant (public; the leads' own tokens)"),
        (name = "health", description = "Liveness and readiness"),
    )
)]
pub struct ApiDoc;

/// The document as JSON. utoipa 5.5 writes link fields in snake case
/// (`operation_id`); the specification spells them `operationId`,
/// `operationRef` and `requestBody`, and link-following tools need that.
pub fn to_json(doc: &utoipa::openapi::OpenApi) -> serde_json::Value {
    let mut value = serde_json::to_value(doc).unwrap_or_default();
    if let Some(paths) = value.get_mut("paths").and_then(|p| p.as_object_mut()) {
        let links = paths
            .values_mut()
            .filter_map(|item| item.as_object_mut())
            .flat_map(|item| item.values_mut())
            .filter_map(|op| op.get_mut("responses")?.as_object_mut())
            .flat_map(|responses| responses.values_mut())
            .filter_map(|res| res.get_mut("links")?.as_object_mut())
            .flat_map(|links| links.values_mut())
            .filter_map(|link| link.as_object_mut());
        for link in links {
            for (from, to) in [
                ("operation_id", "operationId"),
                ("operation_ref", "operationRef"),
                ("request_body", "requestBody"),
            ] {
                if let Some(v) = link.remove(from) {
                    link.insert(to.to_owned(), v);
                }
            }
        }
    }
    value
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API token (`ll_…`, from `landlord tokens create`) or an OIDC access token",
                    ))
                    .build(),
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    fn doc() -> Value {
        crate::openapi_document()
    }

    #[test]
    fn operation_ids_are_unique_and_admin_operations_are_secured() {
        let doc = doc();
        let mut ids = std::collections::HashSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let id = op["operationId"].as_str().unwrap().to_owned();
                assert!(ids.insert(id), "duplicate operationId at {method} {path}");
                // Probes, and executors' callbacks (their one-time token
                // is the credential).
                let public = path.ends_with('z')
                    || path.starts_with("/callbacks/")
                    || path.starts_with("/leads");
                assert_eq!(op["security"].is_array(), !public, "{method} {path}");
                let responses = op["responses"].as_object().unwrap();
                if !public {
                    for code in ["401", "403", "503"] {
                        assert!(responses.contains_key(code), "{method} {path} lacks {code}");
                    }
                    let scopes = op["security"][0]["bearer"].as_array().unwrap();
                    assert_eq!(scopes.len(), 1, "{method} {path} names one scope");
                    let scope = scopes[0].as_str().unwrap();
                    assert!(
                        crate::auth::scope::Scope::parse(scope).is_some(),
                        "{method} {path}: unknown scope {scope}"
                    );
                }
            }
        }
        assert_eq!(ids.len(), 19);
        let links = &doc["paths"]["/tenants"]["post"]["responses"]["202"]["links"];
        assert_eq!(links["GetRun"]["operationId"], "getRun");
        assert!(links["GetRun"].get("operation_id").is_none());
    }

    #[test]
    fn cursor_parameters_promise_what_the_decoder_accepts() {
        let doc = doc();
        for path in ["/tenants", "/runs"] {
            let params = doc["paths"][path]["get"]["parameters"].as_array().unwrap();
            let cursor = params.iter().find(|p| p["name"] == "cursor").unwrap();
            assert_eq!(cursor["schema"]["pattern"], crate::cursor::PATTERN);
        }
    }
}
