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
use crate::triage;

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

#[derive(sqlx::FromRow)]
struct Failed {
    id: i64,
    task_identifier: String,
    queue_name: Option<String>,
    last_error: Option<String>,
    run_at: chrono::DateTime<chrono::Utc>,
    updated_at: chrono::DateTime<chrono::Utc>,
    seen: bool,
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
    sqlx::query(
        "insert into backstop.source_watermarks (source, swept_after, history_done) values ($1, 0, false)
         on conflict do nothing",
    )
    .bind(SOURCE)
    .execute(&mut *tx)
    .await?;
    let (after, history_done): (i64, bool) = sqlx::query_as(
        "select swept_after, history_done from backstop.source_watermarks where source = $1 for update",
    )
    .bind(SOURCE)
    .fetch_one(&mut *tx)
    .await?;
    // The slice: SLICE ids in primary-key order (an index-only scan of their primary key).
    let (slice_end, slice_rows): (Option<i64>, i64) = sqlx::query_as(
        "select max(id), count(*) from (
             select id from graphile_worker._private_jobs where id > $1 order by id limit $2
         ) slice",
    )
    .bind(after)
    .bind(SLICE)
    .fetch_one(&mut *tx)
    .await?;
    // The last slice of a round covers everything above its start, so jobs deleted at the top
    // of the table leave nothing behind in `source_failures`.
    let round_ends = slice_rows < SLICE;
    let until = if round_ends { i64::MAX } else { slice_end.unwrap_or(after) };
    let failed: Vec<Failed> = sqlx::query_as(
        "select j.id, t.identifier as task_identifier, q.queue_name, j.last_error, j.run_at, j.updated_at,
                -- Seen as it is now: the same failure. Seen with another run_at or updated_at:
                -- the job ran (or was failed) again since. A lookup per failed job of the
                -- slice (a join would read all of source_failures).
                coalesce((select s.run_at = j.run_at and s.updated_at = j.updated_at
                          from backstop.source_failures s
                          where s.source = $1 and s.job_id = j.id), false) as seen
         from graphile_worker._private_jobs j
         join graphile_worker._private_tasks t on t.id = j.task_id
         left join graphile_worker._private_job_queues q on q.id = j.job_queue_id
         where j.id > $2 and j.id <= $3
           and j.attempts >= j.max_attempts and j.locked_at is null
         order by j.id",
    )
    .bind(SOURCE)
    .bind(after)
    .bind(until)
    .fetch_all(&mut *tx)
    .await?;
    let mut recorded = Vec::new();
    for job in failed.iter().filter(|job| !job.seen) {
        let error = job.last_error.as_deref().unwrap_or("(no error recorded)");
        let queue = job.queue_name.as_deref().unwrap_or("default");
        let arrival =
            triage::record_arrival(&mut tx, SOURCE, &job.task_identifier, queue, error, job.id).await?;
        sqlx::query(
            "insert into backstop.source_job_groups (source, job_id, group_id) values ($1, $2, $3)
             on conflict (source, job_id) do update set group_id = excluded.group_id",
        )
        .bind(SOURCE)
        .bind(job.id)
        .bind(arrival.group_id)
        .execute(&mut *tx)
        .await?;
        recorded.push((job.id, job.run_at, job.updated_at, arrival.group_id));
    }
    if !recorded.is_empty() {
        let ids: Vec<i64> = recorded.iter().map(|r| r.0).collect();
        let run_ats: Vec<_> = recorded.iter().map(|r| r.1).collect();
        let updated_ats: Vec<_> = recorded.iter().map(|r| r.2).collect();
        sqlx::query(
            "insert into backstop.source_failures (source, job_id, run_at, updated_at)
             select $1, * from unnest($2::bigint[], $3::timestamptz[], $4::timestamptz[])
             on conflict (source, job_id) do update set run_at = excluded.run_at, updated_at = excluded.updated_at",
        )
        .bind(SOURCE)
        .bind(&ids)
        .bind(&run_ats)
        .bind(&updated_ats)
        .execute(&mut *tx)
        .await?;
    }
    // Jobs of the slice that are no longer failed (retried, deleted): forget them.
    let failed_ids: Vec<i64> = failed.iter().map(|job| job.id).collect();
    sqlx::query(
        "delete from backstop.source_failures
         where source = $1 and job_id > $2 and job_id <= $3 and job_id <> all($4)",
    )
    .bind(SOURCE)
    .bind(after)
    .bind(until)
    .bind(&failed_ids)
    .execute(&mut *tx)
    .await?;
    if !history_done && history == History::Quiet && !recorded.is_empty() {
        let groups: Vec<i64> = recorded.iter().map(|r| r.3).collect();
        silence_history(&mut tx, &groups).await?;
    }
    sqlx::query(
        "update backstop.source_watermarks
         set swept_after = $2, history_done = history_done or $3
         where source = $1",
    )
    .bind(SOURCE)
    .bind(if round_ends { 0 } else { until })
    .bind(round_ends)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Poll { recorded: recorded.len() as u64, history_pending: !history_done && !round_ends })
}

/// Takes back what recording the history called for: the alert jobs this transaction enqueued,
/// and the arrivals it left for the next digest in these `groups`.
async fn silence_history(tx: &mut sqlx::PgConnection, groups: &[i64]) -> Result<()> {
    sqlx::query(
        "delete from backstop.jobs
         -- alert jobs wait unlocked on queue 'backstop' (jobs_claim_order serves this); those
         -- this transaction inserted carry its id
         where queue = 'backstop' and locked_by is null and kind = 'backstop.slack_alert'
           and xmin = pg_current_xact_id()::xid",
    )
    .execute(&mut *tx)
    .await?;
    // Only this poller writes graphile-worker's groups, and it holds the watermark row: every
    // arrival not yet reported in these groups is history.
    sqlx::query("update backstop.error_groups set digested_total = total where id = any($1)")
        .bind(groups)
        .execute(&mut *tx)
        .await?;
    Ok(())
}
