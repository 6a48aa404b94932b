//! Sentry: an event per failed attempt and per dead letter, shaped like a failed request (the
//! kind is the transaction, the redacted payload the request data, the console's job page the
//! request URL), through the current `Hub`.

use std::future::Future;
use std::sync::Arc;

use sentry_core::protocol::{self, Event, Exception, Level, Mechanism, Request, TraceContext, Url};
use sentry_core::{Hub, SentryFutureExt};

use super::{Outcome, Telemetry, TraceParent, clip};
use crate::job::JobError;
use crate::sql::ClaimedJob;

/// The most bytes of a (redacted) payload sent as the event's request data.
const MAX_SENT_PAYLOAD_BYTES: usize = 16 * 1024;

/// Runs `work` with a Hub of its own whose scope names the job, the way an HTTP integration
/// gives each request one: what the worker reports itself (`sentry::capture_error`, the
/// `sentry-tracing` layer) carries the job's transaction and tags too. Without an initialised
/// Sentry client it is `work` as it is.
pub(crate) async fn with_job_hub<F: Future>(job: &ClaimedJob, work: F) -> F::Output {
    let hub = Hub::with_active(|current| {
        let hub = Arc::new(Hub::new_from_top(current));
        hub.configure_scope(|scope| {
            scope.set_transaction(Some(&job.kind));
            scope.set_tag("kind", &job.kind);
            scope.set_tag("queue", &job.queue);
            scope.set_tag("job_id", job.id);
            scope.set_tag("attempt", job.attempts);
        });
        Some(hub)
    });
    match hub {
        Some(hub) => work.bind_hub(hub).await,
        None => work.await,
    }
}

pub(super) fn failed(telemetry: &Telemetry, job: &ClaimedJob, error: &JobError, outcome: &Outcome) {
    if let Outcome::Cancelled = outcome {
        return;
    }
    Hub::with_active(|hub| {
        hub.capture_event(event(telemetry, job, error, outcome));
    });
}

/// The event for one failed attempt (`outcome` retry) or dead letter.
pub(crate) fn event(
    telemetry: &Telemetry,
    job: &ClaimedJob,
    error: &JobError,
    outcome: &Outcome,
) -> Event<'static> {
    let dead = matches!(outcome, Outcome::Dead { .. });
    let message = telemetry.message(error.message());
    let url = telemetry.job_url(job.id);
    let mut event = Event {
        level: if dead { Level::Error } else { Level::Warning },
        transaction: Some(job.kind.clone()),
        exception: vec![Exception {
            ty: "JobError".into(),
            value: Some(message),
            module: Some("backstop".into()),
            mechanism: Some(Mechanism { ty: "backstop".into(), handled: Some(true), ..Default::default() }),
            ..Default::default()
        }]
        .into(),
        request: Some(Request {
            url: url.as_deref().and_then(|u| Url::parse(u).ok()),
            data: Some(payload(telemetry, &job.payload)),
            ..Default::default()
        }),
        ..Default::default()
    };
    // Dead letters group by Backstop's own error group (the one the console shows and the
    // alerts name), one Sentry issue per group; failed attempts by Sentry's default grouping,
    // kept apart per kind. The two never share an issue: a dead letter is the louder news.
    event.fingerprint = match outcome {
        Outcome::Dead { group_id: Some(group), .. } => {
            vec!["backstop-dead".into(), job.kind.clone().into(), format!("group-{group}").into()]
        }
        Outcome::Dead { .. } => vec!["backstop-dead".into(), job.kind.clone().into(), "{{ default }}".into()],
        _ => vec!["backstop".into(), job.kind.clone().into(), "{{ default }}".into()],
    }
    .into();
    let tags = &mut event.tags;
    tags.insert("kind".into(), job.kind.clone());
    tags.insert("queue".into(), job.queue.clone());
    tags.insert("job_id".into(), job.id.to_string());
    tags.insert("attempt".into(), job.attempts.to_string());
    tags.insert("backstop.dead".into(), dead.to_string());
    if let Outcome::Dead { reason, .. } = outcome {
        tags.insert("backstop.dead_reason".into(), reason.clone());
    }
    let mut context = protocol::Map::new();
    context.insert("id".into(), job.id.into());
    context.insert("kind".into(), job.kind.clone().into());
    context.insert("queue".into(), job.queue.clone().into());
    context.insert("attempt".into(), job.attempts.into());
    context.insert("max_attempts".into(), job.max_attempts.into());
    context.insert("outcome".into(), outcome.name().into());
    if let Some(url) = url {
        context.insert("console_url".into(), url.into());
    }
    event.contexts.insert("job".into(), protocol::Context::Other(context));
    // The enqueuing request's trace: the event shows up in that trace in Sentry.
    if let Some(parent) = job.trace_context.as_ref().and_then(TraceParent::from_stored)
        && let (Ok(trace_id), Ok(span_id)) = (parent.trace_id.parse(), parent.span_id.parse())
    {
        let trace =
            TraceContext { trace_id, span_id, op: Some("queue.process".into()), ..Default::default() };
        event.contexts.insert("trace".into(), protocol::Context::Trace(Box::new(trace)));
    }
    event
}

/// The payload as sent: secrets masked (keys and secret-shaped strings, at any depth), clipped.
fn payload(telemetry: &Telemetry, payload: &str) -> String {
    let shown = match serde_json::from_str::<serde_json::Value>(payload) {
        Ok(value) => telemetry.redactor.json(&value).to_string(),
        Err(_) => telemetry.redactor.text(payload).into_owned(),
    };
    clip(shown, MAX_SENT_PAYLOAD_BYTES)
}
