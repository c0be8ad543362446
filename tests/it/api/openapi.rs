//! The OpenAPI document.

use super::Api;
use crate::harness::TestEnv;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document_describes_the_api() {
    let env = TestEnv::new(&[]).await;
    let api = Api::start(&env).await;
    let doc = api.as_token(None).get("/openapi.json").await.body;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for (path, method) in [
        ("/tenants", "post"),
        ("/tenants", "get"),
        ("/tenants/{id}", "get"),
        ("/tenants/{id}", "delete"),
        ("/tenants/{id}/runs", "get"),
        ("/tenants/{id}/retry", "post"),
        ("/tenants/{id}/rollback", "post"),
        ("/runs", "get"),
        ("/runs/{id}", "get"),
        ("/runs/{id}/cancel", "post"),
        ("/healthz", "get"),
        ("/readyz", "get"),
    ] {
        let op = &doc["paths"][path][method];
        assert!(op.is_object(), "{method} {path} missing");
        let secured = op["security"].is_array();
        assert_eq!(secured, !path.ends_with('z'), "{method} {path}");
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert_eq!(
        doc["components"]["schemas"]["CreateTenant"]["properties"]["name"]["pattern"],
        "^[a-z0-9]{3,30}$"
    );
    assert!(doc["paths"]["/tenants"]["post"]["responses"]["422"].is_object());
}
