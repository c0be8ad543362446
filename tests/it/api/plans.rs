//! The plan catalogue: a plan chosen per request, resolved and stored with
//! the run when it is created, followed by workers whatever their own
//! catalogue says; bad catalogues stop every process at start-up.

use super::{Api, WAIT, run_id};
use crate::harness::TestEnv;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `lean` runs Postgres and storage only; `enterprise` is the default.
const V1: &str = r#"
default = "enterprise"

[plans.enterprise]
tier = "enterprise"
steps = ["identity", "postgres", "migrate", "mongo", "qdrant", "storage"]

[plans.lean]
tier = "hybrid"
description = "Postgres and a folder"
steps = ["postgres", "migrate", "storage"]
"#;

/// The same catalogue edited: `lean` no longer has a database.
const V2: &str = r#"
default = "enterprise"

[plans.enterprise]
tier = "enterprise"
steps = ["identity", "postgres", "migrate", "mongo", "qdrant", "storage"]

[plans.lean]
tier = "standard"
steps = ["storage"]
"#;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_keeps_the_plan_it_was_created_with_whatever_the_catalogue_says_later() {
    let dir = tempfile::tempdir().unwrap();
    let plans = write(dir.path(), "plans.toml", V1);
    let plans = plans.to_str().unwrap();
    let env = TestEnv::new(&[("LANDLORD_PLANS_PATH", plans)]).await;
    let api = Api::start(&env).await;

    let res = api
        .post_json("/tenants", &json!({ "name": "leanco", "plan": "lean" }))
        .await;
    assert_eq!(res.status.as_u16(), 202, "{}", res.body);
    let run = run_id(&res);
    let plan = &res.body["run"]["plan"];
    assert_eq!(plan["name"], "lean", "{}", res.body);
    assert_eq!(plan["tier"], "hybrid");
    assert_eq!(plan["steps"], json!(["postgres", "migrate", "storage"]));
    assert_eq!(
        plan["postgres"],
        json!({ "mode": "database", "template": "basic" })
    );

    // The catalogue is edited before any worker picks the run up; the
    // worker loads the new file and still follows the run's own plan.
    write(dir.path(), "plans.toml", V2);
    let worker = env
        .spawn_worker_with(&[("LANDLORD_PLANS_PATH", plans)])
        .await;
    assert_eq!(env.wait_finished(run, WAIT).await.status, "completed");
    assert!(
        env.database_exists("leanco").await,
        "v1's lean has a database"
    );
    assert!(env.folder_exists("leanco"));
    let detail = api.get(&format!("/runs/{run}")).await;
    assert_eq!(detail.body["plan"]["tier"], "hybrid", "{}", detail.body);
    let steps = detail.body["steps"].as_array().unwrap();
    let status = |name: &str| {
        let s = steps.iter().find(|s| s["name"] == name).unwrap();
        (
            s["status"].as_str().unwrap().to_owned(),
            s["last_error"].clone(),
        )
    };
    assert_eq!(status("postgres").0, "completed");
    assert_eq!(status("migrate").0, "completed");
    for left_out in ["identity", "mongo", "qdrant"] {
        assert_eq!(status(left_out).0, "skipped", "{left_out}");
    }
    let logs = detail.body["logs"].to_string();
    assert!(logs.contains("not in plan 'lean'"), "{logs}");
    let tenant = api.get("/tenants/leanco").await;
    assert_eq!(tenant.body["plan"], "lean", "{}", tenant.body);

    // `landlord status` shows the stored plan.
    let out = env
        .landlord()
        .args(["status", "leanco"])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(
            "plan lean (tier hybrid, bridge): identity realm, postgres database from template basic"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("optional steps: postgres, migrate, storage"),
        "{stdout}"
    );

    // A run created after the API restarts with the edited file follows it.
    api.proc.unwrap().stop().await;
    let env2 = Api::start(&env).await;
    let res = env2
        .post_json("/tenants", &json!({ "name": "leanbe", "plan": "lean" }))
        .await;
    assert_eq!(
        res.body["run"]["plan"]["steps"],
        json!(["storage"]),
        "{}",
        res.body
    );
    let run = run_id(&res);
    assert_eq!(env.wait_finished(run, WAIT).await.status, "completed");
    assert!(
        !env.database_exists("leanbe").await,
        "v2's lean has no database"
    );
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_plan_is_refused_and_changes_nothing() {
    let env = TestEnv::new(&[]).await;
    let api = Api::start(&env).await;
    let res = api
        .post_json("/tenants", &json!({ "name": "ghostco", "plan": "gold" }))
        .await;
    res.assert_problem(422, "validation");
    assert_eq!(res.fields(), ["plan"], "{}", res.body);
    let message = res.body["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("unknown plan 'gold'") && message.contains("enterprise"),
        "{message}"
    );

    let out = env
        .landlord()
        .args(["provision", "ghostco", "--plan", "gold"])
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("error: invalid plan: {message}")),
        "{stderr}"
    );

    for table in ["workflow_runs", "tenants", "apalis.jobs"] {
        let n: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
                .fetch_one(&env.pool)
                .await
                .unwrap();
        assert_eq!(n, 0, "{table}");
    }
    assert!(!env.database_exists("ghostco").await);
    assert!(!env.role_exists("ghostco").await);
}

/// Every process reads the catalogue at start-up and refuses a bad one,
/// naming the file, the line and what is wrong.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_catalogues_stop_every_process_at_start_up_with_file_and_line() {
    let env = TestEnv::new(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "unknown-step",
            V1.replace(
                r#"["postgres", "migrate", "storage"]"#,
                r#"["postgres", "terraform"]"#,
            ),
            11,
            "unknown step 'terraform'",
        ),
        (
            "unknown-mode",
            format!("{V1}[plans.lean.identity]\nmode = \"federated\"\n"),
            13,
            "federated",
        ),
        (
            "duplicate-plan",
            format!("{V1}\n[plans.lean]\ntier = \"standard\"\nsteps = []\n"),
            13,
            "duplicate",
        ),
        (
            "bad-template",
            format!("{V1}[plans.lean.postgres]\ntemplate = \"erp\"\n"),
            13,
            "unknown template key 'erp'",
        ),
        (
            "yaml",
            "default: enterprise\nplans:\n  lean: {}\n".to_owned(),
            1,
            "",
        ),
    ];
    for (name, text, line, needle) in cases {
        let path = write(dir.path(), &format!("{name}.toml"), &text);
        let place = format!("{}:{line}:", path.display());
        for command in [
            &["worker"][..],
            &["api", "--bind", "127.0.0.1:0"],
            &["config", "check"],
        ] {
            let out = tokio::time::timeout(
                Duration::from_secs(30),
                env.landlord()
                    .args(command)
                    .env("LANDLORD_PLANS_PATH", &path)
                    .output(),
            )
            .await
            .unwrap_or_else(|_| panic!("{name}: {command:?} did not stop"))
            .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                !out.status.success(),
                "{name}: {command:?} started: {stderr}"
            );
            assert!(stderr.contains("LANDLORD_PLANS_PATH"), "{name}: {stderr}");
            assert!(
                stderr.contains(&place),
                "{name}: {command:?} wants {place}: {stderr}"
            );
            assert!(
                stderr.to_lowercase().contains(needle),
                "{name}: {needle}: {stderr}"
            );
        }
    }
    assert_eq!(env.count_all("SELECT count(*) FROM workflow_runs").await, 0);
}
