//! Failures in the error tracker and spans in the tracing backend people already use, behind
//! the `sentry` and `opentelemetry` cargo features (see the README, "Error trackers and
//! tracing").
//!
//! With a feature on, it works once the application has set up the SDK: Backstop reports
//! through the current Sentry `Hub` and through `tracing` spans (exported by
//! `tracing-opentelemetry`) and the global OpenTelemetry meter provider. Nothing here talks to
//! the network itself.
//!
//! Trace context travels in the job row as a W3C `traceparent` (and `tracestate`), written at
//! enqueue from the current span (`opentelemetry` feature) and read when the job runs: the
//! job's span becomes a child of the span that enqueued it, and a Sentry event for the failure
//! carries the same trace id.

#[cfg(feature = "opentelemetry")]
pub(crate) mod otel;
#[cfg(feature = "sentry")]
pub(crate) mod sentry;

use std::time::Duration;

use crate::job::{Decision, JobError};
use crate::redact::Redactor;
use crate::runtime::Recorded;
use crate::sql::ClaimedJob;

/// The most bytes of an error message sent to a tracker: enough for any real message, small
/// enough that a worker returning a whole HTML page does not bloat every event.
pub(crate) const MAX_SENT_MESSAGE_BYTES: usize = 8 * 1024;

/// What the runner's telemetry needs from its configuration.
#[derive(Debug)]
pub(crate) struct Telemetry {
    /// The console's base URL, for links to a job (`{console_url}/jobs/{id}`).
    pub console_url: Option<String>,
    /// Masks secrets in payloads and messages before they leave the process.
    pub redactor: Redactor,
    #[cfg(feature = "opentelemetry")]
    pub metrics: otel::Metrics,
}

impl Telemetry {
    pub fn new(console_url: Option<String>, redactor: Redactor) -> Self {
        Self {
            console_url: console_url.map(|url| url.trim_end_matches('/').to_owned()),
            redactor,
            #[cfg(feature = "opentelemetry")]
            metrics: otel::Metrics::new(),
        }
    }

    /// The console page of job `id` (live or dead: the console's job page finds both).
    pub fn job_url(&self, id: i64) -> Option<String> {
        self.console_url.as_ref().map(|base| format!("{base}/jobs/{id}"))
    }

    /// The message as sent: secrets masked, clipped.
    pub fn message(&self, message: &str) -> String {
        clip(self.redactor.text(message).into_owned(), MAX_SENT_MESSAGE_BYTES)
    }

    /// Called when an attempt succeeded, inside the job's span.
    pub fn completed(&self, job: &ClaimedJob, took: Duration) {
        #[cfg(feature = "opentelemetry")]
        otel::completed(self, job, took);
        let _ = (job, took);
    }

    /// Called once a failed attempt's outcome is known (`None`: it could not be recorded yet,
    /// and waits for the heartbeat), inside the job's span.
    pub fn failed(&self, job: &ClaimedJob, error: &JobError, recorded: Option<&Recorded>, took: Duration) {
        let outcome = Outcome::of(error, recorded);
        #[cfg(feature = "opentelemetry")]
        otel::failed(self, job, error, &outcome, took);
        #[cfg(feature = "sentry")]
        sentry::failed(self, job, error, &outcome);
        let _ = (job, took, outcome);
    }
}

/// What a failed attempt came to, as telemetry tells it.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// The job runs again (or its failure waits to be recorded).
    Retry,
    /// The job moved to the dead-letter table as a failure: why, and its error group.
    Dead {
        reason: String,
        #[cfg_attr(not(feature = "sentry"), allow(dead_code))]
        group_id: Option<i64>,
    },
    /// The worker cancelled it: not a failure, nothing is reported but the span's outcome.
    Cancelled,
}

impl Outcome {
    fn of(error: &JobError, recorded: Option<&Recorded>) -> Self {
        match recorded {
            Some(Recorded::Dead(dead)) if dead.reason == "cancelled" => Self::Cancelled,
            Some(Recorded::Dead(dead)) => Self::Dead { reason: dead.reason.clone(), group_id: dead.group_id },
            _ if matches!(error.decision(), Decision::Cancel) => Self::Cancelled,
            _ => Self::Retry,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::Retry => "retry",
            Self::Dead { .. } => "dead",
            Self::Cancelled => "cancelled",
        }
    }
}

/// A W3C trace context as stored in `backstop.jobs.trace_context`:
/// `{"traceparent": "00-<32 hex trace id>-<16 hex span id>-<2 hex flags>", "tracestate": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TraceParent {
    pub trace_id: String,
    pub span_id: String,
    pub flags: u8,
    pub tracestate: Option<String>,
}

impl TraceParent {
    /// Reads the stored context; `None` for anything that is not a valid version-00-compatible
    /// `traceparent` (all-zero ids, bad hex, version `ff`), as the W3C spec says to ignore it.
    pub fn from_stored(stored: &serde_json::Value) -> Option<Self> {
        let header = stored.get("traceparent")?.as_str()?;
        let mut parts = header.trim().split('-');
        let (version, trace_id, span_id, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        // Version 00 has exactly four parts; later versions may add more after these.
        if version == "00" && parts.next().is_some() {
            return None;
        }
        let hex = |s: &str, len: usize| {
            s.len() == len && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        if !hex(version, 2) || version == "ff" || !hex(trace_id, 32) || !hex(span_id, 16) || !hex(flags, 2) {
            return None;
        }
        if trace_id.bytes().all(|b| b == b'0') || span_id.bytes().all(|b| b == b'0') {
            return None;
        }
        Some(Self {
            trace_id: trace_id.to_owned(),
            span_id: span_id.to_owned(),
            flags: u8::from_str_radix(flags, 16).ok()?,
            tracestate: stored.get("tracestate").and_then(|s| s.as_str()).map(str::to_owned),
        })
    }

    /// The stored form.
    #[cfg_attr(not(feature = "opentelemetry"), allow(dead_code))]
    pub fn to_stored(&self) -> serde_json::Value {
        let mut stored = serde_json::json!({
            "traceparent": format!("00-{}-{}-{:02x}", self.trace_id, self.span_id, self.flags),
        });
        if let Some(state) = self.tracestate.as_ref().filter(|s| !s.is_empty()) {
            stored["tracestate"] = serde_json::Value::from(state.as_str());
        }
        stored
    }
}

/// Cuts `text` to at most `max` bytes on a char boundary, saying how much was cut.
pub(crate) fn clip(mut text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let marker = format!("… [clipped: {} bytes]", text.len());
    let mut keep = max.saturating_sub(marker.len());
    while !text.is_char_boundary(keep) {
        keep -= 1;
    }
    let removed = text.len() - keep;
    text.truncate(keep);
    text.push_str(&format!("… [clipped: {removed} bytes]"));
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_traceparent_round_trips_and_bad_ones_are_ignored() {
        let stored = json!({
            "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "tracestate": "congo=t61rcWkgMzE",
        });
        let parsed = TraceParent::from_stored(&stored).expect("valid");
        assert_eq!(parsed.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(parsed.span_id, "00f067aa0ba902b7");
        assert_eq!(parsed.flags, 1);
        assert_eq!(parsed.to_stored(), stored);
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "<script>",
            "",
        ] {
            assert_eq!(TraceParent::from_stored(&json!({ "traceparent": bad })), None, "{bad}");
        }
        assert_eq!(TraceParent::from_stored(&json!({})), None);
        assert_eq!(TraceParent::from_stored(&json!({"traceparent": 7})), None);
    }

    #[test]
    fn clipping_keeps_a_char_boundary_and_says_how_much_went() {
        let text = "é".repeat(10_000);
        let clipped = clip(text.clone(), 1000);
        assert!(clipped.len() <= 1000, "{}", clipped.len());
        assert!(clipped.ends_with("bytes]"), "{clipped}");
        assert_eq!(clip("short".into(), 1000), "short");
    }
}
