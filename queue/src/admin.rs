//! Reading and acting on jobs, for consoles and scripts: list, retry, discard, delete.
//!
//! Every bulk action takes ids (at most [`MAX_IDS_PER_ACTION`]) and returns how many rows
//! actually changed, so a caller can report "retried 98 of 100 (2 were running)". Jobs a
//! worker holds are never touched.

use chrono::{DateTime, Utc};
use sqlx::{Acquire, PgExecutor, Postgres};

use crate::Result;
use crate::job::JobId;
use crate::sql;

pub use crate::rows::{
    AttemptError, AuditEntry, DeadJob, HealthAlert, JobRecord, QueueCounts, QueueHealth,
    UNREADABLE_PAYLOAD_KEY,
};
pub use crate::sql::StatsRow;
pub use crate::state::JobState;

mod audit;
mod bulk;
mod health;
mod search;

pub use audit::{AuditFilter, BulkAudit, audit_log, record_action};
pub(crate) use bulk::close as close_bulk_audit;
pub use bulk::{
    BulkOutcome, BulkStep, DeadAction, LiveAction, act_on_dead_jobs, act_on_dead_matching,
    act_on_dead_matching_step, act_on_jobs, act_on_jobs_matching, act_on_jobs_matching_step,
};
pub use health::{
    WAITING_COUNT_CAP, health_alert_announce, health_alert_clear, health_alert_seen, health_alerts,
    oldest_transaction_age, queue_health,
};
pub use search::{
    EXACT_COUNT_LIMIT, JobSearch, WorkerProcess, count_dead_jobs, count_jobs, queue_counts, search_dead_jobs,
    search_jobs, workers,
};

/// The most ids one action takes (retry, discard, delete, run now, cancel): each is one
/// statement holding locks on every row it touches, so a bigger request is refused with
/// [`Error::OverLimit`](crate::Error::OverLimit) rather than run. Act on more jobs in pages, as
/// [`act_on_dead_matching`] and [`act_on_jobs_matching`] do.
pub const MAX_IDS_PER_ACTION: usize = 1_000;

/// The highest `cap` [`count_jobs`] and [`count_dead_jobs`] take: a count reads up to `cap`
/// rows, so an unbounded cap is an unbounded scan. (The console counts up to 100,000.)
pub const MAX_COUNT: i64 = 1_000_000;

/// Refuses more than [`MAX_IDS_PER_ACTION`] ids.
pub(crate) fn check_ids(ids: &[JobId]) -> Result<()> {
    if ids.len() > MAX_IDS_PER_ACTION {
        return Err(crate::Error::OverLimit {
            what: "job ids in one action",
            given: ids.len() as u64,
            limit: MAX_IDS_PER_ACTION as u64,
        });
    }
    Ok(())
}

/// Which dead jobs to list.
#[derive(Debug, Clone, Default)]
pub struct DeadJobFilter {
    /// Only this queue.
    pub queue: Option<String>,
    /// Only this kind.
    pub kind: Option<String>,
    /// Include jobs an operator discarded.
    pub include_discarded: bool,
    /// Only jobs older than this `(died_at, id)` cursor: pass the last row of the previous page.
    pub before: Option<(DateTime<Utc>, JobId)>,
    /// Page size (default 50, at most 1000).
    pub limit: Option<i64>,
}

/// A live job by id.
pub async fn job<'e, E: PgExecutor<'e>>(executor: E, id: JobId) -> Result<Option<JobRecord>> {
    Ok(sql::job_get(executor, id).await?)
}

/// Live jobs (optionally of one queue) in the order workers will take them.
pub async fn jobs<'e, E: PgExecutor<'e>>(
    executor: E,
    queue: Option<&str>,
    limit: i64,
) -> Result<Vec<JobRecord>> {
    Ok(sql::job_list(executor, queue, limit.clamp(1, 1000)).await?)
}

/// A dead job by id.
pub async fn dead_job<'e, E: PgExecutor<'e>>(executor: E, id: JobId) -> Result<Option<DeadJob>> {
    Ok(sql::dead_job_get(executor, id).await?)
}

/// Dead jobs, newest first, one keyset page at a time. (For payload, error-text and time
/// filters, see [`search_dead_jobs`].)
pub async fn dead_jobs<'e, E: PgExecutor<'e>>(executor: E, filter: &DeadJobFilter) -> Result<Vec<DeadJob>> {
    let search = JobSearch { queue: filter.queue.clone(), kind: filter.kind.clone(), ..JobSearch::default() };
    search_dead_jobs(executor, &search, filter.include_discarded, filter.before, filter.limit.unwrap_or(50))
        .await
}

/// What [`retry_dead_jobs`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RetryOutcome {
    /// Dead jobs moved back to the queue.
    pub retried: u64,
    /// Dead jobs that stayed dead because a live job holds their unique key (one enqueued
    /// since, or another dead job with the same key retried first), lowest id first. Retry
    /// them once that job is done.
    pub key_taken: Vec<JobId>,
}

/// Moves dead jobs back to the queue to run now, attempts reset, error history kept. A job
/// whose unique key a live job holds stays dead and is listed in
/// [`RetryOutcome::key_taken`]: among dead jobs that once held the same key, the lowest id is
/// retried and the others are skipped; an enqueue that takes the key meanwhile is no error
/// either. Ids that are not dead jobs are neither retried nor listed.
pub async fn retry_dead_jobs<'e, E: PgExecutor<'e>>(executor: E, ids: &[JobId]) -> Result<RetryOutcome> {
    check_ids(ids)?;
    let done = sql::dead_job_retry_many(executor, ids).await?;
    Ok(RetryOutcome { retried: u64::try_from(done.retried).unwrap_or(0), key_taken: done.key_taken })
}

/// Replaces a dead job's payload and moves it back to the queue: for a job that died of bad
/// arguments. Returns whether it moved (`false`: no such dead job, or its unique key is held by
/// a live job; then nothing changed). The payload must fit `max_payload_bytes`, hold no NUL
/// character and nest at most [`MAX_PAYLOAD_DEPTH`](crate::MAX_PAYLOAD_DEPTH) deep, as at
/// enqueue; and it must not be the marker a payload that could not be read is shown as
/// ([`UNREADABLE_PAYLOAD_KEY`]), so that saving the form unchanged cannot overwrite it.
///
/// Pass a pool, or your own transaction (`&mut tx`) to record the change in the same
/// transaction, as an audit log must; the two writes are all or nothing either way (a
/// savepoint inside your transaction).
pub async fn retry_dead_job_with_payload<'c>(
    conn: impl Acquire<'c, Database = Postgres>,
    id: JobId,
    payload: &serde_json::Value,
    max_payload_bytes: usize,
) -> Result<bool> {
    if payload.as_object().is_some_and(|map| map.len() == 1 && map.contains_key(UNREADABLE_PAYLOAD_KEY)) {
        return Err(crate::Error::InvalidOption(
            "this is the marker shown for a stored payload that could not be read, not a payload: \
             write the new payload in full"
                .into(),
        ));
    }
    let mut tx = conn.begin().await?;
    if let Some(location) = crate::text::value_nul_location(payload, "$") {
        let kind = dead_job_kind(&mut tx, id).await?;
        return Err(crate::Error::UnstorablePayload { kind, location });
    }
    let text = payload.to_string();
    if text.len() > max_payload_bytes {
        let kind = dead_job_kind(&mut tx, id).await?;
        return Err(crate::Error::PayloadTooLarge { kind, size: text.len(), limit: max_payload_bytes });
    }
    let depth = crate::text::json_depth(&text);
    if depth > crate::MAX_PAYLOAD_DEPTH {
        let kind = dead_job_kind(&mut tx, id).await?;
        return Err(crate::Error::PayloadTooDeep { kind, depth, limit: crate::MAX_PAYLOAD_DEPTH });
    }
    let moved = sql::dead_job_set_payload(&mut *tx, id, payload).await?
        && sql::dead_job_retry_many(&mut *tx, &[id]).await?.retried == 1;
    if moved {
        tx.commit().await?;
    }
    Ok(moved)
}

/// The kind of dead job `id`, for an error about it ("unknown" if there is no such job).
async fn dead_job_kind(conn: &mut sqlx::PgConnection, id: JobId) -> Result<String> {
    Ok(dead_job(conn, id).await?.map_or_else(|| "unknown".to_owned(), |job| job.kind))
}

/// Marks dead jobs as discarded: kept for the record, hidden from default lists.
pub async fn discard_dead_jobs<'e, E: PgExecutor<'e>>(executor: E, ids: &[JobId]) -> Result<u64> {
    check_ids(ids)?;
    Ok(sql::dead_job_discard_many(executor, ids).await?)
}

/// Deletes dead jobs for good.
pub async fn delete_dead_jobs<'e, E: PgExecutor<'e>>(executor: E, ids: &[JobId]) -> Result<u64> {
    check_ids(ids)?;
    Ok(sql::dead_job_delete_many(executor, ids).await?)
}

/// Makes waiting, scheduled or retrying jobs run now. Running jobs are skipped.
pub async fn run_jobs_now<'e, E: PgExecutor<'e>>(executor: E, ids: &[JobId]) -> Result<u64> {
    check_ids(ids)?;
    Ok(sql::job_run_now_many(executor, ids).await?)
}

/// Deletes live jobs that are not running.
pub async fn delete_jobs<'e, E: PgExecutor<'e>>(executor: E, ids: &[JobId]) -> Result<u64> {
    check_ids(ids)?;
    Ok(sql::job_delete_many(executor, ids).await?)
}

/// Cancels live jobs that are not running: each moves to the dead-letter table marked
/// `cancelled`, so nothing vanishes without a trace. Pass a pool, or your own transaction
/// (`&mut tx`) to record the cancel in the same transaction; the moves are all or nothing
/// either way (a savepoint inside your transaction).
pub async fn cancel_jobs<'c>(
    conn: impl Acquire<'c, Database = Postgres>,
    ids: &[JobId],
    reason: &str,
) -> Result<u64> {
    check_ids(ids)?;
    let mut tx = conn.begin().await?;
    let cancelled = bulk::cancel(&mut tx, ids, reason).await?;
    tx.commit().await?;
    Ok(cancelled)
}

/// Pauses a queue: workers stop claiming from it (running jobs finish).
pub async fn pause_queue<'e, E: PgExecutor<'e>>(executor: E, queue: &str) -> Result<()> {
    Ok(sql::queue_set_paused(executor, queue, true).await?)
}

/// Resumes a paused queue and wakes its workers.
pub async fn resume_queue<'e, E: PgExecutor<'e>>(executor: E, queue: &str) -> Result<()> {
    Ok(sql::queue_set_paused(executor, queue, false).await?)
}

/// The names of paused queues.
pub async fn paused_queues<'e, E: PgExecutor<'e>>(executor: E) -> Result<Vec<String>> {
    Ok(sql::queue_paused_list(executor).await?)
}

/// Per-minute counters (completed, failed, dead) per queue and kind since `since`.
pub async fn stats_since<'e, E: PgExecutor<'e>>(executor: E, since: DateTime<Utc>) -> Result<Vec<StatsRow>> {
    Ok(sql::job_stats_since(executor, since).await?)
}
