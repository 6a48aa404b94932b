//! Runs claimed jobs: one task per unit of a queue's concurrency.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use chrono::Utc;
use futures::FutureExt;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::buffer::Buffer;
use super::{ErrorBackoff, Failure, Recorded, Shared, record_or_hand_back};
use crate::job::JobError;
use crate::sql::ClaimedJob;

/// How many times recording a failure is retried while the database is unreachable (about
/// 30 s with the backoff). After that the executor moves on and the failure waits in
/// `Shared::unrecorded` for the heartbeat to record it once the database is back.
const MAX_RECORD_TRIES: u32 = 10;

pub(super) async fn run(
    shared: Arc<Shared>,
    buffer: Arc<Buffer>,
    completions: mpsc::UnboundedSender<i64>,
    shutdown: CancellationToken,
) {
    loop {
        // On shutdown, start nothing new: buffered jobs are handed back instead.
        let job = buffer.take(&shutdown).await;
        let Some(job) = job else { return };
        #[cfg(feature = "opentelemetry")]
        let span = crate::telemetry::otel::job_span(&job, &shared.telemetry);
        #[cfg(not(feature = "opentelemetry"))]
        let span = tracing::info_span!(
            "backstop.job",
            kind = %job.kind,
            id = job.id,
            attempt = job.attempts,
            queue = %job.queue,
        );
        #[cfg(feature = "sentry")]
        {
            let hub_job = job.clone();
            let run = run_one(&shared, job, &completions, &shutdown).instrument(span);
            crate::telemetry::sentry::with_job_hub(&hub_job, run).await;
        }
        #[cfg(not(feature = "sentry"))]
        run_one(&shared, job, &completions, &shutdown).instrument(span).await;
    }
}

async fn run_one(
    shared: &Shared,
    job: ClaimedJob,
    completions: &mpsc::UnboundedSender<i64>,
    shutdown: &CancellationToken,
) {
    shared.in_flight.lock().expect("in-flight lock").insert(job.id, (job.attempts, job.max_attempts));
    #[cfg(any(feature = "sentry", feature = "opentelemetry"))]
    let started = std::time::Instant::now();
    let outcome = execute(shared, &job, shutdown).await;
    #[cfg(any(feature = "sentry", feature = "opentelemetry"))]
    let took = started.elapsed();
    match outcome {
        Ok(()) => {
            #[cfg(any(feature = "sentry", feature = "opentelemetry"))]
            shared.telemetry.completed(&job, took);
            tracing::debug!("job completed");
            // Leave the in-flight set before queueing the completion (no await between the
            // two), so a forced shutdown never hands back a job that already succeeded.
            shared.in_flight.lock().expect("in-flight lock").remove(&job.id);
            let _ = completions.send(job.id);
        }
        Err(error) => {
            let recorded = record(shared, &job, &error).await;
            #[cfg(any(feature = "sentry", feature = "opentelemetry"))]
            shared.telemetry.failed(&job, &error, recorded.as_ref(), took);
            let _ = recorded;
            shared.in_flight.lock().expect("in-flight lock").remove(&job.id);
        }
    }
}

/// Runs the worker, turning every way an attempt can go wrong into a `JobError`.
async fn execute(shared: &Shared, job: &ClaimedJob, shutdown: &CancellationToken) -> Result<(), JobError> {
    let Some(handler) = shared.registry.get(job.kind.as_str()) else {
        // Maybe a newer deploy knows this kind: retry with backoff; dead-letter if it never
        // shows up. Never drop the job.
        // The process is in the attempt's history, not in the message, which groups the deaths
        // of every process into one error group.
        return Err(JobError::retry(format!(
            "unknown job kind `{}`: no worker is registered for it in the worker process that took it",
            job.kind
        )));
    };
    let ctx = super::job_context(job, shared.config.worker_id.clone(), shared.pool.clone(), shutdown.clone());
    let timeout = handler.timeout.unwrap_or(shared.config.job_timeout);
    let run = AssertUnwindSafe(handler.call(&job.payload, ctx)).catch_unwind();
    match tokio::time::timeout(timeout, run).await {
        Ok(Ok(result)) => result,
        Ok(Err(panic)) => Err(JobError::retry(format!("worker panicked: {}", panic_message(&*panic)))),
        Err(_) => Err(JobError::retry(format!("timed out after {timeout:?}"))),
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "(non-string panic payload)".to_owned()
    }
}

/// Records a failed attempt; `None` when the database could not be reached and the failure
/// waits in `unrecorded` for the heartbeat.
async fn record(shared: &Shared, job: &ClaimedJob, error: &JobError) -> Option<Recorded> {
    let policy = shared.registry.get(job.kind.as_str()).map(|h| h.retry_policy.clone()).unwrap_or_default();
    let delay = policy.delay(u32::try_from(job.attempts).unwrap_or(1));
    let failure = Failure {
        job_id: job.id,
        worker_id: shared.config.worker_id.clone(),
        attempt: job.attempts,
        max_attempts: job.max_attempts,
        message: error.message().to_owned(),
        decision: error.decision().clone(),
        backoff_until: Utc::now() + crate::duration::to_chrono(delay),
    };
    let mut backoff = ErrorBackoff::default();
    for attempt in 1..=MAX_RECORD_TRIES {
        match record_or_hand_back(&shared.pool, &failure).await {
            Ok(recorded) => {
                shared.held.remove([job.id]);
                log_recorded(&recorded, error);
                return Some(recorded);
            }
            Err(e) => {
                let delay = backoff.next_delay();
                tracing::warn!(error = %e, attempt, "recording a job failure failed; retrying");
                tokio::time::sleep(delay).await;
            }
        }
    }
    tracing::warn!("could not record a job failure; the heartbeat will keep trying");
    shared.unrecorded.lock().expect("unrecorded lock").push(failure);
    None
}

pub(super) fn log_recorded(recorded: &Recorded, error: &impl std::fmt::Display) {
    match recorded {
        Recorded::RetryAt(at) => tracing::warn!(error = %error, retry_at = %at, "job failed; will retry"),
        Recorded::Dead(dead) if dead.reason == "cancelled" => {
            tracing::info!(reason = %error, "job cancelled")
        }
        Recorded::Dead(dead) => {
            tracing::error!(error = %error, reason = dead.reason.as_str(), "job moved to the dead-letter table");
        }
        Recorded::NotOurs => {
            tracing::warn!("job was taken back from this worker before its failure was recorded");
        }
        Recorded::HandedBack(at) => {
            tracing::warn!(error = %error, run_at = %at, "job failure could not be recorded; handed the job back");
        }
    }
}
