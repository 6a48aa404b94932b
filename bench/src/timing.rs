//! Times the runner's own statements, as its connections see them, without a hook in the
//! crate: sqlx logs every statement it runs (target `sqlx::query`, level DEBUG by default) with
//! its elapsed time, from sending it to reading its last row. A `tracing` layer keeps:
//!
//! - every claim statement (`with next as (...) update backstop.jobs ...`: the runner's only
//!   statement that starts so), its time and the rows it claimed;
//! - every dead-letter move: from the moment the worker returned its error (the worker marks
//!   the job, [`Timings::failing`]) to the runner's "moved to the dead-letter table" event, in
//!   the job's span. That is the whole recording: a pool connection, the move, the error
//!   grouping (`record_error_arrival`) and the durable commit.
//!
//! Nothing else is printed: the layer is the process's only subscriber.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// What the layer collected since the last `take_*`.
#[derive(Debug, Default)]
pub struct Timings {
    /// Claim statements: milliseconds, rows claimed.
    claims: Mutex<Vec<(f64, u64)>>,
    /// Jobs whose worker returned an error on their last attempt, and when.
    failing: Mutex<HashMap<i64, Instant>>,
    /// Dead-letter moves, milliseconds.
    dead_moves: Mutex<Vec<f64>>,
}

static TIMINGS: OnceLock<Arc<Timings>> = OnceLock::new();

impl Timings {
    /// Installs the layer as the process's subscriber (once) and returns what it collects.
    pub fn install() -> Arc<Timings> {
        Arc::clone(TIMINGS.get_or_init(|| {
            let timings = Arc::new(Timings::default());
            let filter =
                Targets::new().with_target("sqlx::query", Level::DEBUG).with_target("backstop", Level::INFO);
            let layer = StatementLayer(Arc::clone(&timings)).with_filter(filter);
            tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer))
                .expect("no other tracing subscriber in the benchmark");
            timings
        }))
    }

    /// Called by a worker as it returns an error on the job's last attempt.
    pub fn failing(&self, job_id: i64) {
        self.failing.lock().expect("timings lock").insert(job_id, Instant::now());
    }

    /// The claim statements since the last call: milliseconds and rows claimed.
    pub fn take_claims(&self) -> Vec<(f64, u64)> {
        std::mem::take(&mut *self.claims.lock().expect("timings lock"))
    }

    /// The dead-letter moves since the last call, in milliseconds.
    pub fn take_dead_moves(&self) -> Vec<f64> {
        std::mem::take(&mut *self.dead_moves.lock().expect("timings lock"))
    }
}

struct StatementLayer(Arc<Timings>);

/// The job id of a `backstop.job` span.
struct JobSpan(i64);

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for StatementLayer {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if attrs.metadata().name() != "backstop.job" {
            return;
        }
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let (Some(job_id), Some(span)) = (fields.id, ctx.span(id)) {
            span.extensions_mut().insert(JobSpan(job_id));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let metadata = event.metadata();
        if metadata.target() == "sqlx::query" {
            let mut fields = Fields::default();
            event.record(&mut fields);
            if fields.summary.as_deref().is_some_and(|s| s.starts_with("with next as")) {
                let ms = fields.elapsed_secs.unwrap_or(f64::NAN) * 1000.0;
                self.0.claims.lock().expect("timings lock").push((ms, fields.rows_returned.unwrap_or(0)));
            }
        } else if *metadata.level() == Level::ERROR {
            let mut fields = Fields::default();
            event.record(&mut fields);
            if !fields.message.as_deref().is_some_and(|m| m.contains("moved to the dead-letter table")) {
                return;
            }
            let job_id =
                ctx.event_span(event).and_then(|span| span.extensions().get::<JobSpan>().map(|j| j.0));
            let since = job_id.and_then(|id| self.0.failing.lock().expect("timings lock").remove(&id));
            if let Some(since) = since {
                self.0.dead_moves.lock().expect("timings lock").push(since.elapsed().as_secs_f64() * 1000.0);
            }
        }
    }
}

#[derive(Default)]
struct Fields {
    summary: Option<String>,
    message: Option<String>,
    elapsed_secs: Option<f64>,
    rows_returned: Option<u64>,
    id: Option<i64>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "summary" {
            self.summary = Some(value.to_owned());
        }
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        if field.name() == "elapsed_secs" {
            self.elapsed_secs = Some(value);
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        match field.name() {
            "rows_returned" => self.rows_returned = Some(value),
            "id" => self.id = i64::try_from(value).ok(),
            _ => {}
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if field.name() == "id" {
            self.id = Some(value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => self.message = Some(format!("{value:?}")),
            "summary" => self.summary = Some(format!("{value:?}").trim_matches('"').to_owned()),
            _ => {}
        }
    }
}
