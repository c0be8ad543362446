//! The `landlord` binary as a user runs it.

use crate::harness::TestEnv;
use std::process::Output;

async fn landlord(env: &TestEnv, args: &[&str]) -> Output {
    env.landlord()
        .args(args)
        .output()
        .await
        .expect("run landlord")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tenant_names_get_a_clear_error_and_change_nothing() {
    let env = TestEnv::new(&[]).await;
    for bad in [
        "Bad Name",
        "ab",
        "admin",
        "template1",
        "x'; DROP TABLE tenants; --",
        "ünïcode",
        "../etc",
    ] {
        let out = landlord(&env, &["provision", bad]).await;
        assert_eq!(out.status.code(), Some(2), "{bad}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("invalid name: "), "{bad}: {stderr}");
    }
    // The API's rules and messages for every field (a `*` domain once made
    // a client with redirect URI `https://*/*`).
    for (args, field) in [
        (&["--domain", "*"][..], "domains[0]"),
        (&["--domain", "evil.com/x"], "domains[0]"),
        (
            &["--domain", "ok.com", "--domain", "EVIL.COM"],
            "domains[1]",
        ),
        (
            &[
                "--admin-email",
                "not-an-email",
                "--admin-first-name",
                "A",
                "--admin-last-name",
                "B",
            ],
            "admin.email",
        ),
        (&["--plan", "a b"], "plan"),
    ] {
        let mut all = vec!["provision", "goodname"];
        all.extend_from_slice(args);
        let out = landlord(&env, &all).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(&format!("invalid {field}: ")),
            "{args:?}: {stderr}"
        );
    }
    assert_eq!(env.count_all("SELECT count(*) FROM workflow_runs").await, 0);
    assert_eq!(env.count_all("SELECT count(*) FROM apalis.jobs").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provision_wait_follows_the_run_and_exit_code_says_active() {
    let env = TestEnv::new(&[]).await;
    let worker = env.spawn_worker().await;
    let out = landlord(&env, &["provision", "cliok", "--wait"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("tenant 'cliok' is active"), "{stdout}");
    assert!(stdout.contains("postgres  completed"), "{stdout}");
    assert!(
        stdout.contains("skipped: not configured in this deployment (KEYCLOAK_BASE_URL)"),
        "{stdout}"
    );
    // A second start reports the existing run.
    let again = landlord(&env, &["provision", "cliok"]).await;
    assert!(String::from_utf8_lossy(&again.stdout).contains("already exists"));

    let status = landlord(&env, &["status", "cliok", "--json"]).await;
    let v: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(v["tenant"]["status"], "active");
    assert_eq!(v["steps"].as_array().unwrap().len(), 11);
    worker.shutdown().await;

    let failing = TestEnv::new(&[("LANDLORD_FAULTS", "activate:permanent")]).await;
    let worker = failing.spawn_worker().await;
    let out = landlord(&failing, &["provision", "clifail", "--wait"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("tenant 'clifail' is suspended"));
    worker.shutdown().await;
}

/// Visible columns of a terminal line: escape sequences take none.
pub fn visible_width(line: &str) -> usize {
    let mut n = 0;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // CSI: ESC [ parameters, then one final byte in @..~.
            if chars.peek() == Some(&'[') {
                chars.next();
                for f in chars.by_ref() {
                    if ('@'..='~').contains(&f) {
                        break;
                    }
                }
            }
        } else if c != '\r' {
            n += 1;
        }
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provision_wait_fits_an_80_column_terminal() {
    let env = TestEnv::new(&[]).await;
    let worker = env.spawn_worker().await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tty/run_in_pty.py");
    let bin = env!("CARGO_BIN_EXE_landlord");
    let mut cmd = tokio::process::Command::new("python3");
    cmd.env_clear().envs(&env.vars);
    if let Ok(path) = std::env::var("PATH") {
        cmd.env("PATH", path);
    }
    let out = cmd
        .args([
            script,
            "80",
            "24",
            "--",
            bin,
            "provision",
            "narrow",
            "--wait",
        ])
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("tenant 'narrow' is active"), "{text}");
    // The live table (its lines clear themselves first) redraws in place:
    // none of its lines may wrap. The lines before and after it are plain
    // text, printed once.
    let live: Vec<&str> = text.split('\n').filter(|l| l.contains("\x1b[2K")).collect();
    assert!(live.len() >= 12, "{text}");
    for line in live {
        assert!(
            visible_width(line) <= 80,
            "{} columns: {line:?}",
            visible_width(line)
        );
    }
    // Each redraw moves up over the whole table (11 steps and the run's
    // line) and no further: nothing scrolled away. How many redraws there
    // are depends on the run's pace, so their lines are not counted.
    let ups: Vec<&str> = text
        .split("\x1b[")
        .skip(1)
        .filter_map(|s| s.split_once('A').map(|(n, _)| n))
        .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        .collect();
    assert!(!ups.is_empty(), "the table never redrew in place:\n{text}");
    assert!(
        ups.iter().all(|n| *n == "12"),
        "cursor moves {ups:?}:\n{text}"
    );
    // Printed once: the start line, the final table and the outcome.
    let plain = text.lines().filter(|l| !l.contains("\x1b[2K")).count();
    assert!(plain < 24, "{plain} plain lines:\n{text}");
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_reports_migrations_and_database() {
    let env = TestEnv::new(&[]).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(landlord_api::serve(env.pool.clone(), listener));
    let client = reqwest::Client::new();
    let ready = client
        .get(format!("http://{addr}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    sqlx::query("DELETE FROM _sqlx_migrations")
        .execute(&env.pool)
        .await
        .unwrap();
    let pending = client
        .get(format!("http://{addr}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(pending.status(), 503);
    assert_eq!(
        client
            .get(format!("http://{addr}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_and_seed_commands() {
    let env = TestEnv::new(&[("SEED_TENANT_NAME", "seeded"), ("SEED_MONGO_PORT", "27099")]).await;
    let out = landlord(&env, &["migrate"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for _ in 0..2 {
        let out = landlord(&env, &["seed"]).await;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let rows: Vec<(String, String, i32)> = sqlx::query_as(
        "SELECT c.service, c.db_name, c.port FROM tenant_connections c JOIN tenants t ON t.id = c.tenant_id
         WHERE t.name = 'seeded' ORDER BY c.service",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap();
    assert_eq!(
        rows,
        [
            ("mongodb".into(), "freeflow_seeded".into(), 27099),
            ("postgres".into(), "freeflow_seeded".into(), 5432),
            ("qdrant".into(), "freeflow_seeded_vectors".into(), 6333),
        ],
        "seeding twice is idempotent and follows SEED_*"
    );
    let bad = TestEnv::new(&[("SEED_TENANT_NAME", "Not Valid")]).await;
    let out = landlord(&bad, &["seed"]).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("SEED_TENANT_NAME"));
}

/// The README's first command ends in `landlord dev`: migrate, a worker in
/// process, the demo tenant provisioned on Postgres and a folder, exit 0
/// once it is active (deploy/dev.sh adds only the cluster, the master
/// database and a key, as this env does).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_provisions_the_demo_tenant_in_process_and_exits_0() {
    let env = TestEnv::new(&[]).await;
    let out = landlord(&env, &["dev", "--tenant", "devdemo"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("devdemo"), "{stdout}");
    assert_eq!(
        env.tenant_status("devdemo").await.as_deref(),
        Some("active")
    );
    assert!(env.database_exists("devdemo").await);
    assert!(env.folder_exists("devdemo"));
    // Run again, it finds the run it made: nothing twice.
    let again = landlord(&env, &["dev", "--tenant", "devdemo"]).await;
    assert!(again.status.success());
    assert_eq!(env.count_all("SELECT count(*) FROM workflow_runs").await, 1);
}
