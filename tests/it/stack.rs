//! Full provisioning against the real stack (Keycloak, FerretDB, the Qdrant
//! stand-in, SeaweedFS S3), failure injected at every step with and without
//! rollback, and retry from the failed step. Resources are checked on the
//! servers themselves.

use crate::harness::TestEnv;
use crate::probe::Probe;
use crate::receiver::Receiver;
use landlord_shared::actions::retry_run;
use landlord_shared::model::{AdminContact, ProvisionParams};
use landlord_shared::plan::PROVISION_STEPS;
use landlord_shared::secrets::{SecretStore, admin_secret_ref};
use secrecy::ExposeSecret;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(180);

fn params(tenant: &str) -> ProvisionParams {
    ProvisionParams {
        plan: Some("enterprise".into()),
        domains: vec![format!("{tenant}.example.com")],
        admin: Some(AdminContact {
            email: format!("admin@{tenant}.example.com"),
            first_name: "John".into(),
            last_name: "Doe".into(),
        }),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_provision_against_the_real_stack_and_admin_logs_in() {
    let receiver = Receiver::start(0).await;
    let hook = receiver.url("/hook");
    let env = TestEnv::full_stack(&[("WEBHOOK_URL", &hook)]).await;
    let probe = Probe::new(&env).await;
    let worker = env.spawn_worker().await;
    let run = env.start_with("full", &params("full")).await.run;
    let run = env.wait_finished(run.id, WAIT).await;
    assert_eq!(run.status, "completed", "{:?}", run.error);
    assert_eq!(env.tenant_status("full").await.as_deref(), Some("active"));
    for s in env.steps(run.id).await {
        assert_eq!(s.status, "completed", "{} {:?}", s.name, s.last_error);
    }
    for (kind, exists) in probe.everything("full").await {
        assert!(exists, "{kind} missing on its server");
    }

    // Seed 004, success criterion 5: the admin logs in to the tenant realm.
    let realm = probe.names("full").realm();
    let store = SecretStore::from_base64(env.cfg.secret_key.as_ref().unwrap()).unwrap();
    let password = store
        .get(&env.pool, &admin_secret_ref(&realm))
        .await
        .unwrap();
    let kc_url = &env.cfg.keycloak.as_ref().unwrap().base_url;
    let login = probe
        .http
        .post(format!(
            "{kc_url}/realms/{realm}/protocol/openid-connect/token"
        ))
        .form(&[
            ("grant_type", "password"),
            ("client_id", "admin-cli"),
            ("username", "admin@full.example.com"),
            ("password", password.expose_secret()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200, "{}", login.text().await.unwrap());
    let token: serde_json::Value = login.json().await.unwrap();
    assert!(token["access_token"].as_str().is_some());

    let client = &probe
        .kc
        .get_json(&format!("/{realm}/clients?clientId=full-app"))
        .await
        .unwrap()
        .unwrap()[0];
    assert_eq!(client["attributes"]["pkce.code.challenge.method"], "S256");
    assert_eq!(client["redirectUris"][0], "https://full.example.com/*");
    assert_eq!(client["webOrigins"][0], "https://full.example.com");
    let user = &probe
        .kc
        .get_json(&format!(
            "/{realm}/users?exact=true&username=admin@full.example.com"
        ))
        .await
        .unwrap()
        .unwrap()[0];
    let tenant_id = run.tenant_id.unwrap().to_string();
    assert_eq!(user["attributes"]["tenantId"][0], tenant_id.as_str());
    assert_eq!(user["attributes"]["role"][0], "admin");
    assert_eq!(user["firstName"], "John");
    let roles = probe
        .kc
        .get_json(&format!(
            "/{realm}/users/{}/role-mappings",
            user["id"].as_str().unwrap()
        ))
        .await
        .unwrap()
        .unwrap();
    assert!(roles.to_string().contains("\"realm-admin\""), "{roles}");

    let collection = probe.collection("full").await.unwrap();
    assert_eq!(
        collection["result"]["config"]["params"]["vectors"]["size"],
        1536
    );
    assert_eq!(
        collection["result"]["config"]["params"]["vectors"]["distance"],
        "Cosine"
    );

    let services: Vec<String> =
        sqlx::query_scalar("SELECT service FROM tenant_connections ORDER BY service")
            .fetch_all(&env.pool)
            .await
            .unwrap();
    assert_eq!(services, ["mongodb", "postgres", "qdrant"]);

    // The initial password travels only in the delivered welcome event.
    let welcome = receiver
        .wait_for(1, |r| r.body["type"] == "tenant.provisioned")
        .await;
    assert_eq!(
        welcome[0].body["data"]["adminInitialPassword"],
        password.expose_secret()
    );
    let stored = env
        .count(
            "SELECT count(*) FROM events WHERE payload::text LIKE '%' || $1 || '%'",
            password.expose_secret(),
        )
        .await;
    assert_eq!(stored, 0, "no plaintext password in the outbox");
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failure_at_each_step_with_rollback_leaves_nothing_behind() {
    for (step, _) in PROVISION_STEPS {
        let fault = format!("{step}:permanent-after");
        let env =
            TestEnv::full_stack(&[("ROLLBACK_ON_FAILURE", "true"), ("LANDLORD_FAULTS", &fault)])
                .await;
        let probe = Probe::new(&env).await;
        let worker = env.spawn_worker().await;
        let run = env.start_with("undo", &params("undo")).await.run;
        let run = env.wait_finished(run.id, WAIT).await;
        assert_eq!(
            run.status, "compensated",
            "fault at {step}: {:?}",
            run.error
        );
        for (kind, exists) in probe.everything("undo").await {
            assert!(!exists, "fault at {step}: {kind} left behind");
        }
        assert!(!env.folder_exists("undo"));
        assert_eq!(
            env.count_all("SELECT count(*) FROM secrets").await,
            0,
            "fault at {step}"
        );
        let live = env
            .count_all("SELECT count(*) FROM tenant_resources WHERE deleted_at IS NULL")
            .await;
        assert_eq!(live, 0, "fault at {step}");
        if *step != "validate" {
            assert_eq!(
                env.tenant_status("undo").await.as_deref(),
                Some("deleted"),
                "fault at {step}"
            );
        }
        worker.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failure_at_each_step_without_rollback_keeps_resources_and_retry_completes() {
    for (position, (step, _)) in PROVISION_STEPS.iter().enumerate() {
        let fault = format!("{step}:permanent");
        let env = TestEnv::full_stack(&[("LANDLORD_FAULTS", &fault)]).await;
        let probe = Probe::new(&env).await;
        let faulty = env.spawn_worker().await;
        let run = env.start_with("kept", &params("kept")).await.run;
        let failed = env.wait_finished(run.id, WAIT).await;
        assert_eq!(failed.status, "failed", "fault at {step}");
        faulty.shutdown().await;
        if position >= 2 {
            assert_eq!(
                env.tenant_status("kept").await.as_deref(),
                Some("suspended"),
                "fault at {step}"
            );
        }
        // What earlier steps created is still on the servers and listed.
        let listed: Vec<String> =
            sqlx::query_scalar("SELECT kind FROM tenant_resources WHERE deleted_at IS NULL")
                .fetch_all(&env.pool)
                .await
                .unwrap();
        for (kind, exists) in probe.everything("kept").await {
            assert_eq!(
                exists,
                listed.iter().any(|k| k == kind),
                "fault at {step}: {kind} exists={exists}, listed={listed:?}"
            );
        }
        let before: Vec<(String, i32)> = env
            .steps(run.id)
            .await
            .into_iter()
            .filter(|s| s.status == "completed")
            .map(|s| (s.name, s.attempts))
            .collect();

        let healthy = env.spawn_worker_with(&[("LANDLORD_FAULTS", "")]).await;
        retry_run(&env.pool, run.id).await.unwrap();
        let done = env.wait_finished(run.id, WAIT).await;
        assert_eq!(
            done.status, "completed",
            "retry after fault at {step}: {:?}",
            done.error
        );
        assert_eq!(env.tenant_status("kept").await.as_deref(), Some("active"));
        for (name, attempts) in before {
            assert_eq!(
                env.step(run.id, &name).await.attempts,
                attempts,
                "{name} re-ran after fault at {step}"
            );
        }
        for (kind, exists) in probe.everything("kept").await {
            assert!(exists, "after retry from {step}: {kind} missing");
        }
        healthy.shutdown().await;
    }
}

/// Run context on a JSON log line: the line's own fields plus those of
/// every span it is in.
fn line_context(line: &serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    let mut ctx = serde_json::Map::new();
    for span in line["spans"].as_array().into_iter().flatten() {
        ctx.extend(span.as_object().cloned().unwrap_or_default());
    }
    ctx.extend(line["fields"].as_object().cloned().unwrap_or_default());
    ctx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_passwords_never_reach_the_logs() {
    let hook = Receiver::start(0).await;
    let otlp = crate::otlp::OtlpReceiver::start().await;
    let env = TestEnv::full_stack(&[("WEBHOOK_URL", &hook.url("/hook"))]).await;
    let logs = tempfile::tempdir().unwrap();
    let store = SecretStore::from_base64(env.cfg.secret_key.as_ref().unwrap()).unwrap();
    let mut secrets = Vec::new();
    let mut captured = Vec::new();
    for (format, tenant) in [("json", "logged"), ("text", "logtext")] {
        let log_path = logs.path().join(format!("worker-{format}.log"));
        // A real worker process at the most verbose level, SQL statements
        // included, exporting its spans too.
        let worker = env
            .landlord()
            .arg("worker")
            .env("RUST_LOG", "debug")
            .env("LOG_FORMAT", format)
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", &otlp.url)
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log_path).unwrap())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let run = env.start_with(tenant, &params(tenant)).await.run;
        let run = env.wait_finished(run.id, WAIT).await;
        assert_eq!(run.status, "completed", "{:?}", run.error);
        // The welcome delivery reads the password too: wait for it.
        hook.wait_for(1, |r| r.body["data"]["tenantName"] == tenant)
            .await;
        // SIGTERM: the worker flushes its spans on the way out.
        crate::observe::terminate(worker).await;
        let log = std::fs::read_to_string(&log_path).unwrap();
        assert!(log.contains("Step 3/11"), "the {format} log was captured");
        let names =
            landlord_shared::tenant::TenantNames::new(&env.cfg.name_prefix, &env.key(tenant));
        secrets.push(
            store
                .get(&env.pool, &admin_secret_ref(&names.realm()))
                .await
                .unwrap(),
        );
        secrets.push(
            store
                .get(&env.pool, &format!("postgres/{}", names.postgres_db()))
                .await
                .unwrap(),
        );
        let step_lines: Vec<&str> = log.lines().filter(|l| l.contains("Step ")).collect();
        assert!(step_lines.len() >= 10, "{format}: {step_lines:?}");
        for line in step_lines {
            if format == "json" {
                let value: serde_json::Value = serde_json::from_str(line).unwrap();
                let ctx = line_context(&value);
                for key in ["tenant", "run_id", "step", "attempt"] {
                    assert!(ctx.contains_key(key), "no {key} in {line}");
                }
                assert_eq!(ctx["tenant"], tenant, "{line}");
                assert_eq!(ctx["run_id"], run.id.to_string(), "{line}");
            } else {
                for key in ["tenant=", "run_id=", "step=", "attempt="] {
                    assert!(line.contains(key), "no {key} in {line}");
                }
            }
        }
        if format == "json" {
            assert!(log.contains("\"level\":\"DEBUG\""), "at debug level");
        }
        captured.push(log);
    }
    // Span attributes and events are logs too.
    let received = otlp.spans();
    let runs: Vec<_> = received
        .iter()
        .filter(|s| s.name == "run")
        .map(|s| s.attr("tenant"))
        .collect();
    assert_eq!(runs.len(), 2, "both workers exported: {runs:?}");
    let spans = format!("{received:?}");
    assert!(
        spans.contains("forward identity"),
        "step spans were exported"
    );
    captured.push(spans);
    for text in &captured {
        for secret in &secrets {
            assert!(
                !text.contains(secret.expose_secret()),
                "a generated password is in the worker log or spans"
            );
        }
        let keycloak_token_leak = text.contains("access_token");
        assert!(!keycloak_token_leak, "an access token is in the worker log");
    }
}
