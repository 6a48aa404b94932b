//! Failures in Sentry and jobs in OpenTelemetry (features `sentry` and `opentelemetry`): real
//! jobs through a real runner and PostgreSQL, reported by the real SDKs and exporters over HTTP
//! to recording servers in this test, which decode what arrived (Sentry envelopes, OTLP/HTTP
//! protobuf) and check it field by field.
//!
//! The SDKs are process-wide (Sentry's main hub, the global tracing subscriber and meter
//! provider), so the tests of this binary share one set of recording servers; each test uses
//! kinds of its own and looks only at what names them.

mod common;

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use backstop::{Job, JobContext, JobError, NewJob, Worker};
use chrono::Utc;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point};
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::SdkTracerProvider;
use prost::Message;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use common::{RunningRunner, test_runner, wait_for, wait_for_count};

const CONSOLE: &str = "http://console.test";

/// What the recording servers received, by route.
#[derive(Default)]
struct Recorded {
    envelopes: Mutex<Vec<Bytes>>,
    traces: Mutex<Vec<Bytes>>,
    metrics: Mutex<Vec<Bytes>>,
}

struct Telemetry {
    recorded: Arc<Recorded>,
    tracer_provider: SdkTracerProvider,
    meter_provider: SdkMeterProvider,
}

static TELEMETRY: OnceLock<Telemetry> = OnceLock::new();

/// Starts the recording servers and sets up Sentry, the tracing subscriber with its
/// OpenTelemetry layer and the meter provider, once for the binary, as an application does at
/// start-up (before any runner is built).
fn telemetry() -> &'static Telemetry {
    TELEMETRY.get_or_init(|| {
        // Outside the test's runtime: the exporters' blocking HTTP clients start runtimes of
        // their own, which tokio refuses inside another.
        std::thread::spawn(|| {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let recorded = Arc::new(Recorded::default());
            let addr = serve(Arc::clone(&recorded));

            let mut options = sentry::ClientOptions::default();
            options.dsn = Some(format!("http://public@{addr}/1").parse().expect("dsn"));
            // What `sentry::init` adds: the HTTP transport.
            let options = sentry::apply_defaults(options);
            // Bound to the process's hub, which every thread's hub starts from (`sentry::init`
            // binds the calling thread's, the process's only when called on the main thread).
            sentry::Hub::main().bind_client(Some(Arc::new(sentry::Client::from(options))));

            let spans = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_endpoint(format!("http://{addr}/v1/traces"))
                .build()
                .expect("span exporter");
            let tracer_provider = SdkTracerProvider::builder().with_batch_exporter(spans).build();
            let metrics = opentelemetry_otlp::MetricExporter::builder()
                .with_http()
                .with_endpoint(format!("http://{addr}/v1/metrics"))
                .build()
                .expect("metric exporter");
            let meter_provider =
                SdkMeterProvider::builder().with_reader(PeriodicReader::builder(metrics).build()).build();
            opentelemetry::global::set_meter_provider(meter_provider.clone());

            let tracer = tracer_provider.tracer("backstop-telemetry-test");
            tracing_subscriber::registry()
                .with(tracing_subscriber::EnvFilter::new("info,sqlx=warn"))
                .with(tracing_subscriber::fmt::layer().with_test_writer())
                .with(tracing_opentelemetry::layer().with_tracer(tracer))
                .init();
            Telemetry { recorded, tracer_provider, meter_provider }
        })
        .join()
        .expect("telemetry set up")
    })
}

/// Recording servers for the Sentry envelope endpoint and OTLP/HTTP, on a thread and runtime
/// of their own (each test has its own runtime; these outlive them all).
fn serve(recorded: Arc<Recorded>) -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        runtime.block_on(async move {
            async fn keep(State((recorded, route)): State<(Arc<Recorded>, &'static str)>, body: Bytes) {
                let list = match route {
                    "envelope" => &recorded.envelopes,
                    "traces" => &recorded.traces,
                    _ => &recorded.metrics,
                };
                list.lock().unwrap().push(body);
            }
            let app = Router::new()
                .route("/api/{project}/envelope/", post(keep).with_state((Arc::clone(&recorded), "envelope")))
                .route("/v1/traces", post(keep).with_state((Arc::clone(&recorded), "traces")))
                .route("/v1/metrics", post(keep).with_state((recorded, "metrics")));
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            axum::serve(listener, app).await.expect("serve");
        });
    });
    addr
}

/// The events in the Sentry envelopes received so far.
fn sentry_events() -> Vec<Value> {
    let envelopes = telemetry().recorded.envelopes.lock().unwrap().clone();
    envelopes.iter().flat_map(|body| envelope_events(body)).collect()
}

/// Envelope format: a header line, then items, each a header line and a payload of `length`
/// bytes (or up to the next newline when the header has no length).
fn envelope_events(body: &[u8]) -> Vec<Value> {
    fn line(rest: &mut &[u8]) -> Vec<u8> {
        let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        let line = rest[..end].to_vec();
        *rest = &rest[(end + 1).min(rest.len())..];
        line
    }
    let mut rest = body;
    let _header = line(&mut rest);
    let mut events = Vec::new();
    while !rest.is_empty() {
        let header: Value = serde_json::from_slice(&line(&mut rest)).expect("item header");
        let payload = match header["length"].as_u64() {
            Some(len) => {
                let len = usize::try_from(len).unwrap();
                let payload = rest[..len].to_vec();
                rest = &rest[len..];
                if rest.first() == Some(&b'\n') {
                    rest = &rest[1..];
                }
                payload
            }
            None => line(&mut rest),
        };
        if header["type"] == "event" {
            events.push(serde_json::from_slice(&payload).expect("event json"));
        }
    }
    events
}

/// The spans exported so far.
fn exported_spans() -> Vec<Span> {
    let bodies = telemetry().recorded.traces.lock().unwrap().clone();
    bodies
        .iter()
        .flat_map(|body| {
            ExportTraceServiceRequest::decode(body.as_ref()).expect("OTLP traces").resource_spans
        })
        .flat_map(|r| r.scope_spans)
        .flat_map(|s| s.spans)
        .collect()
}

fn attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
    attributes.iter().find(|kv| kv.key == key)?.value.as_ref()?.value.as_ref()
}

fn string_attribute(attributes: &[KeyValue], key: &str) -> Option<String> {
    match attribute(attributes, key)? {
        any_value::Value::StringValue(s) => Some(s.clone()),
        _ => None,
    }
}

fn int_attribute(attributes: &[KeyValue], key: &str) -> Option<i64> {
    match attribute(attributes, key)? {
        any_value::Value::IntValue(i) => Some(*i),
        _ => None,
    }
}

/// Flushes the SDK's buffers now, instead of waiting for their export intervals.
async fn flush() {
    tokio::task::spawn_blocking(|| {
        let telemetry = telemetry();
        let _ = telemetry.tracer_provider.force_flush();
        let _ = telemetry.meter_provider.force_flush();
    })
    .await
    .expect("flush");
}

async fn pool(opts: PgConnectOptions) -> PgPool {
    // Before `common::pool`, whose log subscriber would otherwise be the global one.
    telemetry();
    common::pool(opts).await
}

/// A job of kind `K::KIND` whose payload is any JSON.
#[derive(Serialize, Deserialize)]
#[serde(transparent)]
struct Payload<K>(Value, #[serde(skip)] PhantomData<fn() -> K>);

trait Kind: Send + Sync + 'static {
    const KIND: &'static str;
}

impl<K: Kind> Job for Payload<K> {
    const KIND: &'static str = K::KIND;
}

fn job<K: Kind>(payload: Value) -> NewJob {
    NewJob::new(&Payload::<K>(payload, PhantomData))
}

/// Fails (retrying at once) with `message` until attempt `succeeds_from`.
struct FailsUntil<K> {
    succeeds_from: i32,
    message: String,
    kind: PhantomData<fn() -> K>,
}

impl<K: Kind> FailsUntil<K> {
    fn new(succeeds_from: i32, message: impl Into<String>) -> Self {
        Self { succeeds_from, message: message.into(), kind: PhantomData }
    }
}

impl<K: Kind> Worker for FailsUntil<K> {
    type Job = Payload<K>;

    async fn work(&self, _job: Payload<K>, ctx: JobContext) -> Result<(), JobError> {
        if ctx.attempt >= self.succeeds_from {
            return Ok(());
        }
        Err(JobError::retry_at(Utc::now(), &self.message))
    }
}

macro_rules! kinds {
    ($($name:ident = $kind:literal),* $(,)?) => {
        $(struct $name; impl Kind for $name { const KIND: &'static str = $kind; })*
    };
}

kinds! {
    SentryDies = "telemetry_sentry_dies",
    SpanFlaky = "telemetry_span_flaky",
    SpanRoot = "telemetry_span_root",
    MetricsOk = "telemetry_metrics_ok",
    MetricsDies = "telemetry_metrics_dies",
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn a_failed_job_reaches_sentry_like_a_failed_request(_: PgPoolOptions, opts: PgConnectOptions) {
    let pool = pool(opts).await;
    // Hostile on purpose: secrets under nested and custom keys, a secret-shaped string, HTML
    // and a 100 KB error message.
    let payload = json!({
        "user": {"id": 7, "apiKey": "abc123", "profile": {"password": "hunter2", "iban": "DE89370400440532013000"}},
        "items": [{"card": {"cvv": "123"}}, {"note": "sk_live_4eC39HqLyjWDarjtT1zdp7dc"}],
        "plain": "<script>alert(1)</script>",
    });
    let message = format!("<b>boom</b> while saving password=hunter2 {}", "x".repeat(100_000));
    let enqueue_span = tracing::info_span!("POST /checkout");
    let enqueued = backstop::enqueue(&pool, job::<SentryDies>(payload).max_attempts(2))
        .instrument(enqueue_span.clone())
        .await
        .unwrap();
    let id = enqueued.created().unwrap();
    let trace_id = enqueue_span.context().span().span_context().trace_id().to_string();

    let runner = RunningRunner::start(
        test_runner(&pool)
            .register(FailsUntil::<SentryDies>::new(i32::MAX, message))
            .console_url(format!("{CONSOLE}/"))
            .redact_keys(["iban"]),
    );
    wait_for_count(&pool, "select count(*) from backstop.dead_jobs", 1, Duration::from_secs(30)).await;
    let events = wait_for("two Sentry events for the job", Duration::from_secs(30), || async {
        let events: Vec<Value> =
            sentry_events().into_iter().filter(|e| e["transaction"] == SentryDies::KIND).collect();
        (events.len() >= 2).then_some(events)
    })
    .await;
    runner.stop().await;

    assert_eq!(events.len(), 2, "one event per failed attempt, the last one the dead letter: {events:#?}");
    let by_attempt: HashMap<String, &Value> =
        events.iter().map(|e| (e["tags"]["attempt"].as_str().unwrap().to_owned(), e)).collect();
    let (first, dead) = (by_attempt["1"], by_attempt["2"]);

    for event in [first, dead] {
        let tags = &event["tags"];
        assert_eq!(tags["kind"], SentryDies::KIND);
        assert_eq!(tags["queue"], "default");
        assert_eq!(tags["job_id"], id.to_string());
        assert_eq!(event["request"]["url"], format!("{CONSOLE}/jobs/{id}"), "no double slash either");
        assert_eq!(event["contexts"]["job"]["id"], id);
        assert_eq!(event["contexts"]["trace"]["trace_id"], trace_id, "the event joins the enqueuing trace");

        // The payload, redacted at every depth, is the request's data.
        let data: Value = serde_json::from_str(event["request"]["data"].as_str().unwrap()).unwrap();
        assert_eq!(data["user"]["id"], 7);
        assert_eq!(data["user"]["apiKey"], "[redacted]");
        assert_eq!(data["user"]["profile"]["password"], "[redacted]");
        assert_eq!(data["user"]["profile"]["iban"], "[redacted]", "the configured extra key");
        assert_eq!(data["items"][0]["card"]["cvv"], "[redacted]");
        assert_eq!(data["items"][1]["note"], "[redacted]", "a secret-shaped string");
        assert_eq!(data["plain"], "<script>alert(1)</script>", "HTML is data, passed as it is");
        let raw = event.to_string();
        for secret in ["hunter2", "abc123", "DE8937", "sk_live_4eC3"] {
            assert!(!raw.contains(secret), "{secret} leaked into the event");
        }

        // The error, its secrets masked, clipped, HTML untouched.
        let exception = &event["exception"]["values"][0];
        assert_eq!(exception["type"], "JobError");
        let value = exception["value"].as_str().unwrap();
        assert!(value.starts_with("<b>boom</b> while saving password=[redacted] xxx"), "{}", &value[..80]);
        assert!(value.len() <= 8 * 1024 && value.ends_with("bytes]"), "clipped: {} bytes", value.len());
    }
    assert_eq!(first["level"], "warning");
    assert_eq!(first["tags"]["backstop.dead"], "false");
    // `error` is the protocol's default level, which the SDK leaves out.
    assert!(dead["level"].is_null() || dead["level"] == "error", "{}", dead["level"]);
    assert_eq!(dead["tags"]["backstop.dead"], "true");
    assert_eq!(dead["tags"]["backstop.dead_reason"], "exhausted");
    let group: i64 = sqlx::query_scalar("select group_id from backstop.dead_jobs where id = $1")
        .bind(id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        dead["fingerprint"],
        json!(["backstop-dead", SentryDies::KIND, format!("group-{group}")]),
        "a dead letter's Sentry issue is its Backstop error group"
    );
    assert_eq!(first["fingerprint"], json!(["backstop", SentryDies::KIND, "{{ default }}"]));
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn a_job_span_joins_the_trace_that_enqueued_it(_: PgPoolOptions, opts: PgConnectOptions) {
    let pool = pool(opts).await;
    let request = tracing::info_span!("POST /signup");
    let traced = backstop::enqueue(&pool, job::<SpanFlaky>(json!({"user_id": 1})).queue("mail"))
        .instrument(request.clone())
        .await
        .unwrap()
        .created()
        .unwrap();
    let untraced = backstop::enqueue(&pool, job::<SpanRoot>(json!({}))).await.unwrap().created().unwrap();
    let context = request.context().span().span_context().clone();
    let (trace_id, span_id) = (context.trace_id().to_string(), context.span_id().to_string());
    drop(request);

    // Stored in the row as W3C trace context; nothing outside a span.
    let stored: Option<Value> = sqlx::query_scalar("select trace_context from backstop.jobs where id = $1")
        .bind(traced)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(stored, Some(json!({"traceparent": format!("00-{trace_id}-{span_id}-01")})));
    let stored: Option<Value> = sqlx::query_scalar("select trace_context from backstop.jobs where id = $1")
        .bind(untraced)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(stored, None);

    let runner = RunningRunner::start(
        test_runner(&pool)
            .register(FailsUntil::<SpanFlaky>::new(2, "smtp said <421> try later"))
            .register(FailsUntil::<SpanRoot>::new(1, ""))
            .queue("mail", 2)
            .queue("default", 2)
            .console_url(CONSOLE),
    );
    wait_for_count(&pool, "select count(*) from backstop.jobs", 0, Duration::from_secs(30)).await;
    let spans = wait_for("the job's three spans exported", Duration::from_secs(30), || async {
        flush().await;
        let spans: Vec<Span> = exported_spans()
            .into_iter()
            .filter(|s| s.name == SpanFlaky::KIND || s.name == SpanRoot::KIND)
            .collect();
        (spans.len() >= 3).then_some(spans)
    })
    .await;
    runner.stop().await;

    let flaky: Vec<&Span> = spans.iter().filter(|s| s.name == SpanFlaky::KIND).collect();
    assert_eq!(flaky.len(), 2, "one span per attempt");
    for span in &flaky {
        assert_eq!(hex(&span.trace_id), trace_id, "the job's span is in the request's trace");
        assert_eq!(hex(&span.parent_span_id), span_id, "and a child of the enqueuing span");
        assert_eq!(span.kind, 5, "SPAN_KIND_CONSUMER");
        let attributes = &span.attributes;
        assert_eq!(string_attribute(attributes, "messaging.system").as_deref(), Some("backstop"));
        assert_eq!(string_attribute(attributes, "messaging.destination.name").as_deref(), Some("mail"));
        assert_eq!(string_attribute(attributes, "messaging.message.id"), Some(traced.to_string()));
        assert_eq!(
            string_attribute(attributes, "backstop.job.url"),
            Some(format!("{CONSOLE}/jobs/{traced}"))
        );
    }
    let attempt = |n| {
        *flaky
            .iter()
            .find(|s| int_attribute(&s.attributes, "backstop.job.attempt") == Some(n))
            .expect("attempt span")
    };
    let (failed, succeeded) = (attempt(1), attempt(2));
    let status = failed.status.as_ref().expect("status");
    assert_eq!(status.code, 2, "STATUS_CODE_ERROR");
    assert_eq!(status.message, "smtp said <421> try later");
    let exception = failed.events.iter().find(|e| e.name == "exception").expect("exception event");
    assert_eq!(
        string_attribute(&exception.attributes, "exception.message").as_deref(),
        Some("smtp said <421> try later")
    );
    assert_eq!(string_attribute(&failed.attributes, "backstop.job.outcome").as_deref(), Some("retry"));
    assert_ne!(succeeded.status.as_ref().map_or(0, |s| s.code), 2);
    assert_eq!(string_attribute(&succeeded.attributes, "backstop.job.outcome").as_deref(), Some("completed"));

    let root = spans.iter().find(|s| s.name == SpanRoot::KIND).unwrap();
    assert!(root.parent_span_id.is_empty(), "a job enqueued outside any span starts its own trace");
    assert_ne!(hex(&root.trace_id), trace_id);
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn metrics_count_completed_failed_and_dead_by_queue_and_kind(_: PgPoolOptions, opts: PgConnectOptions) {
    let pool = pool(opts).await;
    for n in 0..3 {
        backstop::enqueue(&pool, job::<MetricsOk>(json!({ "n": n }))).await.unwrap();
    }
    backstop::enqueue(&pool, job::<MetricsDies>(json!({})).max_attempts(2)).await.unwrap();
    let runner = RunningRunner::start(
        test_runner(&pool)
            .register(FailsUntil::<MetricsOk>::new(1, ""))
            .register(FailsUntil::<MetricsDies>::new(i32::MAX, "no")),
    );
    wait_for_count(&pool, "select count(*) from backstop.dead_jobs", 1, Duration::from_secs(30)).await;
    wait_for_count(&pool, "select count(*) from backstop.jobs", 0, Duration::from_secs(30)).await;
    let expected = [
        ("backstop.jobs.completed", MetricsOk::KIND, 3),
        ("backstop.jobs.failed", MetricsDies::KIND, 2),
        ("backstop.jobs.dead", MetricsDies::KIND, 1),
        ("backstop.job.duration", MetricsOk::KIND, 3),
        ("backstop.job.duration", MetricsDies::KIND, 2),
    ];
    let seen = wait_for("the counts exported", Duration::from_secs(30), || async {
        flush().await;
        let seen = metric_values();
        expected
            .iter()
            .all(|(name, kind, n)| seen.get(&(name.to_string(), kind.to_string())) == Some(n))
            .then_some(seen)
    })
    .await;
    runner.stop().await;
    assert_eq!(
        seen.get(&("backstop.jobs.failed".into(), MetricsOk::KIND.into())),
        None,
        "no failures of the other kind"
    );
}

/// The latest value of each counter and the latest count of the histogram, per (metric, kind),
/// for the default queue (cumulative temporality: the largest is the latest).
fn metric_values() -> HashMap<(String, String), i64> {
    let bodies = telemetry().recorded.metrics.lock().unwrap().clone();
    let mut seen = HashMap::new();
    let metrics = bodies
        .iter()
        .flat_map(|body| {
            ExportMetricsServiceRequest::decode(body.as_ref()).expect("OTLP metrics").resource_metrics
        })
        .flat_map(|r| r.scope_metrics)
        .flat_map(|s| s.metrics);
    for metric in metrics {
        let points: Vec<(&[KeyValue], i64)> = match &metric.data {
            Some(metric::Data::Sum(sum)) => sum
                .data_points
                .iter()
                .map(|p| {
                    let value = match p.value {
                        Some(number_data_point::Value::AsInt(v)) => v,
                        _ => -1,
                    };
                    (p.attributes.as_slice(), value)
                })
                .collect(),
            Some(metric::Data::Histogram(histogram)) => histogram
                .data_points
                .iter()
                .map(|p| (p.attributes.as_slice(), i64::try_from(p.count).unwrap()))
                .collect(),
            _ => continue,
        };
        let mut by_kind: HashMap<String, i64> = HashMap::new();
        for (attributes, value) in points {
            if string_attribute(attributes, "queue").as_deref() != Some("default") {
                continue;
            }
            let kind = string_attribute(attributes, "kind").unwrap_or_default();
            // The histogram has a point per outcome: add them up.
            *by_kind.entry(kind).or_default() += value;
        }
        for (kind, value) in by_kind {
            let entry = seen.entry((metric.name.clone(), kind)).or_insert(value);
            *entry = (*entry).max(value);
        }
    }
    seen
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
