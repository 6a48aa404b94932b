//! graphile-worker's jobs in the console's states, filtered and keyset-paginated by id.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;

use super::GraphileSchema;
use crate::{JobState, Result};

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
    /// security hides the private table's rows from roles that do not own it).
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

/// The same columns from the private tables (payload included) ...
macro_rules! private_source {
    () => {
        "select j.id, q.queue_name, t.identifier as task_identifier, j.payload::jsonb as payload,
                j.priority::int as priority, j.run_at, j.attempts::int as attempts,
                j.max_attempts::int as max_attempts, j.last_error, j.created_at, j.updated_at, j.key,
                j.locked_at, j.locked_by
         from graphile_worker._private_jobs j
         join graphile_worker._private_tasks t on t.id = j.task_id
         left join graphile_worker._private_job_queues q on q.id = j.job_queue_id"
    };
}

/// ... or from the public view (no payload).
macro_rules! view_source {
    () => {
        "select id, queue_name, task_identifier, null::jsonb as payload, priority::int as priority,
                run_at, attempts::int as attempts, max_attempts::int as max_attempts, last_error,
                created_at, updated_at, key, locked_at, locked_by
         from graphile_worker.jobs"
    };
}

/// A graphile-worker job's state in SQL, the one place it is written (the same rule as
/// [`GraphileJob::state`] in Rust; `graphile_state_rule_agrees_with_rust` checks they agree):
/// whether the row is, at `now()`, in the state the SQL text expression `$name` names (null:
/// any state).
macro_rules! graphile_state_is {
    ($name:literal) => {
        concat!(
            "case ",
            $name,
            "::text
                     when 'running'   then locked_at is not null
                     when 'dead'      then locked_at is null and attempts >= max_attempts
                     when 'retrying'  then locked_at is null and attempts > 0 and attempts < max_attempts
                     when 'scheduled' then locked_at is null and attempts = 0 and run_at > now()
                     when 'queued'    then locked_at is null and attempts = 0 and run_at <= now()
                     else true
                   end"
        )
    };
}

/// Filters over either source's columns: `$1` state, `$2` task, `$3` queue, `$4` error
/// words, `$5` ids, `$6` before id; `$7` the page size; and, with `in_group!`, `$8` an error
/// group.
macro_rules! filtered {
    ($source:expr) => {
        filtered!($source, "")
    };
    ($source:expr, $and:expr) => {
        concat!(
            "select * from (",
            $source,
            ") g
             where ",
            graphile_state_is!("$1"),
            "
               and ($2::text is null or task_identifier = $2)
               and ($3::text is null or queue_name = $3)
               and ($4::text is null
                    or to_tsvector('simple', coalesce(last_error, '')) @@ websearch_to_tsquery('simple', $4))
               and ($5::bigint[] is null or id = any($5))
               and ($6::bigint is null or id < $6)",
            $and,
            "
             order by id desc
             limit $7"
        )
    };
}

/// The error group filter: Backstop's record of which jobs joined the group. Only in the query
/// when asked for, so a role that reads graphile-worker's tables but not Backstop's can still
/// search them.
macro_rules! in_group {
    () => {
        "
               and id in (select s.job_id from backstop.source_job_groups s
                          where s.source = 'graphile_worker' and s.group_id = $8)"
    };
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
    let sql = match (schema.reads_private_tables(), search.group.is_some()) {
        (true, false) => filtered!(private_source!()),
        (true, true) => filtered!(private_source!(), in_group!()),
        (false, false) => filtered!(view_source!()),
        (false, true) => filtered!(view_source!(), in_group!()),
    };
    let query = sqlx::query_as(sql)
        .bind(search.state.map(JobState::as_str))
        .bind(search.task.as_deref())
        .bind(search.queue.as_deref())
        .bind(search.error_text.as_deref().filter(|t| !t.trim().is_empty()))
        .bind(search.ids.as_deref())
        .bind(before)
        .bind(limit.clamp(1, 1000));
    let query = match search.group {
        Some(group) => query.bind(group),
        None => query,
    };
    Ok(query.fetch_all(executor).await?)
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
    let sql = match (schema.reads_private_tables(), search.group.is_some()) {
        (true, false) => concat!("select count(*) from (", filtered!(private_source!()), ") c"),
        (true, true) => concat!("select count(*) from (", filtered!(private_source!(), in_group!()), ") c"),
        (false, false) => concat!("select count(*) from (", filtered!(view_source!()), ") c"),
        (false, true) => concat!("select count(*) from (", filtered!(view_source!(), in_group!()), ") c"),
    };
    let query = sqlx::query_scalar(sql)
        .bind(search.state.map(JobState::as_str))
        .bind(search.task.as_deref())
        .bind(search.queue.as_deref())
        .bind(search.error_text.as_deref().filter(|t| !t.trim().is_empty()))
        .bind(search.ids.as_deref())
        .bind(None::<i64>)
        .bind(cap.max(1));
    let query = match search.group {
        Some(group) => query.bind(group),
        None => query,
    };
    Ok(query.fetch_one(executor).await?)
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
