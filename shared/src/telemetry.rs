//! One place that sets up logging and tracing: `RUST_LOG` filter (else the
//! caller's level), JSON lines when `LOG_FORMAT=json`, and spans exported
//! over OTLP/HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set.
//!
//! A run outlives any one process, so its trace context is stored with the
//! run (`workflow_runs.trace_context`): the `run` span gets its ids when the
//! run is created and is exported, with its real start time, by the worker
//! that finishes the run; step attempts are its children.

use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceContextExt, TraceFlags, TraceId, TraceState,
    Tracer, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue, global};
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator, SdkTracerProvider};
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::cell::Cell;
use std::io::IsTerminal;
use std::time::SystemTime;
use tracing::Level;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

const TRACER: &str = "landlord";

/// Flushes buffered spans when dropped: keep it alive for the whole
/// process (short CLI commands included).
#[must_use = "dropping the guard flushes and stops span export"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(e) = provider.shutdown()
        {
            eprintln!("flushing spans failed: {e}");
        }
    }
}

fn otlp_configured() -> bool {
    [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]
    .iter()
    .any(|k| std::env::var(k).is_ok_and(|v| !v.trim().is_empty()))
}

/// The batch processor exports from its own thread with a blocking client
/// (built off the runtime by the exporter), so nothing here blocks tokio.
fn provider() -> Result<SdkTracerProvider, String> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()
        .map_err(|e| e.to_string())?;
    let mut resource = opentelemetry_sdk::Resource::builder();
    if std::env::var("OTEL_SERVICE_NAME").is_err() {
        resource = resource.with_service_name("landlord");
    }
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_id_generator(RunIdGenerator::default())
        .with_resource(resource.build())
        .build())
}

type BoxLayer = Box<dyn Layer<Registry> + Send + Sync>;

pub fn init(json: bool, default_level: &str) -> Telemetry {
    // RUST_LOG filters the log lines only: traces keep every run's spans
    // whatever the log level.
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(format!(
            "{default_level},sqlx=warn,apalis=warn,apalis_core=warn,apalis_postgres=warn"
        ))
    });
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        // Colour codes only where a person reads them, not in log files.
        .with_ansi(std::io::stderr().is_terminal());
    let fmt: BoxLayer = if json {
        Box::new(fmt.json().with_filter(filter))
    } else {
        Box::new(fmt.with_filter(filter))
    };
    let provider = if otlp_configured() {
        match provider() {
            Ok(p) => Some(p),
            Err(e) => {
                eprintln!("OTLP export disabled: {e}");
                None
            }
        }
    } else {
        None
    };
    let otel: Option<BoxLayer> = provider.as_ref().map(|p| {
        global::set_tracer_provider(p.clone());
        // Only Landlord's own spans, at info: the exporter's HTTP client
        // (hyper, reqwest) must not trace its own exports, and debug events
        // would bloat every span.
        let targets = Targets::new().with_target("landlord", Level::INFO);
        Box::new(
            tracing_opentelemetry::layer()
                .with_tracer(p.tracer(TRACER))
                .with_filter(targets),
        ) as BoxLayer
    });
    // A second init (tests) is harmless: keep the first subscriber.
    let _ = Registry::default()
        .with(vec![fmt].into_iter().chain(otel).collect::<Vec<_>>())
        .try_init();
    Telemetry { provider }
}

/// W3C `traceparent` of a span context.
pub fn traceparent(cx: &SpanContext) -> String {
    format!(
        "00-{}-{}-{:02x}",
        cx.trace_id(),
        cx.span_id(),
        cx.trace_flags().to_u8()
    )
}

/// The `traceparent` of a tracing span, when spans are exported.
pub fn traceparent_of(span: &tracing::Span) -> Option<String> {
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    sc.is_valid().then(|| traceparent(&sc))
}

pub fn parse_traceparent(raw: &str) -> Option<SpanContext> {
    let mut parts = raw.trim().split('-');
    let (version, trace, span, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if version != "00" || trace.len() != 32 || span.len() != 16 {
        return None;
    }
    let sc = SpanContext::new(
        TraceId::from_hex(trace).ok()?,
        SpanId::from_hex(span).ok()?,
        TraceFlags::new(u8::from_str_radix(flags, 16).ok()?),
        true,
        TraceState::default(),
    );
    sc.is_valid().then_some(sc)
}

/// A remote parent for spans created in this process.
pub fn remote_context(traceparent: &str) -> Option<Context> {
    parse_traceparent(traceparent).map(|sc| Context::new().with_remote_span_context(sc))
}

/// The trace identity of a run, stored with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunTrace {
    /// `traceparent` of the run span itself: the parent of every attempt.
    pub run: String,
    /// The span that started the run (an API request, a CLI command).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// When this run span began: a resumed run is a new span.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<chrono::DateTime<chrono::Utc>>,
}

impl RunTrace {
    /// A fresh run span id under the current span's trace; a new trace when
    /// there is none, so a run is still one trace when only the worker
    /// exports.
    pub fn for_current_span() -> Self {
        let current = tracing::Span::current().context();
        let parent = current.span().span_context().clone();
        let mut rng = rand::rng();
        let span_id = SpanId::from_bytes(rng.random::<[u8; 8]>());
        let run = if parent.is_valid() {
            SpanContext::new(
                parent.trace_id(),
                span_id,
                parent.trace_flags(),
                false,
                TraceState::default(),
            )
        } else {
            SpanContext::new(
                TraceId::from_bytes(rng.random::<[u8; 16]>()),
                span_id,
                TraceFlags::SAMPLED,
                false,
                TraceState::default(),
            )
        };
        Self {
            run: traceparent(&run),
            parent: parent.is_valid().then(|| traceparent(&parent)),
            since: Some(chrono::Utc::now()),
        }
    }

    pub fn run_context(&self) -> Option<Context> {
        remote_context(&self.run)
    }

    /// Exports the run span, from `since` (else `created`) to now, with the
    /// ids chosen when the run was created or resumed. A no-op when spans
    /// are not exported.
    pub fn export_run_span(&self, created: SystemTime, attributes: Vec<KeyValue>, ok: bool) {
        let start = self.since.map_or(created, SystemTime::from);
        let Some(run) = parse_traceparent(&self.run) else {
            return;
        };
        let parent = self
            .parent
            .as_deref()
            .and_then(remote_context)
            .unwrap_or_default();
        let tracer = global::tracer(TRACER);
        FORCED_IDS.set(Some((run.trace_id(), run.span_id())));
        let mut span = tracer
            .span_builder("run")
            .with_kind(SpanKind::Internal)
            .with_start_time(start)
            .with_attributes(attributes)
            .start_with_context(&tracer, &parent);
        FORCED_IDS.set(None);
        use opentelemetry::trace::Span as _;
        span.set_status(if ok {
            Status::Ok
        } else {
            Status::error("run did not complete")
        });
        span.end();
    }
}

/// Axum middleware: one server span per request, continuing the caller's
/// trace when it sent `traceparent`. A run created while handling the
/// request becomes a child of this span. Mount with
/// `.layer(axum::middleware::from_fn(telemetry::trace_requests))`.
pub async fn trace_requests(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use tracing::Instrument;
    // Probes and scrapes every few seconds would bury the traces that matter.
    if matches!(request.uri().path(), "/healthz" | "/readyz" | "/metrics") {
        return next.run(request).await;
    }
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(
            || request.uri().path().to_owned(),
            |p| p.as_str().to_owned(),
        );
    let method = request.method().clone();
    let span = tracing::info_span!("request",
        otel.name = %format!("{method} {route}"),
        otel.kind = "server",
        http.request.method = %method,
        http.route = %route,
        http.response.status_code = tracing::field::Empty);
    let remote = request
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .and_then(remote_context);
    if let Some(cx) = remote {
        let _ = span.set_parent(cx);
    }
    let response = next.run(request).instrument(span.clone()).await;
    span.record("http.response.status_code", response.status().as_u16());
    response
}

thread_local! {
    /// Ids for the next span built on this thread: the SDK always asks its
    /// id generator, and the run span's ids were fixed at run creation.
    static FORCED_IDS: Cell<Option<(TraceId, SpanId)>> = const { Cell::new(None) };
}

#[derive(Debug, Default)]
struct RunIdGenerator(RandomIdGenerator);

impl IdGenerator for RunIdGenerator {
    fn new_trace_id(&self) -> TraceId {
        FORCED_IDS
            .get()
            .map_or_else(|| self.0.new_trace_id(), |(t, _)| t)
    }

    fn new_span_id(&self) -> SpanId {
        FORCED_IDS
            .get()
            .map_or_else(|| self.0.new_span_id(), |(_, s)| s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_round_trips() {
        let raw = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let sc = parse_traceparent(raw).unwrap();
        assert_eq!(traceparent(&sc), raw);
        assert!(parse_traceparent("00-0000-00f067aa0ba902b7-01").is_none());
        assert!(parse_traceparent("garbage").is_none());
    }

    #[test]
    fn a_run_without_a_caller_span_gets_its_own_trace() {
        let t = RunTrace::for_current_span();
        assert!(t.parent.is_none());
        assert!(t.run_context().is_some());
    }
}
