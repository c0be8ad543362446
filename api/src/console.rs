//! The support console: one static page, compiled into the binary so a
//! deployment has nothing else to ship. The page itself is public; every
//! request it makes carries the token the user signs in with.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use base64::Engine as _;
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

const PAGE: &str = include_str!("../console/index.html");

/// Only the page's own script may run (by its hash, not 'unsafe-inline'),
/// and it may talk to this origin only: should a tenant string ever reach
/// the page as markup, it can neither run nor send anything elsewhere.
static CSP: LazyLock<String> = LazyLock::new(|| {
    format!(
        "default-src 'none'; script-src 'sha256-{}'; style-src 'unsafe-inline'; \
         connect-src 'self'; img-src 'self' data:; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'",
        script_hash(PAGE)
    )
});

fn script_hash(page: &str) -> String {
    let start = page.find("<script>").map_or(0, |i| i + "<script>".len());
    let end = page[start..].find("</script>").map_or(start, |i| start + i);
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&page[start..end]))
}

pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route("/console", get(page))
}

async fn page() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CSP.as_str()),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        PAGE,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_has_one_inline_script_and_the_policy_names_its_hash() {
        assert_eq!(PAGE.matches("<script").count(), 1, "one script element");
        assert!(!PAGE.contains("<script src"), "no outside scripts");
        let hash = script_hash(PAGE);
        assert_eq!(hash.len(), 44, "base64 of a SHA-256");
        assert!(CSP.contains(&format!("'sha256-{hash}'")));
        assert!(!CSP.contains("script-src 'unsafe-inline'"));
    }
}
