//! Observability: one trace per run across processes and the queue, and
//! metrics endpoints whose counters move.

use crate::harness::TestEnv;
use crate::otlp::{OtlpReceiver, Span};
use crate::receiver::Receiver;
use std::collections::HashSet;
use std::process::Stdio;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(180);

/// SIGTERM, the way an orchestrator stops a worker: it must flush its spans.
pub async fn terminate(mut child: tokio::process::Child) {
    let pid = child.id().expect("running").to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("worker stops on SIGTERM")
        .unwrap();
    assert!(exit.success(), "worker exit: {exit:?}");
}

fn dump(spans: &[Span]) -> String {
    spans
        .iter()
        .map(|s| {
            format!(
                "{} {} [{}] {} parent={} links={:?} {:?}\n",
                s.service, s.trace_id, s.span_id, s.name, s.parent, s.links, s.attrs
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_from_the_api_request_through_every_step_attempt() {
    let otlp = OtlpReceiver::start().await;
    let hook = Receiver::start(0).await;
    let env = TestEnv::full_stack(&[("WEBHOOK_URL", &hook.url("/hook"))]).await;
    let otel = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.url.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "200"),
    ];
    let worker = env
        .landlord()
        .arg("worker")
        .envs(otel)
        .env("OTEL_SERVICE_NAME", "landlord-worker")
        // One forced retry: the first Qdrant attempt fails transiently.
        .env("LANDLORD_FAULTS", "qdrant:transient:1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // The signup flow's call: POST /tenants on a real API process.
    let mut api_vars = otel.to_vec();
    api_vars.push(("OTEL_SERVICE_NAME", "landlord-api"));
    let api = crate::harness::spawn_api_with(&env, &api_vars).await;
    let token = crate::harness::create_token(&env, "system:*").await;
    let resp = reqwest::Client::new()
        .post(format!("{}/tenants", api.url))
        .bearer_auth(&token)
        .json(&serde_json::json!({
            "name": "traced",
            "admin": {"email": "admin@traced.example.com", "firstName": "Ada", "lastName": "Lovelace"},
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let body: serde_json::Value = resp.json().await.unwrap();
    let run_id: uuid::Uuid = body["run"]["id"].as_str().unwrap().parse().unwrap();
    let finished = env.wait_finished(run_id, WAIT).await;
    assert_eq!(finished.status, "completed", "{:?}", finished.error);
    terminate(api.child).await;
    let hooks = hook.wait_for(1, |r| r.path == "/hook").await;
    terminate(worker).await;

    let spans = otlp.spans();
    let all = dump(&spans);
    let root = spans
        .iter()
        .find(|s| s.service == "landlord-api" && s.name == "POST /tenants")
        .unwrap_or_else(|| panic!("no API request span:\n{all}"));
    assert!(
        root.parent.is_empty(),
        "the API request is the root:\n{all}"
    );
    let traces: HashSet<&str> = spans.iter().map(|s| s.trace_id.as_str()).collect();
    assert_eq!(traces.len(), 1, "one trace for the whole run:\n{all}");

    let run = spans
        .iter()
        .find(|s| s.name == "run")
        .unwrap_or_else(|| panic!("no run span:\n{all}"));
    assert_eq!(
        run.parent, root.span_id,
        "run under the API request:\n{all}"
    );
    assert_eq!(run.attr("tenant"), Some("traced"));
    assert_eq!(run.attr("outcome"), Some("completed"));
    assert!(run.start_ns <= root.end_ns && run.end_ns >= run.start_ns);
    let run_id = run.attr("run_id").unwrap().to_owned();

    // One span per attempt the database counted, each a child of the run.
    let attempts: Vec<&Span> = spans
        .iter()
        .filter(|s| s.name.starts_with("forward "))
        .collect();
    let rows = env.steps(run_id.parse().unwrap()).await;
    let counted: i32 = rows.iter().map(|r| r.attempts).sum();
    assert_eq!(attempts.len(), counted as usize, "attempt spans:\n{all}");
    for row in rows.iter().filter(|r| r.attempts > 0) {
        assert_eq!(row.status, "completed");
        for n in 1..=row.attempts {
            let span = attempts
                .iter()
                .find(|s| {
                    s.attr("step") == Some(&row.name) && s.attr("attempt") == Some(&n.to_string())
                })
                .unwrap_or_else(|| panic!("no span for {} attempt {n}:\n{all}", row.name));
            assert_eq!(span.parent, run.span_id, "{} under the run", row.name);
            assert_eq!(span.attr("tenant"), Some("traced"));
            assert_eq!(span.attr("run_id"), Some(run_id.as_str()));
        }
    }
    let qdrant = |n: &str| {
        attempts
            .iter()
            .find(|s| s.attr("step") == Some("qdrant") && s.attr("attempt") == Some(n))
            .unwrap_or_else(|| panic!("qdrant attempt {n}:\n{all}"))
    };
    let (first, retry) = (qdrant("1"), qdrant("2"));
    assert_eq!(first.attr("outcome"), Some("transient_error"));
    assert_eq!(retry.attr("outcome"), Some("ok"));
    assert!(
        retry.links.contains(&first.span_id),
        "the retry links to the failed attempt:\n{all}"
    );

    // Outgoing calls are children of the attempt that made them.
    let attempt_ids: HashSet<&str> = attempts.iter().map(|s| s.span_id.as_str()).collect();
    let http: Vec<&Span> = spans
        .iter()
        .filter(|s| {
            s.name.starts_with("POST ") || s.name.starts_with("GET ") || s.name.starts_with("PUT ")
        })
        .collect();
    assert!(
        http.iter().any(|s| attempt_ids.contains(s.parent.as_str())),
        "an HTTP client span under a step attempt:\n{all}"
    );
    assert!(
        spans
            .iter()
            .any(|s| s.name == "postgres" && attempt_ids.contains(s.parent.as_str())),
        "a Postgres span under a step attempt:\n{all}"
    );
    assert!(
        spans.iter().any(|s| s.name == "mongodb"),
        "a MongoDB span:\n{all}"
    );
    // The notification job joins the trace, and its webhook carries it.
    let notify = spans
        .iter()
        .find(|s| s.name == "notify")
        .unwrap_or_else(|| panic!("no notify span:\n{all}"));
    assert!(attempt_ids.contains(notify.parent.as_str()));
    let traceparent = hooks[0]
        .headers
        .get("traceparent")
        .expect("webhook carries traceparent")
        .to_str()
        .unwrap();
    assert!(traceparent.contains(&root.trace_id), "{traceparent}");
}

async fn scrape(url: &str) -> String {
    reqwest::get(url).await.unwrap().text().await.unwrap()
}

/// The value of the sample whose name and labels start `prefix`.
fn sample(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_endpoints_count_a_run() {
    let env = TestEnv::new(&[]).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let worker = env
        .landlord()
        .arg("worker")
        .env("LANDLORD_METRICS_BIND", format!("127.0.0.1:{port}"))
        .env("LANDLORD_FAULTS", "storage:transient:1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // The API's endpoint: the router the API mounts, in this process.
    let api = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api_url = format!("http://{}/metrics", api.local_addr().unwrap());
    let router = landlord_shared::metrics::router(env.pool.clone(), env.cfg.orphan_timeout());
    tokio::spawn(async move { axum::serve(api, router).await });
    let started = r#"landlord_runs_started_total{kind="provision"}"#;
    let before = sample(&scrape(&api_url).await, started).unwrap_or(0.0);

    let run = env.start("metered").await.run;
    let run = env.wait_finished(run.id, WAIT).await;
    assert_eq!(run.status, "completed", "{:?}", run.error);

    let api_text = scrape(&api_url).await;
    // Other tests in this process start runs too: the counter moved by at
    // least this one.
    assert!(
        sample(&api_text, started).unwrap() >= before + 1.0,
        "{api_text}"
    );
    assert!(
        api_text.contains(r#"landlord_queue_depth{queue="landlord::steps"}"#),
        "{api_text}"
    );

    let worker_url = format!("http://127.0.0.1:{port}/metrics");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let text = loop {
        let text = scrape(&worker_url).await;
        if sample(&text, r#"landlord_runs_completed_total{kind="provision"}"#) == Some(1.0) {
            break text;
        }
        assert!(tokio::time::Instant::now() < deadline, "{text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let retries = r#"landlord_step_retries_total{direction="forward",step="storage"}"#;
    assert_eq!(sample(&text, retries), Some(1.0), "{text}");
    let ok =
        r#"landlord_step_duration_seconds_count{direction="forward",outcome="ok",step="validate"}"#;
    assert_eq!(sample(&text, ok), Some(1.0), "{text}");
    let failed = r#"landlord_step_duration_seconds_count{direction="forward",outcome="transient_error",step="storage"}"#;
    assert_eq!(sample(&text, failed), Some(1.0), "{text}");
    // Every attempt but the first of each of the run's two deliveries (its
    // start, and the storage retry after its delay) followed another one
    // in this worker: the engine's time between them is observed.
    let attempts: i32 = env.steps(run.id).await.iter().map(|s| s.attempts).sum();
    assert_eq!(
        sample(&text, "landlord_step_boundary_seconds_count"),
        Some(f64::from(attempts - 2)),
        "{text}"
    );
    assert!(
        sample(&text, "landlord_workers_live").unwrap() >= 1.0,
        "{text}"
    );
    assert_eq!(
        sample(&text, r#"landlord_queue_depth{queue="landlord::steps"}"#),
        Some(0.0),
        "{text}"
    );
    assert!(
        text.contains("landlord_queue_oldest_pending_age_seconds"),
        "{text}"
    );
    assert!(
        text.contains("landlord_worker_heartbeat_age_seconds{"),
        "{text}"
    );
    terminate(worker).await;
}

/// The API's request middleware: a run created while handling a request
/// (with the caller's `traceparent`) is stored as a child of the request
/// span, in the caller's trace. In-process, with an OTel layer installed
/// for this test's thread only.
#[tokio::test]
async fn a_run_created_in_a_request_joins_the_callers_trace() {
    use landlord_shared::tenant::TenantKey;
    use opentelemetry::trace::TracerProvider as _;
    use tracing_subscriber::layer::SubscriberExt;
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    let _guard = tracing::subscriber::set_default(subscriber);
    let env = TestEnv::new(&[]).await;
    let pool = env.pool.clone();
    let cfg = env.cfg.clone();
    let handler = move |axum::extract::Path(name): axum::extract::Path<String>| {
        let pool = pool.clone();
        let cfg = cfg.clone();
        async move {
            let key = TenantKey::parse(&name).unwrap();
            let params = Default::default();
            let started = landlord_shared::start::start_provision(&pool, &cfg, &key, &params, None)
                .await
                .unwrap();
            started.run.id.to_string()
        }
    };
    let app = axum::Router::new()
        .route("/tenants/{name}", axum::routing::post(handler))
        .layer(axum::middleware::from_fn(
            landlord_shared::telemetry::trace_requests,
        ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/tenants/requested",
        listener.local_addr().unwrap()
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller = format!("00-{trace}-00f067aa0ba902b7-01");
    let run_id = reqwest::Client::new()
        .post(url)
        .header("traceparent", &caller)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let run = landlord_shared::store::run_by_id(&env.pool, run_id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    let stored = run.trace_context.expect("trace context stored").0;
    let parent = stored.parent.expect("the request span is the parent");
    assert!(parent.starts_with(&format!("00-{trace}-")), "{parent}");
    assert_ne!(parent, caller, "the server span, a child of the caller's");
    assert!(
        stored.run.starts_with(&format!("00-{trace}-")),
        "{}",
        stored.run
    );
    assert_ne!(stored.run, parent);
}

/// Retrying or rolling back a finished run starts a new run span: fresh
/// span ids and start time, so the run span is never exported twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_run_gets_a_new_run_span() {
    use landlord_shared::actions::{retry_run, rollback_run};
    let env = TestEnv::new(&[("LANDLORD_FAULTS", "storage:permanent")]).await;
    let faulty = env.spawn_worker().await;
    let a = env.start("resumed").await.run;
    let b = env.start("rolledback").await.run;
    for id in [a.id, b.id] {
        assert_eq!(env.wait_finished(id, WAIT).await.status, "failed");
    }
    faulty.shutdown().await;
    let healthy = env.spawn_worker_with(&[("LANDLORD_FAULTS", "")]).await;
    let before = |r: &landlord_shared::model::Run| r.trace_context.clone().unwrap().0;
    let retried = retry_run(&env.pool, a.id).await.unwrap();
    assert_ne!(before(&retried).run, before(&a).run);
    assert!(before(&retried).since > before(&a).since);
    assert_eq!(env.wait_finished(a.id, WAIT).await.status, "completed");
    let rolled = rollback_run(&env.pool, b.id, env.cfg.notify.outbox())
        .await
        .unwrap();
    assert_ne!(before(&rolled).run, before(&b).run);
    assert_eq!(env.wait_finished(b.id, WAIT).await.status, "compensated");
    healthy.shutdown().await;
}
