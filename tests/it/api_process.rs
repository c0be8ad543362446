//! A real `landlord api` process for the tests that drive it from outside
//! (browser, fuzzer, CLI client), and an API token made the way an operator
//! makes one.

use crate::harness::TestEnv;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::Child;

pub struct ApiProcess {
    pub url: String,
    child: Child,
}

impl ApiProcess {
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

pub async fn spawn_api_process(env: &TestEnv) -> ApiProcess {
    // Bound and released: the API binds it a moment later. Port 0 cannot be
    // passed through, and the next test to grab a port gets a different one.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let child = env
        .landlord()
        .args(["api", "--bind", &format!("127.0.0.1:{port}")])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn landlord api");
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = client.get(format!("{url}/healthz")).send().await
            && r.status().is_success()
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "API at {url} never answered /healthz"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    ApiProcess { url, child }
}

/// `landlord tokens create`, which prints the token once on stdout.
pub async fn cli_token(env: &TestEnv, name: &str, permission: Option<&str>) -> String {
    let mut cmd = env.landlord();
    cmd.args(["tokens", "create", "--name", name]);
    if let Some(p) = permission {
        cmd.args(["--permission", p]);
    }
    let out = cmd.output().await.expect("run landlord tokens create");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "tokens create: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .split_whitespace()
        .find(|w| w.starts_with("ll_"))
        .unwrap_or_else(|| panic!("no token in {stdout:?}"))
        .to_owned()
}

/// A variable deploy/browser.sh exports (tests/run.sh evaluates its `env`).
pub fn browser_tool(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is unset: run the tests with tests/run.sh, which runs deploy/browser.sh")
    })
}
