//! Prometheus metrics: counters kept by this process, and queue and worker
//! gauges read from the apalis tables when scraped (every process sees the
//! same queue, so any `/metrics` endpoint answers for all of it).

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus::{
    Encoder, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use sqlx::PgPool;
use std::sync::LazyLock;
use std::time::Duration;

pub struct Metrics {
    registry: Registry,
    pub runs_started: IntCounterVec,
    pub runs_completed: IntCounterVec,
    pub runs_failed: IntCounterVec,
    pub runs_compensated: IntCounterVec,
    pub step_duration: HistogramVec,
    /// The engine's own time between steps, where a worker carries a run on.
    pub step_boundary: Histogram,
    pub step_retries: IntCounterVec,
    pub orphan_recoveries: IntCounterVec,
    pub steps_waiting: IntCounterVec,
    pub fenced_commits: IntCounter,
    queue_depth: IntGaugeVec,
    queue_oldest_age: GaugeVec,
    workers_live: IntGauge,
    worker_heartbeat_age: GaugeVec,
    scrape_errors: IntCounter,
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    registry
        .register(Box::new(c.clone()))
        .expect("unique metric");
    c
}

impl Metrics {
    fn new() -> Self {
        let r = Registry::new();
        let step_duration = HistogramVec::new(
            HistogramOpts::new(
                "landlord_step_duration_seconds",
                "Duration of one step attempt (forward or undo), by outcome",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
            ]),
            &["step", "direction", "outcome"],
        )
        .expect("valid metric");
        r.register(Box::new(step_duration.clone()))
            .expect("unique metric");
        let queue_depth = IntGaugeVec::new(
            Opts::new(
                "landlord_queue_depth",
                "Jobs waiting on the queue (due or delayed), read at scrape",
            ),
            &["queue"],
        )
        .expect("valid metric");
        let queue_oldest_age = GaugeVec::new(
            Opts::new(
                "landlord_queue_oldest_pending_age_seconds",
                "How long the oldest due job has waited, read at scrape",
            ),
            &["queue"],
        )
        .expect("valid metric");
        let workers_live = IntGauge::new(
            "landlord_workers_live",
            "Worker queues whose heartbeat is recent, read at scrape",
        )
        .expect("valid metric");
        let worker_heartbeat_age = GaugeVec::new(
            Opts::new(
                "landlord_worker_heartbeat_age_seconds",
                "Seconds since each worker's last heartbeat (workers seen in the last hour)",
            ),
            &["worker", "queue"],
        )
        .expect("valid metric");
        let scrape_errors = IntCounter::new(
            "landlord_metrics_scrape_errors_total",
            "Scrapes whose queue gauges could not be read",
        )
        .expect("valid metric");
        for g in [
            Box::new(queue_depth.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(queue_oldest_age.clone()),
            Box::new(workers_live.clone()),
            Box::new(worker_heartbeat_age.clone()),
            Box::new(scrape_errors.clone()),
        ] {
            r.register(g).expect("unique metric");
        }
        Self {
            runs_started: counter(&r, "landlord_runs_started_total", "Runs created", &["kind"]),
            runs_completed: counter(
                &r,
                "landlord_runs_completed_total",
                "Runs that completed",
                &["kind"],
            ),
            runs_failed: counter(
                &r,
                "landlord_runs_failed_total",
                "Runs that ended failed (no rollback, compensation failed, or cancelled)",
                &["kind", "status"],
            ),
            runs_compensated: counter(
                &r,
                "landlord_runs_compensated_total",
                "Failed runs whose completed steps were all undone",
                &["kind"],
            ),
            step_retries: counter(
                &r,
                "landlord_step_retries_total",
                "Step attempts after the first (forward or undo)",
                &["step", "direction"],
            ),
            orphan_recoveries: counter(
                &r,
                "landlord_orphan_recoveries_total",
                "Attempts picked up again after the worker running them stopped",
                &["step"],
            ),
            steps_waiting: counter(
                &r,
                "landlord_steps_waiting_total",
                "Times a worker left a step for another, lacking the backend the run needs",
                &["step"],
            ),
            fenced_commits: {
                let c = IntCounter::new(
                    "landlord_fenced_commits_total",
                    "Attempt outcomes refused because a later attempt held the step (a worker presumed dead woke up)",
                )
                .expect("valid metric");
                r.register(Box::new(c.clone())).expect("unique metric");
                c
            },
            step_duration,
            step_boundary: {
                // Fine buckets around the engine's goal (1 ms median, 5 ms
                // p99): the benchmark reads its quantiles from them.
                let h = Histogram::with_opts(
                    HistogramOpts::new(
                        "landlord_step_boundary_seconds",
                        "From a step body's end to the next step body's start, in the worker carrying the run on",
                    )
                    .buckets(vec![
                        0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.00125, 0.0015, 0.002, 0.0025,
                        0.003, 0.004, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
                    ]),
                )
                .expect("valid metric");
                r.register(Box::new(h.clone())).expect("unique metric");
                h
            },
            queue_depth,
            queue_oldest_age,
            workers_live,
            worker_heartbeat_age,
            scrape_errors,
            registry: r,
        }
    }

    /// Counts a finished run by its final status.
    pub fn run_finished(&self, kind: &str, status: &str) {
        match status {
            "completed" => self.runs_completed.with_label_values(&[kind]).inc(),
            "compensated" => self.runs_compensated.with_label_values(&[kind]).inc(),
            other => self.runs_failed.with_label_values(&[kind, other]).inc(),
        }
    }

    pub fn step_attempt(&self, step: &str, direction: &str, outcome: &str, took: Duration) {
        self.step_duration
            .with_label_values(&[step, direction, outcome])
            .observe(took.as_secs_f64());
    }

    async fn refresh_queue(&self, pool: &PgPool, live_within: Duration) -> sqlx::Result<()> {
        let queues = sqlx::query!(
            r#"SELECT job_type, count(*) AS "depth!",
                      extract(epoch FROM now() - min(run_at) FILTER (WHERE run_at <= now()))::float8
                        AS oldest
               FROM apalis.jobs WHERE status IN ('Pending', 'Queued') GROUP BY job_type"#
        )
        .fetch_all(pool)
        .await?;
        self.queue_depth.reset();
        self.queue_oldest_age.reset();
        for queue in [crate::jobs::STEP_QUEUE, crate::jobs::NOTIFY_QUEUE] {
            // Empty queues report 0 rather than vanishing, so alerts and
            // panels see a value.
            self.queue_depth.with_label_values(&[queue]).set(0);
            self.queue_oldest_age.with_label_values(&[queue]).set(0.0);
        }
        for q in queues {
            self.queue_depth
                .with_label_values(&[&q.job_type])
                .set(q.depth);
            self.queue_oldest_age
                .with_label_values(&[&q.job_type])
                .set(q.oldest.unwrap_or(0.0).max(0.0));
        }
        let workers = sqlx::query!(
            r#"SELECT id, worker_type, extract(epoch FROM now() - last_seen)::float8 AS "age!"
               FROM apalis.workers WHERE last_seen > now() - interval '1 hour'"#
        )
        .fetch_all(pool)
        .await?;
        self.worker_heartbeat_age.reset();
        let mut live = 0;
        for w in workers {
            if w.age <= live_within.as_secs_f64() {
                live += 1;
            }
            self.worker_heartbeat_age
                .with_label_values(&[&w.id, &w.worker_type])
                .set(w.age.max(0.0));
        }
        self.workers_live.set(live);
        Ok(())
    }

    /// The exposition text. `live_within`: how recent a heartbeat must be
    /// for a worker to count as live (the orphan timeout).
    pub async fn render(&self, pool: &PgPool, live_within: Duration) -> String {
        if let Err(e) = self.refresh_queue(pool, live_within).await {
            self.scrape_errors.inc();
            tracing::warn!("reading queue metrics failed: {e}");
        }
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("text encoding does not fail");
        String::from_utf8(out).expect("exposition text is UTF-8")
    }
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

pub fn metrics() -> &'static Metrics {
    &METRICS
}

#[derive(Clone)]
struct Scrape {
    pool: PgPool,
    live_within: Duration,
}

async fn scrape(State(s): State<Scrape>) -> impl IntoResponse {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        metrics().render(&s.pool, s.live_within).await,
    )
}

/// `GET /metrics`, to merge into the API's router or serve alone.
pub fn router(pool: PgPool, live_within: Duration) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .with_state(Scrape { pool, live_within })
}

/// Serves `GET /metrics` on its own listener (the worker's).
pub async fn serve(
    listener: tokio::net::TcpListener,
    pool: PgPool,
    live_within: Duration,
) -> std::io::Result<()> {
    axum::serve(listener, router(pool, live_within)).await
}
