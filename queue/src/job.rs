//! Defining jobs: a stable kind, typed arguments, and a worker that returns a decision.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::RetryPolicy;

/// A job's id, the same in `backstop.jobs` and, once it dies, in `backstop.dead_jobs`.
pub type JobId = i64;

/// The arguments of one kind of job.
///
/// `KIND` is stored in every row, so once deployed it must never change; rename the Rust type
/// freely, but keep the string.
///
/// ```
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct SendWelcomeEmail {
///     user_id: i64,
/// }
///
/// impl backstop::Job for SendWelcomeEmail {
///     const KIND: &'static str = "send_welcome_email";
///     const QUEUE: &'static str = "emails";
/// }
/// ```
pub trait Job: Serialize + DeserializeOwned + Send + 'static {
    /// The stable name stored in each row and used to find the worker.
    const KIND: &'static str;
    /// The queue jobs of this kind go to unless the enqueue says otherwise.
    const QUEUE: &'static str = "default";

    /// How many attempts and how long between them. Defaults to [`RetryPolicy::default`].
    fn retry_policy() -> RetryPolicy {
        RetryPolicy::default()
    }

    /// How long one attempt may run before it is abandoned and counted as failed. `None` uses
    /// the runner's default (see [`RunnerBuilder::job_timeout`](crate::RunnerBuilder::job_timeout)).
    fn timeout() -> Option<Duration> {
        None
    }
}

/// Runs jobs of one kind.
///
/// Return `Ok(())` when the work is done; the job is then deleted. Return a [`JobError`] to say
/// what should happen instead. Any `std::error::Error` converts into a retry with `?`.
///
/// ```
/// use backstop::{Job, JobContext, JobError, Worker};
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Serialize, Deserialize)]
/// # struct ChargeCard { invoice_id: i64, cents: i64 }
/// # impl Job for ChargeCard { const KIND: &'static str = "charge_card"; }
///
/// struct ChargeCardWorker;
///
/// impl Worker for ChargeCardWorker {
///     type Job = ChargeCard;
///
///     async fn work(&self, job: ChargeCard, _ctx: JobContext) -> Result<(), JobError> {
///         if job.cents <= 0 {
///             // Retrying cannot fix this: send it straight to the dead-letter table.
///             return Err(JobError::fail_now(format!("invoice {} has no amount", job.invoice_id)));
///         }
///         // ... call the payment provider; its errors retry with backoff via `?`.
///         Ok(())
///     }
/// }
/// ```
pub trait Worker: Send + Sync + 'static {
    /// The job this worker runs.
    type Job: Job;

    /// Does the work for one job.
    fn work(&self, job: Self::Job, ctx: JobContext) -> impl Future<Output = Result<(), JobError>> + Send;
}

/// What a worker knows about the attempt it is running.
#[derive(Debug, Clone)]
pub struct JobContext {
    /// The job's id.
    pub id: JobId,
    /// The job's kind.
    pub kind: String,
    /// The queue it was taken from.
    pub queue: String,
    /// This attempt's number, starting at 1.
    pub attempt: i32,
    /// How many attempts the job gets in all.
    pub max_attempts: i32,
    /// The id of the worker process running it (also in the error history).
    pub worker_id: String,
    /// The pool, for work that needs its own transaction (for example
    /// [`claim_idempotency_key`](crate::claim_idempotency_key) together with the effect).
    pub pool: PgPool,
    /// Cancelled when the runner is shutting down: long jobs can stop early and return
    /// [`JobError::retry`] so they run again elsewhere.
    pub shutdown: CancellationToken,
}

impl JobContext {
    /// Whether this is the job's last attempt: a failure now sends it to the dead-letter table.
    pub fn is_last_attempt(&self) -> bool {
        self.attempt >= self.max_attempts
    }
}

/// What a worker wants done with a job that did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Try again after the kind's backoff delay (dead-letter once attempts run out).
    Retry,
    /// Try again at this time (still counts as an attempt).
    RetryAt(DateTime<Utc>),
    /// Do not try again: move the job to the dead-letter table now.
    FailNow,
    /// The job is no longer wanted: move it to the dead-letter table as cancelled (no alert).
    Cancel,
}

/// A failed attempt: a message for the error history, and a [`Decision`].
///
/// Any `std::error::Error` converts into [`Decision::Retry`], so `?` works in workers. The
/// message keeps the error's whole `source()` chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobError {
    decision: Decision,
    message: String,
}

impl JobError {
    /// Retry after the backoff delay.
    pub fn retry(message: impl fmt::Display) -> Self {
        Self { decision: Decision::Retry, message: message.to_string() }
    }

    /// Retry at `at` (counts as an attempt).
    pub fn retry_at(at: DateTime<Utc>, message: impl fmt::Display) -> Self {
        Self { decision: Decision::RetryAt(at), message: message.to_string() }
    }

    /// Give up now: straight to the dead-letter table, whatever attempts remain.
    pub fn fail_now(message: impl fmt::Display) -> Self {
        Self { decision: Decision::FailNow, message: message.to_string() }
    }

    /// Cancel the job: it moves to the dead-letter table marked cancelled.
    pub fn cancel(reason: impl fmt::Display) -> Self {
        Self { decision: Decision::Cancel, message: reason.to_string() }
    }

    /// What the worker decided.
    pub fn decision(&self) -> &Decision {
        &self.decision
    }

    /// The message stored in the job's error history.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

// `JobError` deliberately does not implement `std::error::Error`, so this blanket conversion
// cannot overlap with `From<JobError> for JobError` (the same trick as `anyhow::Error`).
impl<E: std::error::Error + Send + Sync + 'static> From<E> for JobError {
    fn from(err: E) -> Self {
        let mut message = err.to_string();
        let mut source = err.source();
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        Self::retry(message)
    }
}

/// A job ready to enqueue: kind, JSON payload and options.
///
/// ```
/// use std::time::Duration;
/// use backstop::NewJob;
/// # #[derive(serde::Serialize, serde::Deserialize)]
/// # struct SendWelcomeEmail { user_id: i64 }
/// # impl backstop::Job for SendWelcomeEmail { const KIND: &'static str = "send_welcome_email"; }
///
/// let job = NewJob::new(&SendWelcomeEmail { user_id: 42 })
///     .delay(Duration::from_secs(2))
///     .priority(-1) // lower runs first
///     .unique_key("welcome:42");
/// ```
#[derive(Debug, Clone)]
pub struct NewJob {
    pub(crate) kind: String,
    /// The serialized payload, or the serde error to report at enqueue time (so building a
    /// `NewJob` never fails and the builder chains).
    pub(crate) payload: Result<String, String>,
    pub(crate) queue: String,
    pub(crate) priority: i16,
    pub(crate) run_at: Option<DateTime<Utc>>,
    pub(crate) delay: Option<Duration>,
    pub(crate) max_attempts: i32,
    pub(crate) unique_key: Option<String>,
}

impl NewJob {
    /// A job from typed arguments, with its kind's queue and retry policy.
    pub fn new<J: Job>(job: &J) -> Self {
        let payload = serde_json::to_string(job).map_err(|e| e.to_string());
        let mut new = Self::from_json_text(J::KIND, payload);
        new.queue = J::QUEUE.to_owned();
        new.max_attempts = i32::try_from(J::retry_policy().attempts()).unwrap_or(i32::MAX);
        new
    }

    /// A job from a kind and a JSON value, for callers without the Rust type (other
    /// services, the console, tests).
    pub fn from_json(kind: impl Into<String>, payload: &serde_json::Value) -> Self {
        Self::from_json_text(kind, Ok(payload.to_string()))
    }

    fn from_json_text(kind: impl Into<String>, payload: Result<String, String>) -> Self {
        Self {
            kind: kind.into(),
            payload,
            queue: "default".to_owned(),
            priority: 0,
            run_at: None,
            delay: None,
            max_attempts: i32::try_from(RetryPolicy::default().attempts()).unwrap_or(5),
            unique_key: None,
        }
    }

    /// The queue to put it on.
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = queue.into();
        self
    }

    /// Lower runs first; the default is 0.
    pub fn priority(mut self, priority: i16) -> Self {
        self.priority = priority;
        self
    }

    /// Do not run before `at`.
    pub fn run_at(mut self, at: DateTime<Utc>) -> Self {
        self.run_at = Some(at);
        self.delay = None;
        self
    }

    /// Do not run before `delay` from now (measured by the database's clock at enqueue).
    /// Delays over 100 years (`Duration::MAX`, say) count as 100 years.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self.run_at = None;
        self
    }

    /// How many attempts in all (overrides the kind's retry policy). Must be at least 1.
    pub fn max_attempts(mut self, attempts: i32) -> Self {
        self.max_attempts = attempts;
        self
    }

    /// While a job with this key is live (waiting, running or retrying), enqueueing another
    /// with the same key does nothing and says so ([`Enqueued::Duplicate`](crate::Enqueued)).
    pub fn unique_key(mut self, key: impl Into<String>) -> Self {
        self.unique_key = Some(key.into());
        self
    }

    /// The job's kind.
    pub fn kind(&self) -> &str {
        &self.kind
    }
}

impl<J: Job> From<&J> for NewJob {
    fn from(job: &J) -> Self {
        Self::new(job)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn errors_convert_to_retry_with_their_source_chain() {
        let err: JobError = Outer(std::io::Error::other("connection reset")).into();
        assert_eq!(err.decision(), &Decision::Retry);
        assert_eq!(err.message(), "outer: connection reset");
    }
}
