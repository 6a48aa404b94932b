//! OpenTelemetry: the job's span (a `tracing` span, exported by `tracing-opentelemetry`),
//! its parent from the stored trace context, and metrics through the global meter provider.
//!
//! Why `tracing-opentelemetry` for spans: Backstop already runs every job inside a `tracing`
//! span, and so does the code of the workers it runs (sqlx, reqwest, your own `#[instrument]`s).
//! Exporting that same span keeps one tree: every span the worker opens nests under the job's
//! span, and the job's span under the request that enqueued it. A second, OpenTelemetry-only
//! span would have left the worker's own spans orphaned beside it.

use std::time::Duration;

use opentelemetry::metrics::{Counter, Histogram};
use opentelemetry::trace::{SpanContext, SpanId, Status, TraceContextExt, TraceFlags, TraceId, TraceState};
use opentelemetry::{Context, KeyValue};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::{Outcome, Telemetry, TraceParent};
use crate::job::JobError;
use crate::sql::ClaimedJob;

/// The counters and the run-time histogram, from the global meter provider as it was when the
/// runner was built (set the provider up before building the runner).
#[derive(Debug)]
pub(crate) struct Metrics {
    completed: Counter<u64>,
    failed: Counter<u64>,
    dead: Counter<u64>,
    duration: Histogram<f64>,
}

impl Metrics {
    pub fn new() -> Self {
        let meter = opentelemetry::global::meter("backstop");
        Self {
            completed: meter
                .u64_counter("backstop.jobs.completed")
                .with_description("Job attempts that succeeded")
                .build(),
            failed: meter
                .u64_counter("backstop.jobs.failed")
                .with_description("Job attempts that failed (cancellations are not failures)")
                .build(),
            dead: meter
                .u64_counter("backstop.jobs.dead")
                .with_description("Jobs moved to the dead-letter table as failures")
                .build(),
            duration: meter
                .f64_histogram("backstop.job.duration")
                .with_description("How long one attempt ran")
                .with_unit("s")
                .build(),
        }
    }
}

/// The trace context of the current span, in its stored form: the `tracing` span's
/// OpenTelemetry context (`tracing-opentelemetry`), else OpenTelemetry's own current context.
pub(crate) fn current_trace_context() -> Option<serde_json::Value> {
    let from_tracing = tracing::Span::current().context();
    let context = from_tracing.span().span_context().clone();
    let context = if context.is_valid() {
        context
    } else {
        Context::map_current(|cx| cx.span().span_context().clone())
    };
    if !context.is_valid() {
        return None;
    }
    let state = context.trace_state().header();
    let parent = TraceParent {
        trace_id: context.trace_id().to_string(),
        span_id: context.span_id().to_string(),
        flags: context.trace_flags().to_u8(),
        tracestate: (!state.is_empty()).then_some(state),
    };
    Some(parent.to_stored())
}

/// The job's span: the runtime's `backstop.job` span, named after the kind, with the messaging
/// attributes, as a child of the span that enqueued the job when its context was stored.
pub(crate) fn job_span(job: &ClaimedJob, telemetry: &Telemetry) -> tracing::Span {
    let span = tracing::info_span!(
        "backstop.job",
        kind = %job.kind,
        id = job.id,
        attempt = job.attempts,
        queue = %job.queue,
        otel.name = %job.kind,
        otel.kind = "consumer",
    );
    if span.is_disabled() {
        return span;
    }
    if let Some(parent) =
        job.trace_context.as_ref().and_then(TraceParent::from_stored).and_then(remote_context)
    {
        // Fails only without an OpenTelemetry layer, when there is no span to parent anyway.
        let _ = span.set_parent(parent);
    }
    span.set_attribute("messaging.system", "backstop");
    span.set_attribute("messaging.operation.type", "process");
    span.set_attribute("messaging.destination.name", job.queue.clone());
    span.set_attribute("messaging.message.id", job.id.to_string());
    span.set_attribute("backstop.job.kind", job.kind.clone());
    span.set_attribute("backstop.job.attempt", i64::from(job.attempts));
    span.set_attribute("backstop.job.max_attempts", i64::from(job.max_attempts));
    if let Some(url) = telemetry.job_url(job.id) {
        span.set_attribute("backstop.job.url", url);
    }
    span
}

fn remote_context(parent: TraceParent) -> Option<Context> {
    let context = SpanContext::new(
        TraceId::from_hex(&parent.trace_id).ok()?,
        SpanId::from_hex(&parent.span_id).ok()?,
        TraceFlags::new(parent.flags),
        true,
        parent.tracestate.as_deref().and_then(|s| s.parse::<TraceState>().ok()).unwrap_or_default(),
    );
    Some(Context::new().with_remote_span_context(context))
}

fn attributes(job: &ClaimedJob) -> [KeyValue; 2] {
    [KeyValue::new("queue", job.queue.clone()), KeyValue::new("kind", job.kind.clone())]
}

pub(super) fn completed(telemetry: &Telemetry, job: &ClaimedJob, took: Duration) {
    let [queue, kind] = attributes(job);
    telemetry.metrics.completed.add(1, &[queue.clone(), kind.clone()]);
    telemetry
        .metrics
        .duration
        .record(took.as_secs_f64(), &[queue, kind, KeyValue::new("outcome", "completed")]);
    tracing::Span::current().set_attribute("backstop.job.outcome", "completed");
}

pub(super) fn failed(
    telemetry: &Telemetry,
    job: &ClaimedJob,
    error: &JobError,
    outcome: &Outcome,
    took: Duration,
) {
    let [queue, kind] = attributes(job);
    let metrics = &telemetry.metrics;
    metrics
        .duration
        .record(took.as_secs_f64(), &[queue.clone(), kind.clone(), KeyValue::new("outcome", outcome.name())]);
    let span = tracing::Span::current();
    span.set_attribute("backstop.job.outcome", outcome.name());
    if let Outcome::Cancelled = outcome {
        return;
    }
    metrics.failed.add(1, &[queue.clone(), kind.clone()]);
    if let Outcome::Dead { reason, .. } = outcome {
        metrics.dead.add(1, &[queue, kind]);
        span.set_attribute("backstop.job.dead_reason", reason.clone());
    }
    let message = telemetry.message(error.message());
    span.add_event(
        "exception",
        vec![
            KeyValue::new("exception.type", "backstop::JobError"),
            KeyValue::new("exception.message", message.clone()),
        ],
    );
    span.set_status(Status::error(message));
}
