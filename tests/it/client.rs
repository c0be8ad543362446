//! The support commands (`landlord tenants|retry|rollback|cancel|
//! deprovision`) against a real API process and in-process workers: human
//! and --json output, and the exit codes scripts branch on.

use crate::harness::{ApiProcess, TestEnv, create_token, spawn_api};
use serde_json::Value;
use std::process::Output;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

async fn support(env: &TestEnv, api: &ApiProcess, token: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = env.landlord();
    cmd.env("LANDLORD_API_URL", &api.url).args(args);
    // The client needs no database: prove it by hiding it.
    cmd.env_remove("MASTER_DATABASE_URL");
    if let Some(t) = token {
        cmd.env("LANDLORD_API_TOKEN", t);
    }
    cmd.output().await.expect("run landlord")
}

/// A support command in an 80-column pseudo-terminal
/// (tests/tty/run_in_pty.py): what it drew there.
async fn support_in_pty(env: &TestEnv, api: &ApiProcess, token: &str, args: &[&str]) -> Output {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tty/run_in_pty.py");
    let mut cmd = tokio::process::Command::new("python3");
    cmd.env_clear().envs(&env.vars);
    cmd.env_remove("MASTER_DATABASE_URL");
    if let Ok(path) = std::env::var("PATH") {
        cmd.env("PATH", path);
    }
    cmd.env("LANDLORD_API_URL", &api.url)
        .env("LANDLORD_API_TOKEN", token)
        .args([script, "80", "24", "--", env!("CARGO_BIN_EXE_landlord")])
        .args(args);
    cmd.output().await.expect("run landlord in a pty")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(out)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn support_commands_through_the_api() {
    let env = TestEnv::new(&[("LANDLORD_FAULTS", "record:permanent")]).await;
    let healthy = env.spawn_worker_with(&[("LANDLORD_FAULTS", "")]).await;
    let run = env.start("alpha").await.run;
    assert_eq!(env.wait_finished(run.id, WAIT).await.status, "completed");
    healthy.shutdown().await;
    let faulty = env.spawn_worker().await;
    for name in ["bravo", "charlie"] {
        let run = env.start(name).await.run;
        assert_eq!(env.wait_finished(run.id, WAIT).await.status, "failed");
    }
    faulty.shutdown().await;
    // Fails before `register`: a run but no tenants row.
    let early = env
        .spawn_worker_with(&[("LANDLORD_FAULTS", "validate:permanent")])
        .await;
    let run = env.start("echo").await.run;
    assert_eq!(env.wait_finished(run.id, WAIT).await.status, "failed");
    early.shutdown().await;
    // No worker: this run stays queued, so it can be cancelled.
    let delta = env.start("delta").await.run;

    let api = spawn_api(&env).await;
    let token = create_token(&env, "system:*").await;
    let t = Some(token.as_str());

    // Auth: no token, a wrong token, a token without the permission.
    let out = support(&env, &api, None, &["tenants", "list"]).await;
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(text(&out).contains("LANDLORD_API_TOKEN"), "{}", text(&out));
    let out = support(&env, &api, Some("ll_wrong"), &["tenants", "list"]).await;
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(text(&out).starts_with("error: "), "{}", text(&out));
    let weak = create_token(&env, "tenants:delete").await;
    let out = support(&env, &api, Some(&weak), &["tenants", "list"]).await;
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));

    // List: failed tenants first, a status summary last.
    let out = support(&env, &api, t, &["tenants", "list"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let listing = text(&out);
    let lines: Vec<&str> = listing.lines().collect();
    assert!(lines[0].starts_with("TENANT"), "{listing}");
    assert!(
        lines[1].starts_with("charlie") || lines[1].starts_with("bravo"),
        "failed first: {listing}"
    );
    assert!(lines[1].contains("failed at record"), "{listing}");
    assert!(listing.contains("3 tenant(s)"), "{listing}");
    let out = support(&env, &api, t, &["tenants", "list", "--json"]).await;
    assert_eq!(json(&out)["items"].as_array().unwrap().len(), 3);
    let out = support(
        &env,
        &api,
        t,
        &["tenants", "list", "--status", "active", "--json"],
    )
    .await;
    let items = json(&out)["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["name"], "alpha");
    let out = support(&env, &api, t, &["tenants", "list", "--status", "failed"]).await;
    let failed = text(&out);
    assert!(
        failed.contains("bravo") && failed.contains("charlie"),
        "{failed}"
    );
    assert!(!failed.contains("alpha"), "{failed}");
    assert!(failed.contains("3 failed run(s)"), "{failed}");

    // Show: the timeline with the failed step and its error.
    let out = support(&env, &api, t, &["tenants", "show", "bravo"]).await;
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(0), "{shown}");
    assert!(shown.contains("tenant 'bravo' is suspended"), "{shown}");
    assert!(
        shown
            .lines()
            .any(|l| l.contains("✘") && l.contains("record") && l.contains("failed")),
        "{shown}"
    );
    assert!(shown.contains("log (last"), "{shown}");
    let out = support(&env, &api, t, &["tenants", "show", "bravo", "--json"]).await;
    let v = json(&out);
    assert_eq!(v["tenant"]["status"], "suspended");
    assert_eq!(v["latest_run"]["status"], "failed");
    assert_eq!(v["latest_run"]["failed_step"], "record");
    assert!(v["latest_run"]["steps"].as_array().unwrap().len() >= 5);
    let out = support(&env, &api, t, &["tenants", "show", "echo"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("tenant 'echo' is not registered"),
        "{}",
        text(&out)
    );
    let out = support(&env, &api, t, &["tenants", "show", "nosuchtenant"]).await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));

    // Cancel: a queued run; a run id that does not exist.
    let out = support(&env, &api, t, &["cancel", &delta.id.to_string(), "--json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(json(&out)["id"], delta.id.to_string());
    let out = support(
        &env,
        &api,
        t,
        &["cancel", &uuid::Uuid::new_v4().to_string()],
    )
    .await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));

    // Conflicts: a completed run cannot be retried; an active tenant is not
    // deprovisioned without --force.
    let out = support(&env, &api, t, &["retry", "alpha"]).await;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(text(&out).starts_with("error: "), "{}", text(&out));
    let out = support(&env, &api, t, &["deprovision", "alpha"]).await;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    // Bad input: the server's 4xx validation.
    let out = support(&env, &api, t, &["retry", "Not Valid!"]).await;
    assert!(matches!(out.status.code(), Some(2 | 3)), "{}", text(&out));

    // With the fault gone, retry resumes at the failed step and --wait
    // follows it to an active tenant, its steps drawn live on a terminal
    // (80 columns: no line wraps).
    let worker = env.spawn_worker_with(&[("LANDLORD_FAULTS", "")]).await;
    let out = support_in_pty(
        &env,
        &api,
        &token,
        &["retry", "bravo", "--wait", "--timeout", "60"],
    )
    .await;
    let retried = text(&out);
    assert_eq!(out.status.code(), Some(0), "{retried}");
    assert!(retried.contains("retry started: run"), "{retried}");
    assert!(retried.contains("tenant 'bravo' is active"), "{retried}");
    let live: Vec<&str> = retried
        .split('\n')
        .filter(|l| l.contains("\x1b[2K"))
        .collect();
    assert!(live.iter().any(|l| l.contains("record")), "{retried}");
    for l in live {
        assert!(
            crate::cli::visible_width(l) <= 80,
            "{} columns: {l:?}",
            crate::cli::visible_width(l)
        );
    }
    assert_eq!(env.tenant_status("bravo").await.as_deref(), Some("active"));

    // Roll back removes what charlie's run created.
    let out = support(
        &env,
        &api,
        t,
        &["rollback", "charlie", "--wait", "--timeout", "60", "--json"],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let last = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .map(str::to_owned)
        .unwrap_or_default();
    let v: Value = serde_json::from_str(&last).unwrap();
    assert_eq!(v["status"], "compensated", "{last}");
    assert!(!env.database_exists("charlie").await);

    // Deprovision with --force: the run is started and reported.
    let out = support(
        &env,
        &api,
        t,
        &["deprovision", "alpha", "--force", "--json"],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(json(&out)["run"]["kind"], "deprovision_soft");
    let out = support(
        &env,
        &api,
        t,
        &["deprovision", "bravo", "--hard", "--force"],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("hard deprovisioning: run"),
        "{}",
        text(&out)
    );
    worker.shutdown().await;
    api.stop().await;
}
