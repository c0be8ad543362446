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
            from the configured issuer) with the `system:*` permission. Errors are \
            `application/problem+json`."
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "tenants", description = "Provision, inspect and deprovision tenants"),
        (name = "runs", description = "Workflow runs and their step timelines"),
        (name = "health", description = "Liveness and readiness"),
    )
)]
pub struct ApiDoc;

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
