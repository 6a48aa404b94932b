//! graphile-worker's schema (the Node tool's tables and admin functions), and Backstop's own
//! bookkeeping about its jobs (`source_watermarks`, `source_failures`, `source_job_groups`).
//!
//! Nothing here changes graphile-worker's schema: reads are single short statements, actions
//! are its own admin functions, which skip jobs a worker has locked.

use sqlx::{PgConnection, PgExecutor};

use crate::graphile::{GraphileJob, GraphileSearch};

/// `reschedule_jobs(ids, run_at := now(), attempts := 0)`: how many it changed.
pub(crate) async fn graphile_job_reschedule_now(conn: &mut PgConnection, ids: &[i64]) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "select count(*) from graphile_worker.reschedule_jobs($1, run_at := now(), attempts := 0)",
    )
    .bind(ids)
    .fetch_one(conn)
    .await
}

/// `permanently_fail_jobs(ids, reason)`, each failed job recorded as seen by the failure
/// poller of `source`: how many it changed.
pub(crate) async fn graphile_job_fail_many(
    conn: &mut PgConnection,
    ids: &[i64],
    reason: &str,
    source: &str,
) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "with failed as (select id, run_at, updated_at from graphile_worker.permanently_fail_jobs($1, $2)),
              seen as (
                  insert into backstop.source_failures (source, job_id, run_at, updated_at)
                  select $3, id, run_at, updated_at from failed
                  on conflict (source, job_id)
                  do update set run_at = excluded.run_at, updated_at = excluded.updated_at
                  returning 1)
         select count(*) from seen",
    )
    .bind(ids)
    .bind(reason)
    .bind(source)
    .fetch_one(conn)
    .await
}

/// `complete_jobs(ids)`: how many it deleted.
pub(crate) async fn graphile_job_complete_many(conn: &mut PgConnection, ids: &[i64]) -> sqlx::Result<i64> {
    sqlx::query_scalar("select count(*) from graphile_worker.complete_jobs($1)")
        .bind(ids)
        .fetch_one(conn)
        .await
}

/// Wakes graphile-worker's workers for `count` new jobs: the payload its own `add_jobs` sends
/// on its `jobs:insert` channel.
pub(crate) async fn graphile_jobs_insert_notify(conn: &mut PgConnection, count: i32) -> sqlx::Result<()> {
    sqlx::query("select pg_notify('jobs:insert', json_build_object('r', random(), 'count', $1::int)::text)")
        .bind(count)
        .execute(conn)
        .await
        .map(drop)
}

/// What the catalog says about a `graphile_worker` schema.
#[derive(sqlx::FromRow)]
pub(crate) struct GraphileCatalog {
    pub has_schema: bool,
    pub rust_port: bool,
    pub has_api: bool,
    pub has_migrations: bool,
    pub has_view: bool,
    pub private_readable: bool,
}

pub(crate) async fn graphile_catalog<'e, E: PgExecutor<'e>>(executor: E) -> sqlx::Result<GraphileCatalog> {
    sqlx::query_as(
        "select
            to_regnamespace('graphile_worker') is not null as has_schema,
            to_regclass('graphile_worker._private_workers') is not null as rust_port,
            to_regclass('graphile_worker._private_jobs') is not null
              and to_regclass('graphile_worker._private_tasks') is not null
              and to_regclass('graphile_worker._private_job_queues') is not null
              and to_regprocedure('graphile_worker.reschedule_jobs(bigint[], timestamptz, integer, integer, integer)') is not null
              and to_regprocedure('graphile_worker.permanently_fail_jobs(bigint[], text)') is not null
              and to_regprocedure('graphile_worker.complete_jobs(bigint[])') is not null as has_api,
            to_regclass('graphile_worker.migrations') is not null as has_migrations,
            to_regclass('graphile_worker.jobs') is not null as has_view,
            to_regclass('graphile_worker._private_jobs') is not null
              and has_table_privilege('graphile_worker._private_jobs', 'select') as private_readable",
    )
    .fetch_one(executor)
    .await
}

/// Its latest migration, as recorded in `graphile_worker.migrations`.
pub(crate) async fn graphile_migration_latest<'e, E: PgExecutor<'e>>(
    executor: E,
) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar("select max(id)::text from graphile_worker.migrations").fetch_one(executor).await
}

/// Whether row-level security hides the private jobs table's rows from this role: the public
/// view (which runs as its owner) shows rows, the private table none.
pub(crate) async fn graphile_private_rows_hidden<'e, E: PgExecutor<'e>>(executor: E) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "select exists (select 1 from graphile_worker.jobs)
            and not exists (select 1 from graphile_worker._private_jobs)",
    )
    .fetch_one(executor)
    .await
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
/// `GraphileJob::state` in Rust; `graphile_state_rule_agrees_with_rust` checks they agree):
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

/// Jobs newest first, one keyset page: from the private tables when `private`, else the
/// public view (payloads `None`). `state` is the state's name (`JobState::as_str`).
pub(crate) async fn graphile_job_search<'e, E: PgExecutor<'e>>(
    executor: E,
    private: bool,
    search: &GraphileSearch,
    state: Option<&str>,
    before: Option<i64>,
    limit: i64,
) -> sqlx::Result<Vec<GraphileJob>> {
    let sql = match (private, search.group.is_some()) {
        (true, false) => filtered!(private_source!()),
        (true, true) => filtered!(private_source!(), in_group!()),
        (false, false) => filtered!(view_source!()),
        (false, true) => filtered!(view_source!(), in_group!()),
    };
    let query = sqlx::query_as(sql)
        .bind(state)
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
    query.fetch_all(executor).await
}

/// How many jobs [`graphile_job_search`] would find, counted up to `cap`.
pub(crate) async fn graphile_job_count<'e, E: PgExecutor<'e>>(
    executor: E,
    private: bool,
    search: &GraphileSearch,
    state: Option<&str>,
    cap: i64,
) -> sqlx::Result<i64> {
    let sql = match (private, search.group.is_some()) {
        (true, false) => concat!("select count(*) from (", filtered!(private_source!()), ") c"),
        (true, true) => concat!("select count(*) from (", filtered!(private_source!(), in_group!()), ") c"),
        (false, false) => concat!("select count(*) from (", filtered!(view_source!()), ") c"),
        (false, true) => concat!("select count(*) from (", filtered!(view_source!(), in_group!()), ") c"),
    };
    let query = sqlx::query_scalar(sql)
        .bind(state)
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
    query.fetch_one(executor).await
}

/// A new source starts its history round (existing rows have had theirs: the column's
/// default is true for them).
pub(crate) async fn source_watermark_start(conn: &mut PgConnection, source: &str) -> sqlx::Result<()> {
    sqlx::query(
        "insert into backstop.source_watermarks (source, swept_after, history_done) values ($1, 0, false)
         on conflict do nothing",
    )
    .bind(source)
    .execute(conn)
    .await
    .map(drop)
}

/// The sweep's position and whether its history round is done, locked to the end of the
/// transaction.
pub(crate) async fn source_watermark_lock(
    conn: &mut PgConnection,
    source: &str,
) -> sqlx::Result<(i64, bool)> {
    sqlx::query_as(
        "select swept_after, history_done from backstop.source_watermarks where source = $1 for update",
    )
    .bind(source)
    .fetch_one(conn)
    .await
}

/// Moves the sweep to `swept_after`, marking the history round done when `round_ends`.
pub(crate) async fn source_watermark_advance(
    conn: &mut PgConnection,
    source: &str,
    swept_after: i64,
    round_ends: bool,
) -> sqlx::Result<()> {
    sqlx::query(
        "update backstop.source_watermarks
         set swept_after = $2, history_done = history_done or $3
         where source = $1",
    )
    .bind(source)
    .bind(swept_after)
    .bind(round_ends)
    .execute(conn)
    .await
    .map(drop)
}

/// The slice: `limit` ids above `after` in primary-key order (an index-only scan of their
/// primary key): its last id and how many rows it has.
pub(crate) async fn graphile_job_slice(
    conn: &mut PgConnection,
    after: i64,
    limit: i64,
) -> sqlx::Result<(Option<i64>, i64)> {
    sqlx::query_as(
        "select max(id), count(*) from (
             select id from graphile_worker._private_jobs where id > $1 order by id limit $2
         ) slice",
    )
    .bind(after)
    .bind(limit)
    .fetch_one(conn)
    .await
}

/// A permanently failed graphile-worker job, and whether the poller has seen it as it is.
#[derive(sqlx::FromRow)]
pub(crate) struct GraphileFailed {
    pub id: i64,
    pub task_identifier: String,
    pub queue_name: Option<String>,
    pub last_error: Option<String>,
    pub run_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    pub seen: bool,
}

/// The permanently failed, unlocked jobs with ids in `(after, until]`.
pub(crate) async fn graphile_job_failed_between(
    conn: &mut PgConnection,
    source: &str,
    after: i64,
    until: i64,
) -> sqlx::Result<Vec<GraphileFailed>> {
    sqlx::query_as(
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
    .bind(source)
    .bind(after)
    .bind(until)
    .fetch_all(conn)
    .await
}

/// Records which error group a source's job joined.
pub(crate) async fn source_job_group_set(
    conn: &mut PgConnection,
    source: &str,
    job_id: i64,
    group_id: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "insert into backstop.source_job_groups (source, job_id, group_id) values ($1, $2, $3)
         on conflict (source, job_id) do update set group_id = excluded.group_id",
    )
    .bind(source)
    .bind(job_id)
    .bind(group_id)
    .execute(conn)
    .await
    .map(drop)
}

/// Records failures as seen, each with the `run_at` and `updated_at` it had.
pub(crate) async fn source_failure_record_many(
    conn: &mut PgConnection,
    source: &str,
    ids: &[i64],
    run_ats: &[chrono::DateTime<chrono::Utc>],
    updated_ats: &[chrono::DateTime<chrono::Utc>],
) -> sqlx::Result<()> {
    sqlx::query(
        "insert into backstop.source_failures (source, job_id, run_at, updated_at)
         select $1, * from unnest($2::bigint[], $3::timestamptz[], $4::timestamptz[])
         on conflict (source, job_id) do update set run_at = excluded.run_at, updated_at = excluded.updated_at",
    )
    .bind(source)
    .bind(ids)
    .bind(run_ats)
    .bind(updated_ats)
    .execute(conn)
    .await
    .map(drop)
}

/// Forgets the seen failures with ids in `(after, until]` other than `still_failed`.
pub(crate) async fn source_failure_forget_others(
    conn: &mut PgConnection,
    source: &str,
    after: i64,
    until: i64,
    still_failed: &[i64],
) -> sqlx::Result<()> {
    sqlx::query(
        "delete from backstop.source_failures
         where source = $1 and job_id > $2 and job_id <= $3 and job_id <> all($4)",
    )
    .bind(source)
    .bind(after)
    .bind(until)
    .bind(still_failed)
    .execute(conn)
    .await
    .map(drop)
}
