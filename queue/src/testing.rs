//! Test helpers (feature `testing`): the runtime's steps one at a time (claim, complete, fail,
//! rescue), through the same statements the runner uses, so a test can walk jobs through their
//! lives in an order it chooses instead of the order a running [`Runner`](crate::Runner)
//! happens to take.
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

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use crate::job::{JobError, JobId};
use crate::runtime::{Failure, Recorded, record_or_hand_back};
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
    let jobs = sql::job_claim_batch(&mut conn, queue, worker_id, limit, None).await?;
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
    Ok(crate::runtime::rescue_stale_jobs(pool, heartbeat_timeout, now).await?)
}
