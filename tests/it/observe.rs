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
async fn one_trace_from_the_command_through_every_step_attempt() {
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
    let out = env
        .landlord()
        .args(["provision", "traced", "--wait", "--timeout", "170"])
        .args(["--admin-email", "admin@traced.example.com"])
        .args(["--admin-first-name", "Ada", "--admin-last-name", "Lovelace"])
        .envs(otel)
        .env("OTEL_SERVICE_NAME", "landlord-cli")
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "provision failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let hooks = hook.wait_for(1, |r| r.path == "/hook").await;
    terminate(worker).await;

    let spans = otlp.spans();
    let all = dump(&spans);
    let root = spans
        .iter()
        .find(|s| s.service == "landlord-cli" && s.name == "provision")
        .unwrap_or_else(|| panic!("no command span:\n{all}"));
    assert!(root.parent.is_empty(), "the command is the root:\n{all}");
    let traces: HashSet<&str> = spans.iter().map(|s| s.trace_id.as_str()).collect();
    assert_eq!(traces.len(), 1, "one trace for the whole run:\n{all}");

    let run = spans
        .iter()
        .find(|s| s.name == "run")
        .unwrap_or_else(|| panic!("no run span:\n{all}"));
    assert_eq!(run.parent, root.span_id, "run under the command:\n{all}");
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
