//! Finding jobs the way a console does: by state, queue, kind, payload and error text, a keyset
//! page at a time, plus per-queue counts that stay cheap on tables of millions of rows.

use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, PgPool};

use super::{DeadJob, JobRecord, JobState, MAX_COUNT};
use crate::job::JobId;
use crate::rows::QueueCounts;
use crate::{Result, sql};

/// Filters shared by live and dead jobs. Every field is optional; set fields must all match.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct JobSearch {
    /// Only this queue.
    pub queue: Option<String>,
    /// Only this kind.
    pub kind: Option<String>,
    /// Only jobs whose payload contains this JSON (`payload @> value`): `{"user_id": 42}`
    /// matches any payload with that key and value, whatever else it holds.
    pub payload_contains: Option<serde_json::Value>,
    /// Only jobs whose last error has these words (PostgreSQL full-text search, no stemming;
    /// `"connection refused"` in quotes for a phrase, `-word` to exclude).
    pub error_text: Option<String>,
    /// Only jobs enqueued (live jobs) or dead (dead jobs) at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only jobs enqueued (live jobs) or dead (dead jobs) before this time.
    pub until: Option<DateTime<Utc>>,
    /// Only dead jobs of this error group (see [`crate::triage`]); matches no live job.
    pub group: Option<i64>,
}

impl JobSearch {
    /// The filter's SQL arguments. A NUL character anywhere is refused here with a clear
    /// error: PostgreSQL refuses it in text and jsonb, and no stored job can hold one.
    fn args(&self) -> Result<sql::FilterArgs<'_>> {
        let texts = [self.queue.as_deref(), self.kind.as_deref(), self.error_text.as_deref()];
        let nul_in_payload = self
            .payload_contains
            .as_ref()
            .is_some_and(|value| crate::text::value_nul_location(value, "$").is_some());
        if nul_in_payload || texts.iter().flatten().any(|text| text.contains('\0')) {
            return Err(crate::Error::InvalidOption(
                "a search must not contain the NUL character (no job can hold one)".into(),
            ));
        }
        Ok(sql::FilterArgs {
            queue: self.queue.as_deref(),
            kind: self.kind.as_deref(),
            payload_contains: self.payload_contains.as_ref().map(serde_json::Value::to_string),
            error_search: self.error_text.as_deref().filter(|text| !text.trim().is_empty()),
            since: self.since,
            until: self.until,
            group: self.group,
        })
    }
}

/// Live jobs newest first (highest id first), one keyset page at a time: pass the last id of
/// the previous page as `before`. `state` narrows to one state; [`JobState::Dead`] matches
/// nothing here (dead jobs are in [`search_dead_jobs`]).
pub async fn search_jobs<'e, E: PgExecutor<'e>>(
    executor: E,
    state: Option<JobState>,
    search: &JobSearch,
    before: Option<JobId>,
    limit: i64,
) -> Result<Vec<JobRecord>> {
    let Some(state) = state_name(state) else { return Ok(Vec::new()) };
    Ok(sql::job_search(executor, state, &search.args()?, before, limit.clamp(1, 1000)).await?)
}

/// Dead jobs newest first, one keyset page at a time: pass the last row's `(died_at, id)` as
/// `before`. Discarded jobs only with `include_discarded`.
pub async fn search_dead_jobs<'e, E: PgExecutor<'e>>(
    executor: E,
    search: &JobSearch,
    include_discarded: bool,
    before: Option<(DateTime<Utc>, JobId)>,
    limit: i64,
) -> Result<Vec<DeadJob>> {
    Ok(sql::dead_job_search(executor, &search.args()?, include_discarded, before, limit.clamp(1, 1000))
        .await?)
}

/// How many live jobs match `state` and `search`, counted up to `cap` (so a count never
/// costs more than reading `cap` rows): show "100,000+" when it returns `cap`. A `cap` over
/// [`MAX_COUNT`] is refused with [`Error::OverLimit`](crate::Error::OverLimit).
pub async fn count_jobs<'e, E: PgExecutor<'e>>(
    executor: E,
    state: Option<JobState>,
    search: &JobSearch,
    cap: i64,
) -> Result<i64> {
    check_count_cap(cap)?;
    let Some(state) = state_name(state) else { return Ok(0) };
    Ok(sql::job_count(executor, state, &search.args()?, cap.max(1)).await?)
}

/// How many dead jobs match `search`, counted up to `cap` (at most [`MAX_COUNT`]).
pub async fn count_dead_jobs<'e, E: PgExecutor<'e>>(
    executor: E,
    search: &JobSearch,
    include_discarded: bool,
    cap: i64,
) -> Result<i64> {
    check_count_cap(cap)?;
    Ok(sql::dead_job_count(executor, &search.args()?, include_discarded, cap.max(1)).await?)
}

/// Refuses a count cap over [`MAX_COUNT`].
fn check_count_cap(cap: i64) -> Result<()> {
    if cap > MAX_COUNT {
        return Err(crate::Error::OverLimit {
            what: "rows one count reads",
            given: u64::try_from(cap).unwrap_or(0),
            limit: MAX_COUNT as u64,
        });
    }
    Ok(())
}

/// The SQL name of a live state: `Some(None)` for every live state, `None` for
/// [`JobState::Dead`] (which no live job is in).
fn state_name(state: Option<JobState>) -> Option<Option<&'static str>> {
    match state {
        Some(JobState::Dead) => None,
        live => Some(live.map(JobState::as_str)),
    }
}

/// Up to this many rows a table is counted exactly; above it, [`queue_counts`] counts a block
/// sample of about this many rows and scales up, so the cost stays flat as tables grow.
pub const EXACT_COUNT_LIMIT: f64 = 20_000.0;

/// Jobs per queue and state, live and dead, with each queue's paused flag. Exact for tables
/// up to [`EXACT_COUNT_LIMIT`] rows, estimated from a sample above (marked `exact: false`).
pub async fn queue_counts(pool: &PgPool) -> Result<Vec<QueueCounts>> {
    let sample_percent = |rows: Option<f64>| match rows {
        Some(rows) if rows > EXACT_COUNT_LIMIT => (EXACT_COUNT_LIMIT / rows * 100.0).max(0.01),
        _ => 100.0,
    };
    let live = sql::table_row_estimate(pool, "backstop.jobs").await?;
    let dead = sql::table_row_estimate(pool, "backstop.dead_jobs").await?;
    Ok(sql::queue_counts(pool, sample_percent(live), sample_percent(dead)).await?)
}

/// A worker process that has checked in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerProcess {
    /// Its id (host, pid and a random suffix).
    pub id: String,
    /// The queues it works.
    pub queues: Vec<String>,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// Its last heartbeat.
    pub last_seen: DateTime<Utc>,
}

/// Worker processes, oldest first. A process that stopped heartbeating stays listed until
/// maintenance removes it; compare `last_seen` with the heartbeat timeout.
pub async fn workers<'e, E: PgExecutor<'e>>(executor: E) -> Result<Vec<WorkerProcess>> {
    Ok(sql::worker_list(executor)
        .await?
        .into_iter()
        .map(|w| WorkerProcess {
            id: w.id,
            queues: w.queues,
            started_at: w.started_at,
            last_seen: w.last_seen,
        })
        .collect())
}
