//! graphile-worker's jobs in the console's states, filtered and keyset-paginated by id.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;

use super::GraphileSchema;
use crate::{JobState, Result, sql};

/// One graphile-worker job.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct GraphileJob {
    /// Its id.
    pub id: i64,
    /// Its named queue, if any (graphile-worker runs queued jobs of one name in series).
    pub queue_name: Option<String>,
    /// Its task identifier (the console's "kind").
    pub task_identifier: String,
    /// Its payload; `None` when it cannot be read (the public view has none, and row-level
    /// security hides the private table's rows from roles that do not own it). A marker object
    /// if serde_json cannot read it (see [`crate::admin::UNREADABLE_PAYLOAD_KEY`]).
    #[sqlx(try_from = "crate::rows::ReadableJsonOrNull")]
    pub payload: Option<serde_json::Value>,
    /// Lower runs first.
    pub priority: i32,
    /// When it may run next.
    pub run_at: DateTime<Utc>,
    /// Attempts made.
    pub attempts: i32,
    /// Attempts allowed.
    pub max_attempts: i32,
    /// The latest attempt's error.
    pub last_error: Option<String>,
    /// When it was added.
    pub created_at: DateTime<Utc>,
    /// When it was added, re-keyed, rescheduled or failed by `permanently_fail_jobs` (graphile-worker
    /// 0.18 leaves it alone when a worker fails the job).
    pub updated_at: DateTime<Utc>,
    /// Its job key, if any.
    pub key: Option<String>,
    /// When a worker locked it, if one holds it.
    pub locked_at: Option<DateTime<Utc>>,
    /// Which worker holds it.
    pub locked_by: Option<String>,
}

impl GraphileJob {
    /// Its state as of `now`. graphile-worker has no dead-letter table: a job whose attempts
    /// reached its maximum and that no worker holds stays in its table, "permanently failed";
    /// that is what [`JobState::Dead`] means here. The same rule in SQL is
    /// `graphile_state_is!`; a test checks they agree.
    pub fn state(&self, now: DateTime<Utc>) -> JobState {
        if self.locked_at.is_some() {
            JobState::Running
        } else if self.attempts >= self.max_attempts {
            JobState::Dead
        } else if self.attempts > 0 {
            JobState::Retrying
        } else if self.run_at > now {
            JobState::Scheduled
        } else {
            JobState::Queued
        }
    }
}

/// What to look for.
#[derive(Debug, Clone, Default)]
pub struct GraphileSearch {
    /// Only jobs in this state.
    pub state: Option<JobState>,
    /// Only this task identifier.
    pub task: Option<String>,
    /// Only this queue name.
    pub queue: Option<String>,
    /// Only jobs whose last error has these words (full-text, as for Backstop's jobs).
    pub error_text: Option<String>,
    /// Only these ids.
    pub ids: Option<Vec<i64>>,
    /// Only the jobs of this error group (as recorded when they failed), looked up in the
    /// query itself: a group of a million jobs costs a page, not a million ids.
    pub group: Option<i64>,
}

/// Jobs newest first (highest id first), one keyset page at a time: pass the last id as
/// `before`. Reads the private tables when the schema is supported and readable, else the
/// public view (payloads `None`).
pub async fn search<'e, E: PgExecutor<'e>>(
    executor: E,
    schema: &GraphileSchema,
    search: &GraphileSearch,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<GraphileJob>> {
    if !schema.readable() {
        return Ok(Vec::new());
    }
    let state = search.state.map(JobState::as_str);
    let private = schema.reads_private_tables();
    Ok(sql::graphile_job_search(executor, private, search, state, before, limit).await?)
}

/// How many jobs match, counted up to `cap`.
pub async fn count<'e, E: PgExecutor<'e>>(
    executor: E,
    schema: &GraphileSchema,
    search: &GraphileSearch,
    cap: i64,
) -> Result<i64> {
    if !schema.readable() {
        return Ok(0);
    }
    let state = search.state.map(JobState::as_str);
    Ok(sql::graphile_job_count(executor, schema.reads_private_tables(), search, state, cap).await?)
}

/// One job by id.
pub async fn graphile_job<'e, E: PgExecutor<'e>>(
    executor: E,
    schema: &GraphileSchema,
    id: i64,
) -> Result<Option<GraphileJob>> {
    let search = GraphileSearch { ids: Some(vec![id]), ..GraphileSearch::default() };
    Ok(self::search(executor, schema, &search, None, 1).await?.pop())
}
