//! The support console end to end in headless Chromium
//! (tests/console/e2e.py): sign in with a token, open the failed tenant,
//! click Retry, watch it become active.

use crate::harness::{TestEnv, create_token, spawn_api};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

/// A variable deploy/browser.sh exports (tests/run.sh evaluates its `env`).
pub fn browser_tool(var: &str) -> String {
    std::env::var(var)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| {
            panic!("{var} is unset: run the tests with tests/run.sh, which runs deploy/browser.sh")
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_retry_turns_a_failed_tenant_active() {
    let env = TestEnv::new(&[("LANDLORD_FAULTS", "record:permanent")]).await;
    // A few healthy tenants first, so the failed one must be found in a
    // list rather than being the only row.
    let healthy = env.spawn_worker_with(&[("LANDLORD_FAULTS", "")]).await;
    for name in ["acmecorp", "globex"] {
        let run = env.start(name).await.run;
        assert_eq!(env.wait_finished(run.id, WAIT).await.status, "completed");
    }
    healthy.shutdown().await;
    let faulty = env.spawn_worker().await;
    let run = env.start("initech").await.run;
    assert_eq!(env.wait_finished(run.id, WAIT).await.status, "failed");
    faulty.shutdown().await;
    assert_eq!(
        env.tenant_status("initech").await.as_deref(),
        Some("suspended")
    );
    // The fault is gone for the retry, as after a fixed outage.
    let worker = env.spawn_worker_with(&[("LANDLORD_FAULTS", "")]).await;
    let api = spawn_api(&env).await;
    let token = create_token(&env, "system:*").await;

    // LANDLORD_CONSOLE_SCREENSHOT=docs/console.png refreshes the README's
    // picture; otherwise the screenshot only proves it can be taken.
    let shots = tempfile::tempdir().unwrap();
    let shot = std::env::var("LANDLORD_CONSOLE_SCREENSHOT")
        .map(|p| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(p))
        .unwrap_or_else(|_| shots.path().join("console.png"));
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/console/e2e.py");
    let out = tokio::time::timeout(
        Duration::from_secs(180),
        tokio::process::Command::new(browser_tool("LANDLORD_BROWSER_PYTHON"))
            .arg(script)
            .env("CONSOLE_URL", &api.url)
            .env("CONSOLE_TOKEN", &token)
            .env("CONSOLE_TENANT", "initech")
            .env("CONSOLE_SCREENSHOT", &shot)
            .env("LANDLORD_CHROMIUM", browser_tool("LANDLORD_CHROMIUM"))
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("browser test finished in time")
    .expect("run the browser test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "e2e.py failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains(r#""step": "active after retry""#),
        "{stdout}"
    );
    assert!(
        stdout.contains(r#""failed_step": "record""#),
        "the timeline showed the failed step: {stdout}"
    );
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(png.starts_with(b"\x89PNG"), "screenshot is a PNG");

    // What the page showed is what the database says.
    assert_eq!(
        env.tenant_status("initech").await.as_deref(),
        Some("active")
    );
    let run = env.wait_finished(run.id, WAIT).await;
    assert_eq!(run.status, "completed");
    worker.shutdown().await;
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_page_is_public_and_locked_down() {
    let env = TestEnv::new(&[]).await;
    let api = spawn_api(&env).await;
    let client = reqwest::Client::new();
    let page = client
        .get(format!("{}/console", api.url))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("connect-src 'self'"), "{csp}");
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let body = page.text().await.unwrap();
    assert!(body.contains("Landlord console"));
    assert!(
        !body.contains("http://") && !body.contains("https://"),
        "no outside resources"
    );
    // The data behind it is not public.
    let tenants = client
        .get(format!("{}/tenants", api.url))
        .send()
        .await
        .unwrap();
    assert_eq!(tenants.status(), 401);
    api.stop().await;
}
