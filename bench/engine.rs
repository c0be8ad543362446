//! Engine benchmark: real worker processes against the real Postgres of
//! deploy/pg.sh. Prints medians and p99 and writes bench/results.md.
//!
//! Run with `bench/run.sh` (it starts Postgres first).

mod common;
mod histogram;
use histogram::Histogram;
use landlord_testkit::harness;
use landlord_testkit::otlp;
mod section;

use chrono::{DateTime, Utc};
use common::{machine, ms, pct, peak_rss_mib, row, spawn_workers_with, stop};
use harness::TestEnv;
use landlord_shared::model::StepRow;
use landlord_shared::store;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;
use tokio::process::Child;

const LATENCY_RUNS: usize = 30;
const DRAIN_RUNS: usize = 300;
const FULL_RUNS: usize = 20;
/// Per block; blocks alternate tracing off / on so drift hits both alike.
const TRACING_RUNS: usize = 20;
const TRACING_ROUNDS: usize = 3;

fn spawn_workers(env: &TestEnv, n: usize) -> Vec<Child> {
    spawn_workers_with(env, n, &[])
}

/// What the engine's boundary row measures.
const BOUNDARY: &str =
    "engine overhead per step (worker clock: a step body's end → the next step body's start)";

/// The boundary row of a latency table, from the worker's histogram
/// (quantiles interpolated within its buckets, which are 0.25–0.5 ms wide
/// up to 3 ms).
fn boundary_row(h: &Histogram) -> String {
    format!(
        "| {BOUNDARY} | {:.2} ms | {:.2} ms | {} |\n",
        h.quantile(0.5) * 1e3,
        h.quantile(0.99) * 1e3,
        h.count()
    )
}

/// Sequential provisions on an idle worker: per-step latency, total,
/// pickup latency, and the engine's gap between consecutive steps.
#[derive(Default)]
struct Latency {
    per_step: BTreeMap<(i32, String), Vec<f64>>,
    totals: Vec<f64>,
    pickups: Vec<f64>,
    /// The worker's own measure of its time between steps (seconds).
    boundaries: Histogram,
    rss: f64,
}

impl Latency {
    fn extend(&mut self, other: Latency) {
        for (k, v) in other.per_step {
            self.per_step.entry(k).or_default().extend(v);
        }
        self.totals.extend(other.totals);
        self.pickups.extend(other.pickups);
        self.boundaries.add(&other.boundaries);
        self.rss = self.rss.max(other.rss);
    }

    /// Every step's duration, all steps pooled.
    fn steps(&self) -> Vec<f64> {
        self.per_step.values().flatten().copied().collect()
    }
}

async fn latency(out: &mut String, env: TestEnv, runs: usize, title: &str) -> f64 {
    let lat = measure_latency(&env, runs, &[]).await;
    let _ = writeln!(
        out,
        "### Provisioning latency, {title} (1 worker process, idle between runs)\n"
    );
    out.push_str("| measure | median | p99 | n |\n|---|---|---|---|\n");
    for ((_, name), v) in &lat.per_step {
        out.push_str(&row(&format!("step {name}"), v, "ms"));
    }
    out.push_str(&row(
        "**total** (enqueue → run completed)",
        &lat.totals,
        "ms",
    ));
    out.push_str(&row(
        "idle pickup (enqueue → first step starts)",
        &lat.pickups,
        "ms",
    ));
    out.push_str(&boundary_row(&lat.boundaries));
    out.push('\n');
    lat.rss
}

/// Sequential provisions on an idle worker: per-step latency, total,
/// pickup latency, and the engine's gap between consecutive steps.
async fn measure_latency(env: &TestEnv, runs: usize, vars: &[(&str, &str)]) -> Latency {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let bind = format!("127.0.0.1:{port}");
    let mut vars = vars.to_vec();
    vars.push(("LANDLORD_METRICS_BIND", &bind));
    let workers = spawn_workers_with(env, 1, &vars);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut per_step: BTreeMap<(i32, String), Vec<f64>> = BTreeMap::new();
    let (mut totals, mut pickups) = (vec![], vec![]);
    for i in 0..runs {
        let started = env.start(&format!("lat{i}")).await.run;
        let run = env
            .wait_finished(started.id, Duration::from_secs(120))
            .await;
        assert_eq!(run.status, "completed", "{:?}", run.error);
        let steps: Vec<StepRow> = store::steps_of_run(&env.pool, run.id)
            .await
            .unwrap()
            .into_iter()
            .filter(|s| s.status == "completed")
            .collect();
        for s in &steps {
            per_step
                .entry((s.position, s.name.clone()))
                .or_default()
                .push(ms(s.started_at.unwrap(), s.finished_at.unwrap()));
        }
        totals.push(ms(run.created_at, run.finished_at.unwrap()));
        pickups.push(ms(run.created_at, steps[0].started_at.unwrap()));
        tokio::time::sleep(Duration::from_millis(200)).await; // idle again
    }
    let rss = peak_rss_mib(&workers[0]);
    let scrape = reqwest::get(format!("http://{bind}/metrics"))
        .await
        .and_then(reqwest::Response::error_for_status)
        .expect("the worker's /metrics")
        .text()
        .await
        .expect("a metrics text");
    let boundaries = Histogram::parse(&scrape, "landlord_step_boundary_seconds");
    stop(workers).await;
    Latency {
        per_step,
        totals,
        pickups,
        boundaries,
        rss,
    }
}

/// The same provisions with spans exported over OTLP to a real receiver
/// and with no exporter, alternating blocks; medians, p99 and on/off ratios.
async fn tracing_overhead(out: &mut String) {
    let receiver = otlp::OtlpReceiver::start().await;
    let (mut off, mut on) = (Latency::default(), Latency::default());
    for _ in 0..TRACING_ROUNDS {
        let env = TestEnv::new(&[]).await;
        off.extend(measure_latency(&env, TRACING_RUNS, &[]).await);
        let env = TestEnv::new(&[]).await;
        // Export every 100 ms, not the default 5 s, so the export itself
        // runs during the measured runs.
        let vars = [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url.as_str()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ];
        on.extend(measure_latency(&env, TRACING_RUNS, &vars).await);
    }
    let exported = receiver.spans().len();
    let _ = writeln!(
        out,
        "### Tracing overhead, Postgres + storage path ({TRACING_ROUNDS} alternating blocks of {TRACING_RUNS} runs each way; {exported} spans received over OTLP/HTTP)\n"
    );
    out.push_str("| measure | off median | off p99 | on median | on p99 | ratio median | ratio p99 |\n|---|---|---|---|---|---|---|\n");
    let (a, b) = (&off.boundaries, &on.boundaries);
    let (am, ap) = (a.quantile(0.5) * 1e3, a.quantile(0.99) * 1e3);
    let (bm, bp) = (b.quantile(0.5) * 1e3, b.quantile(0.99) * 1e3);
    let _ = writeln!(
        out,
        "| {BOUNDARY} | {am:.2} ms | {ap:.2} ms | {bm:.2} ms | {bp:.2} ms | {:.2}× | {:.2}× |",
        bm / am,
        bp / ap
    );
    let mut line = |name: &str, a: &[f64], b: &[f64]| {
        let (am, ap, bm, bp) = (pct(a, 0.5), pct(a, 0.99), pct(b, 0.5), pct(b, 0.99));
        let _ = writeln!(
            out,
            "| {name} | {am:.1} ms | {ap:.1} ms | {bm:.1} ms | {bp:.1} ms | {:.2}× | {:.2}× |",
            bm / am,
            bp / ap
        );
    };
    line(
        "step duration (all steps pooled)",
        &off.steps(),
        &on.steps(),
    );
    line(
        "**total** (enqueue → run completed)",
        &off.totals,
        &on.totals,
    );
    let _ = writeln!(
        out,
        "\nWorker peak RSS: off {:.1} MiB, on {:.1} MiB.\n",
        off.rss, on.rss
    );
}

/// What the drained runs do.
#[derive(Clone, Copy)]
enum Workload {
    /// The tenant steps that touch only the master DB and the filesystem
    /// (validate, register, storage, record, activate; the Postgres steps
    /// unconfigured): the engine's own throughput on real steps.
    Tenant,
    /// The peers' shape: 10 sequential steps, of which 6 are custom steps
    /// whose executor answers `done` at once (an in-process HTTP server),
    /// and the 4 built-in ones every run has (validate, register, record,
    /// activate; the 7 optional steps skipped).
    NoOp,
}

const NOOP_STEPS: usize = 6;

/// An executor that answers every call `done` at once, in this process.
async fn noop_executor() -> String {
    use axum::{Json, Router, routing::post};
    let app = Router::new().route(
        "/noop",
        post(|| async { Json(serde_json::json!({ "status": "done", "output": {} })) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port");
    let url = format!(
        "http://{}/noop",
        listener.local_addr().expect("its address")
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

async fn drain_env(workload: Workload, dir: &tempfile::TempDir) -> TestEnv {
    match workload {
        Workload::Tenant => TestEnv::new(&[("POSTGRES_ADMIN_URL", "")]).await,
        Workload::NoOp => {
            let url = noop_executor().await;
            let mut text = String::from("default = \"noop\"\n\n");
            for i in 1..=NOOP_STEPS {
                let _ = writeln!(text, "[http_steps.noop{i}]\nstart = \"{url}\"\n");
            }
            let steps: Vec<String> = (1..=NOOP_STEPS).map(|i| format!("\"noop{i}\"")).collect();
            let _ = writeln!(
                text,
                "[plans.noop]\ntier = \"standard\"\nsteps = [{}]",
                steps.join(", ")
            );
            TestEnv::with_catalogue(dir, &text, false).await
        }
    }
}

/// Drains DRAIN_RUNS queued runs: steps/s, runs/s and the workers' peak
/// RSS.
async fn drain(workers_n: usize, workload: Workload) -> (f64, f64, f64) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let env = drain_env(workload, &dir).await;
    for i in 0..DRAIN_RUNS {
        env.start(&format!("drain{i}")).await;
    }
    let workers = spawn_workers(&env, workers_n);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
    loop {
        let open: i64 =
            sqlx::query_scalar("SELECT count(*) FROM workflow_runs WHERE finished_at IS NULL")
                .fetch_one(&env.pool)
                .await
                .unwrap();
        if open == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "drain did not finish"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rss = workers.iter().map(peak_rss_mib).fold(0.0, f64::max);
    stop(workers).await;
    let (first, last, steps): (DateTime<Utc>, DateTime<Utc>, i64) = sqlx::query_as(
        "SELECT min(started_at), max(finished_at), count(*) FROM workflow_steps WHERE status = 'completed'",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    let failed: i64 =
        sqlx::query_scalar("SELECT count(*) FROM workflow_runs WHERE status <> 'completed'")
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!(failed, 0);
    let secs = ms(first, last) / 1000.0;
    (steps as f64 / secs, DRAIN_RUNS as f64 / secs, rss)
}

/// A drain table: steps/s and runs/s with 1 and 2 worker processes.
fn drain_table(out: &mut String, one: (f64, f64), two: (f64, f64)) {
    out.push_str("| worker processes | steps/s | runs/s |\n|---|---|---|\n");
    let _ = writeln!(out, "| 1 | {:.0} | {:.1} |", one.0, one.1);
    let _ = writeln!(out, "| 2 | {:.0} | {:.1} |", two.0, two.1);
    let _ = writeln!(out, "\n2 processes / 1 process: {:.2}×\n", two.0 / one.0);
}

/// How many transactions one idle worker process makes its master
/// database commit per second (fetches, heartbeats, sweeps), from
/// `pg_stat_database` over a 10 s window after a 3 s start.
async fn idle_load() -> f64 {
    let env = TestEnv::new(&[("POSTGRES_ADMIN_URL", "")]).await;
    let workers = spawn_workers(&env, 1);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let commits = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()",
        )
        .fetch_one(&env.pool)
        .await
        .unwrap()
    };
    let before = commits().await;
    let window = Duration::from_secs(10);
    tokio::time::sleep(window).await;
    let after = commits().await;
    stop(workers).await;
    // The first reading's own transaction is counted too.
    (after - before - 1) as f64 / window.as_secs_f64()
}

#[tokio::main]
async fn main() {
    let mut out = String::new();
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    let only_tracing = only == "tracing";
    let _ = writeln!(
        out,
        "## Engine benchmark ({})\n\nMachine: {}. PostgreSQL from deploy/pg.sh (fsync off), release build, default worker settings (concurrency 4 per process, poll 500 ms).\n",
        Utc::now().format("%Y-%m-%d %H:%M UTC"),
        machine()
    );
    // The tracing comparison has its own section of bench/results.md, so
    // BENCH_ONLY=tracing can refresh it alone.
    let mut section = String::new();
    let _ = writeln!(
        section,
        "## Tracing overhead ({})\n",
        Utc::now().format("%Y-%m-%d %H:%M UTC")
    );
    // BENCH_ONLY=engine leaves the tracing section as it is.
    if !["engine", "drain", "idle", "latency"].contains(&only.as_str()) {
        tracing_overhead(&mut section).await;
        print!("{section}");
        section::write_section("tracing", &section);
    }
    if only_tracing {
        return;
    }
    if only == "idle" {
        println!("idle worker: {:.1} transactions/s", idle_load().await);
        return;
    }
    // BENCH_ONLY=latency prints the Postgres path's table and writes
    // nothing: for comparing builds.
    if only == "latency" {
        let mut table = String::new();
        latency(
            &mut table,
            TestEnv::new(&[]).await,
            LATENCY_RUNS,
            "Postgres + storage path",
        )
        .await;
        print!("{table}");
        return;
    }
    // BENCH_ONLY=drain prints the drains alone and writes nothing: for
    // comparing builds, round after round.
    if only == "drain" {
        for _ in 0..std::env::var("BENCH_ROUNDS").map_or(1, |r| r.parse().unwrap_or(1)) {
            for (name, workload) in [
                ("tenant steps", Workload::Tenant),
                ("no-op", Workload::NoOp),
            ] {
                let (_, runs1, _) = drain(1, workload).await;
                let (_, runs2, _) = drain(2, workload).await;
                println!("drain runs/s, {name}: 1 process {runs1:.1}, 2 processes {runs2:.1}");
            }
        }
        return;
    }
    let pg_only = TestEnv::new(&[]).await;
    let rss_latency = latency(&mut out, pg_only, LATENCY_RUNS, "Postgres + storage path").await;
    // The full tenant (Keycloak, Mongo, Qdrant, S3) when bench/run.sh
    // started the stack.
    if std::env::var("KEYCLOAK_BASE_URL").is_ok() {
        let full = TestEnv::full_stack(&[]).await;
        latency(
            &mut out,
            full,
            FULL_RUNS,
            "full tenant: Keycloak + Postgres + Mongo + Qdrant + S3",
        )
        .await;
    }
    let (steps1, runs1, rss1) = drain(1, Workload::Tenant).await;
    let (steps2, runs2, rss2) = drain(2, Workload::Tenant).await;
    let _ = writeln!(
        out,
        "### Drain throughput, {DRAIN_RUNS} queued runs of master-DB-only steps (5 run, 5 skipped per run)\n"
    );
    drain_table(&mut out, (steps1, runs1), (steps2, runs2));
    let noop1 = drain(1, Workload::NoOp).await;
    let noop2 = drain(2, Workload::NoOp).await;
    let _ = writeln!(
        out,
        "### Drain throughput, the peers' shape: {DRAIN_RUNS} queued runs of 10 sequential steps (validate, register, {NOOP_STEPS} custom steps whose executor answers at once, record, activate; 7 optional steps skipped)\n"
    );
    drain_table(&mut out, (noop1.0, noop1.1), (noop2.0, noop2.1));
    let _ = writeln!(
        out,
        "### Worker peak RSS (VmHWM)\n\n| phase | peak RSS |\n|---|---|\n| latency runs (Postgres path) | {rss_latency:.1} MiB |\n| drain, 1 process | {rss1:.1} MiB |\n| drain, 2 processes (max) | {rss2:.1} MiB |"
    );
    let idle = idle_load().await;
    let _ = writeln!(
        out,
        "\n### Idle worker process\n\nTransactions it makes the master database commit (fetches, heartbeats, session sweeps), from `pg_stat_database` over 10 s: **{idle:.1} per second**."
    );
    print!("{out}");
    section::write_section("engine", &out);
}
