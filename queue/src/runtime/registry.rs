//! The kinds this process can run, with their workers erased to one shape.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;

use crate::RetryPolicy;
use crate::job::{Job, JobContext, JobError, Worker};

/// A worker with its job type erased: payload text in, outcome out.
type ErasedRun = Box<dyn Fn(&str, JobContext) -> BoxFuture<'static, Result<(), JobError>> + Send + Sync>;

/// One registered kind: how to run it, how to retry it, how long it may take.
pub(crate) struct Handler {
    run: ErasedRun,
    pub retry_policy: RetryPolicy,
    pub timeout: Option<Duration>,
}

impl std::fmt::Debug for Handler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handler")
            .field("retry_policy", &self.retry_policy)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Handler {
    pub(crate) fn new<W: Worker>(worker: W) -> Self {
        let worker = Arc::new(worker);
        Self {
            run: Box::new(move |payload, ctx| {
                // A payload that does not fit the type will not fit on the next attempt
                // either: fail now, with serde's message (which names the field).
                let parsed = serde_json::from_str::<W::Job>(payload);
                let worker = Arc::clone(&worker);
                Box::pin(async move {
                    match parsed {
                        Ok(job) => worker.work(job, ctx).await,
                        Err(e) => Err(payload_mismatch(W::Job::KIND, &e)),
                    }
                })
            }),
            retry_policy: W::Job::retry_policy(),
            timeout: W::Job::timeout(),
        }
    }

    pub(crate) fn call(&self, payload: &str, ctx: JobContext) -> BoxFuture<'static, Result<(), JobError>> {
        (self.run)(payload, ctx)
    }
}

pub(crate) type Registry = HashMap<&'static str, Handler>;

/// A payload that does not read as its kind's type will not read on the next attempt either:
/// the job fails for good, with serde's message (which names the field).
pub(crate) fn payload_mismatch(kind: &str, error: &serde_json::Error) -> JobError {
    JobError::fail_now(format!("payload does not match job kind `{kind}`: {error}"))
}

/// What a worker is told about the attempt it runs.
pub(crate) fn job_context(
    job: &crate::sql::ClaimedJob,
    worker_id: String,
    pool: sqlx::PgPool,
    shutdown: tokio_util::sync::CancellationToken,
) -> JobContext {
    JobContext {
        id: job.id,
        kind: job.kind.clone(),
        queue: job.queue.clone(),
        attempt: job.attempts,
        max_attempts: job.max_attempts,
        worker_id,
        pool,
        shutdown,
    }
}
