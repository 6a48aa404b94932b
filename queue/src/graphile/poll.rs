//! Bringing graphile-worker's permanently failed jobs into Backstop's error groups (and so its
//! alerts) without a trigger or an index on its tables: each poll reads one bounded slice of its
//! jobs table in primary-key order, and the slices go round the table.
//!
//! Why not a watermark on `updated_at`: graphile-worker 0.18 does not set `updated_at` when a
//! worker fails a job (only when a job is added, re-keyed or failed by its admin function), no
//! index serves a search on it, and a failure whose transaction commits after a poll can carry
//! any time. The sweep instead compares what it reads with what it has seen
//! (`backstop.source_failures`): a failed job it has not seen, or has seen with another
//! `run_at` / `updated_at` (a job retried and failing again moves them), is a new failure,
//! whenever it committed.
//!
//! Measured 2026-11-29 on graphile-worker 0.18's table with 1,000,000 jobs (10,000 of them
//! failed), PostgreSQL 15, 2 shared cores: the watermark query took 180-200 ms every poll (a
//! parallel scan of all 13,000 pages with two workers, then a sort), whatever was new. A whole
//! poll of the sweep (`bench_polls_on_a_million_jobs` in `queue/tests/graphile.rs`: a
//! 10,000-row index-only scan of the primary key for the slice, the slice's failed rows with a
//! primary-key lookup each in `source_failures`, forgetting retried jobs, moving its place)
//! takes 17 ms (p50; p95 32 ms), whatever the table's size; the first round, grouping the
//! 10,000 failures as history, took 13 s. The price is latency on big tables: a failure is
//! found within one round, ceil(rows / 10,000) polls of two seconds, so within a poll up to
//! 10,000 jobs and within about 3.5 minutes at 1,000,000.

use sqlx::PgPool;

use super::{GraphileSchema, SOURCE};
use crate::Result;
use crate::{sql, triage};

/// Jobs read per poll: the bound on each poll's read of graphile-worker's table.
pub const SLICE: i64 = 10_000;

/// What to do with the failures already there the first time Backstop looks: those found in
/// the first round over the table (a failure committed during that round, seconds on a large
/// table, may be taken for history too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum History {
    /// Group them (they show in triage) but send no alert and leave nothing for the digest:
    /// alerts start with the failures after the console first starts.
    #[default]
    Quiet,
    /// Alert them as new failures (`--graphile-alert-history`).
    Alert,
}

/// What one poll did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Poll {
    /// Failures recorded in their groups.
    pub recorded: u64,
    /// Whether the first round over the table (the history) is still going on: poll again
    /// at once rather than after the usual wait.
    pub history_pending: bool,
}

/// Reads the next slice of graphile-worker's jobs and records the failures in it that are new
/// in their error groups, in one transaction with the sweep's position (two consoles polling
/// at once take turns; none is counted twice). A job retried and failing for good again is a
/// new arrival; a job the console discarded or cancelled is not (see
/// [`act_on_graphile_jobs`](super::act_on_graphile_jobs)). Needs the private tables (a
/// supported, readable schema); otherwise records nothing.
pub async fn record_failures(pool: &PgPool, schema: &GraphileSchema, history: History) -> Result<Poll> {
    if !schema.reads_private_tables() {
        return Ok(Poll { recorded: 0, history_pending: false });
    }
    let mut tx = pool.begin().await?;
    // A new source starts its history round (existing rows have had theirs: the column's
    // default is true for them).
    sql::source_watermark_start(&mut tx, SOURCE).await?;
    let (after, history_done) = sql::source_watermark_lock(&mut tx, SOURCE).await?;
    // The slice: SLICE ids in primary-key order (an index-only scan of their primary key).
    let (slice_end, slice_rows) = sql::graphile_job_slice(&mut tx, after, SLICE).await?;
    // The last slice of a round covers everything above its start, so jobs deleted at the top
    // of the table leave nothing behind in `source_failures`.
    let round_ends = slice_rows < SLICE;
    let until = if round_ends { i64::MAX } else { slice_end.unwrap_or(after) };
    let failed = sql::graphile_job_failed_between(&mut tx, SOURCE, after, until).await?;
    let mut recorded = Vec::new();
    for job in failed.iter().filter(|job| !job.seen) {
        let error = job.last_error.as_deref().unwrap_or("(no error recorded)");
        let queue = job.queue_name.as_deref().unwrap_or("default");
        let arrival =
            triage::record_arrival(&mut tx, SOURCE, &job.task_identifier, queue, error, job.id).await?;
        sql::source_job_group_set(&mut tx, SOURCE, job.id, arrival.group_id).await?;
        recorded.push((job.id, job.run_at, job.updated_at, arrival.group_id));
    }
    if !recorded.is_empty() {
        let ids: Vec<i64> = recorded.iter().map(|r| r.0).collect();
        let run_ats: Vec<_> = recorded.iter().map(|r| r.1).collect();
        let updated_ats: Vec<_> = recorded.iter().map(|r| r.2).collect();
        sql::source_failure_record_many(&mut tx, SOURCE, &ids, &run_ats, &updated_ats).await?;
    }
    // Jobs of the slice that are no longer failed (retried, deleted): forget them.
    let failed_ids: Vec<i64> = failed.iter().map(|job| job.id).collect();
    sql::source_failure_forget_others(&mut tx, SOURCE, after, until, &failed_ids).await?;
    if !history_done && history == History::Quiet && !recorded.is_empty() {
        let groups: Vec<i64> = recorded.iter().map(|r| r.3).collect();
        silence_history(&mut tx, &groups).await?;
    }
    sql::source_watermark_advance(&mut tx, SOURCE, if round_ends { 0 } else { until }, round_ends).await?;
    tx.commit().await?;
    Ok(Poll { recorded: recorded.len() as u64, history_pending: !history_done && !round_ends })
}

/// Takes back what recording the history called for: the alert jobs this transaction enqueued,
/// and the arrivals it left for the next digest in these `groups`.
async fn silence_history(tx: &mut sqlx::PgConnection, groups: &[i64]) -> Result<()> {
    triage::delete_alerts_enqueued_here(&mut *tx).await?;
    // Only this poller writes graphile-worker's groups, and it holds the watermark row: every
    // arrival not yet reported in these groups is history.
    sql::error_group_mark_digested(&mut *tx, groups).await?;
    Ok(())
}
