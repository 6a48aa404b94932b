//! Test helpers (feature `testing`), for your application's tests and Backstop's own:
//!
//! - what a transaction enqueued, before it commits: [`enqueued`], [`enqueued_jobs`];
//! - one job run with its worker, here and now: [`run_one`];
//! - a dead job made the way the runtime makes one (grouped, alerted): [`dead_job`];
//! - waiting for a queue to empty, or for anything else, with a deadline:
//!   [`wait_until_drained`], [`eventually`];
//! - the runtime's steps one at a time (claim, complete, fail, rescue), through the same
//!   statements the runner uses, so a test can walk jobs through their lives in an order it
//!   chooses instead of the order a running [`Runner`](crate::Runner) happens to take.
//!
//! ```no_run
//! # #[derive(serde::Serialize, serde::Deserialize)]
//! # struct SendWelcomeEmail { user_id: i64 }
//! # impl backstop::Job for SendWelcomeEmail { const KIND: &'static str = "send_welcome_email"; }
//! # async fn sign_up(tx: &mut sqlx::PgConnection) -> Result<(), backstop::Error> { Ok(()) }
//! # async fn example(pool: sqlx::PgPool) -> Result<(), backstop::Error> {
//! use backstop::testing;
//!
//! let mut tx = pool.begin().await?;
//! sign_up(&mut tx).await?;
//! let emails: Vec<SendWelcomeEmail> = testing::enqueued_jobs(&mut *tx).await?;
//! assert_eq!(emails.len(), 1, "sign-up enqueues its welcome email in its own transaction");
//! # Ok(()) }
//! ```
//!
//! ```no_run
//! # async fn example(pool: sqlx::PgPool) -> Result<(), backstop::Error> {
//! use backstop::testing;
//!
//! for job in testing::claim(&pool, "default", "test-worker", 10).await? {
//!     testing::fail(&pool, job, "test-worker", backstop::JobError::retry("boom")).await?;
//! }
//! # Ok(()) }
//! ```

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;
use sqlx::{PgExecutor, PgPool};

use crate::job::{Job, JobError, JobId, NewJob, Worker};
use crate::runtime::{Failure, Recorded, job_context, payload_mismatch, record_or_hand_back};
use crate::{Result, sql};

/// A job claimed by [`claim`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claimed {
    /// The job's id.
    pub id: JobId,
    /// The attempt this claim started (1-based).
    pub attempt: i32,
    /// Attempts the job gets in all.
    pub max_attempts: i32,
}

/// What [`fail`] did with a failed attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failed {
    /// Back in the queue, runnable now (the helpers use no backoff).
    Retrying,
    /// Moved to the dead-letter table with this reason (`exhausted`, `failed_now`, `cancelled`).
    Dead(String),
    /// The job was not locked by this worker: nothing was written.
    NotOurs,
    /// The database refused to record the failure; the job was handed back unrecorded.
    HandedBack,
}

/// Claims up to `limit` runnable jobs of `queue` for `worker_id`, as a runner's fetcher does
/// (the attempt is counted now).
pub async fn claim(pool: &PgPool, queue: &str, worker_id: &str, limit: i64) -> Result<Vec<Claimed>> {
    let mut conn = pool.acquire().await?;
    let jobs = sql::job_claim_batch(&mut conn, queue, worker_id, limit, None, sql::ClaimFrom::Head).await?;
    Ok(jobs
        .into_iter()
        .map(|j| Claimed { id: j.id, attempt: j.attempts, max_attempts: j.max_attempts })
        .collect())
}

/// Completes jobs `worker_id` holds (deletes them), as a runner's completer does.
pub async fn complete(pool: &PgPool, ids: &[JobId], worker_id: &str) -> Result<()> {
    let mut conn = pool.acquire().await?;
    Ok(sql::job_complete_many(&mut conn, ids, worker_id).await?)
}

/// Records a failed attempt of `job` as a runner's executor does, except that a retry is due
/// at once (no backoff), so the next [`claim`] can take it.
pub async fn fail(pool: &PgPool, job: Claimed, worker_id: &str, error: JobError) -> Result<Failed> {
    let failure = Failure {
        job_id: job.id,
        worker_id: worker_id.to_owned(),
        attempt: job.attempt,
        max_attempts: job.max_attempts,
        message: error.message().to_owned(),
        decision: error.decision().clone(),
        backoff_until: Utc::now(),
    };
    Ok(match record_or_hand_back(pool, &failure).await? {
        Recorded::RetryAt(_) => Failed::Retrying,
        Recorded::Dead(dead) => Failed::Dead(dead.reason),
        Recorded::NotOurs => Failed::NotOurs,
        Recorded::HandedBack(_) => Failed::HandedBack,
    })
}

/// Takes back jobs whose worker has stopped heartbeating, as every runner's heartbeat does,
/// judging each by its owner's recorded timeout or, for an owner without a row, by
/// `heartbeat_timeout`, at time `now` (`None`: the database's clock). Returns how many.
pub async fn rescue(pool: &PgPool, heartbeat_timeout: Duration, now: Option<DateTime<Utc>>) -> Result<usize> {
    Ok(crate::runtime::rescue_stale_jobs(pool, heartbeat_timeout, now, crate::runtime::Owners::SilentOrGone)
        .await?)
}

/// Drops what an interrupted rebuild left and rebuilds the GIN indexes of `backstop.jobs`
/// larger than the table and than `min_bytes`, as every runner's maintenance does with its own
/// threshold (64 MiB). Returns the names of the indexes rebuilt.
pub async fn rebuild_outgrown_indexes(pool: &PgPool, min_bytes: i64) -> Result<Vec<String>> {
    Ok(crate::runtime::rebuild_outgrown(pool, min_bytes).await?)
}

/// A live job as it was enqueued.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct EnqueuedJob {
    /// Its id.
    pub id: JobId,
    /// Its queue.
    pub queue: String,
    /// Its kind.
    pub kind: String,
    /// Its payload.
    pub payload: Json<Value>,
    /// Lower runs first.
    pub priority: i16,
    /// Not before this.
    pub run_at: DateTime<Utc>,
    /// Attempts it gets in all.
    pub max_attempts: i32,
    /// Its unique key, if it has one.
    pub unique_key: Option<String>,
}

/// The live jobs of `kind`, oldest first, as `executor` sees them: pass the transaction that
/// enqueued them to check what it enqueued before it commits (and that nothing is enqueued
/// when it rolls back).
pub async fn enqueued<'e, E: PgExecutor<'e>>(executor: E, kind: &str) -> Result<Vec<EnqueuedJob>> {
    Ok(sql::job_list_of_kind(executor, kind).await?)
}

/// As [`enqueued`], the payloads read as `J`: what your code asked to run.
pub async fn enqueued_jobs<'e, J: Job, E: PgExecutor<'e>>(executor: E) -> Result<Vec<J>> {
    enqueued(executor, J::KIND)
        .await?
        .into_iter()
        .map(|job| serde_json::from_value(job.payload.0).map_err(|e| crate::Error::Testing(e.to_string())))
        .collect()
}

/// What [`run_one`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ran {
    /// The worker succeeded; the job is gone.
    Completed(JobId),
    /// The worker failed; what became of the job.
    Failed(JobId, Failed),
}

/// The worker id the helpers that run jobs claim with.
pub const TEST_WORKER: &str = "backstop-testing";

/// Runs the oldest runnable job of `W::Job`'s kind with `worker`, in this task, and records the
/// outcome as a runner does (a failure that retries is due again at once). `None` if no job of
/// that kind is runnable. A payload that does not read as `W::Job` fails the job for good, as
/// in a runner.
///
/// ```no_run
/// # #[derive(serde::Serialize, serde::Deserialize)]
/// # struct SendWelcomeEmail { user_id: i64 }
/// # impl backstop::Job for SendWelcomeEmail { const KIND: &'static str = "send_welcome_email"; }
/// # struct Mailer;
/// # impl backstop::Worker for Mailer {
/// #     type Job = SendWelcomeEmail;
/// #     async fn work(&self, _: SendWelcomeEmail, _: backstop::JobContext) -> Result<(), backstop::JobError> { Ok(()) }
/// # }
/// # async fn example(pool: sqlx::PgPool) -> Result<(), backstop::Error> {
/// use backstop::testing::{self, Ran};
///
/// backstop::enqueue(&pool, &SendWelcomeEmail { user_id: 42 }).await?;
/// assert!(matches!(testing::run_one(&pool, &Mailer).await?, Some(Ran::Completed(_))));
/// # Ok(()) }
/// ```
pub async fn run_one<W: Worker>(pool: &PgPool, worker: &W) -> Result<Option<Ran>> {
    let mut conn = pool.acquire().await?;
    let claimed = sql::job_claim_one_for_test(&mut conn, W::Job::KIND, None, TEST_WORKER).await?;
    drop(conn);
    let Some(job) = claimed else { return Ok(None) };
    let ctx = job_context(&job, TEST_WORKER.to_owned(), pool.clone(), Default::default());
    let outcome = match serde_json::from_str::<W::Job>(&job.payload) {
        Ok(payload) => worker.work(payload, ctx).await,
        Err(e) => Err(payload_mismatch(W::Job::KIND, &e)),
    };
    let claimed = Claimed { id: job.id, attempt: job.attempts, max_attempts: job.max_attempts };
    Ok(Some(match outcome {
        Ok(()) => {
            complete(pool, &[job.id], TEST_WORKER).await?;
            Ran::Completed(job.id)
        }
        Err(error) => Ran::Failed(job.id, fail(pool, claimed, TEST_WORKER, error).await?),
    }))
}

/// Makes a dead job the way the runtime does: enqueues `job` with a single attempt, claims it
/// and fails that attempt with `error`, so it lands in the dead-letter table out of attempts
/// (`exhausted`, attempts 1 of 1), in its error group, with its Slack alert enqueued as for
/// any death. Returns its id.
pub async fn dead_job(pool: &PgPool, job: impl Into<NewJob>, error: &str) -> Result<JobId> {
    let job: NewJob = job.into().max_attempts(1);
    let kind = job.kind().to_owned();
    let id = match crate::enqueue(pool, job).await? {
        crate::Enqueued::Created(id) => id,
        other => return Err(crate::Error::Testing(format!("the dead job was not enqueued: {other:?}"))),
    };
    let mut conn = pool.acquire().await?;
    let claimed = sql::job_claim_one_for_test(&mut conn, &kind, Some(id), TEST_WORKER).await?;
    drop(conn);
    let Some(claimed) = claimed else {
        return Err(crate::Error::Testing(format!("job {id} was not runnable (scheduled for later?)")));
    };
    let claimed = Claimed { id, attempt: claimed.attempts, max_attempts: claimed.max_attempts };
    match fail(pool, claimed, TEST_WORKER, JobError::retry(error)).await? {
        Failed::Dead(_) => Ok(id),
        other => Err(crate::Error::Testing(format!("job {id} did not die: {other:?}"))),
    }
}

/// Waits until `queue` holds no live job (waiting, scheduled, running or retrying), checking
/// every 20 ms; `false` if some were still there after `deadline`.
pub async fn wait_until_drained(pool: &PgPool, queue: &str, deadline: Duration) -> Result<bool> {
    let start = Instant::now();
    loop {
        if sql::job_count_in_queue(pool, queue).await? == 0 {
            return Ok(true);
        }
        if start.elapsed() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls `check` every 20 ms until it returns `Some`, and returns that; panics with `what`
/// after `deadline`. For tests: wait on the condition itself, never sleep and hope.
///
/// ```no_run
/// # async fn example(pool: sqlx::PgPool) {
/// use std::time::Duration;
///
/// let dead: i64 = backstop::testing::eventually("a dead letter", Duration::from_secs(10), || async {
///     let n: i64 = sqlx::query_scalar("select count(*) from backstop.dead_jobs").fetch_one(&pool).await.ok()?;
///     (n > 0).then_some(n)
/// })
/// .await;
/// # }
/// ```
pub async fn eventually<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(start.elapsed() < deadline, "waited {deadline:?} for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
