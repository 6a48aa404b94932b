//! Every SQL statement of Backstop, as noun-first functions taking an executor: jobs, workers,
//! queues and cron here, and one file per table or area in `sql/` (the audit log, error groups,
//! alerts, graphile-worker's schema and Backstop's bookkeeping about it, queue health,
//! migration history, search).
//!
//! The runtime, the admin API, maintenance, triage and the graphile-worker poller call these,
//! and the console reaches the ones it needs through the crate's API; nothing else in the
//! project writes SQL (`scripts/check-sql-placement.sh`, run by `./dev check` and CI, fails
//! on a statement elsewhere; tests, comments, the demo's own schema and `bench/` are exempt).
//!
//! Statements are checked by the integration tests in `queue/tests`, which run each one
//! against a real PostgreSQL. Functions take `now: Option<DateTime<Utc>>` where time decides
//! the outcome, so tests can control the clock (`None` means the database's `now()`).

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};

use crate::rows::{DeadJob, JobRecord};
use crate::text::{MAX_KEPT_ATTEMPT_ERRORS, StoredText};

/// The LISTEN/NOTIFY channel's name, as a literal for statements built with `concat!` (the
/// enqueue statement); everything else uses [`NOTIFY_CHANNEL`] or binds it.
macro_rules! notify_channel {
    () => {
        "backstop_jobs"
    };
}

/// The LISTEN/NOTIFY channel. The payload is `<priority>:<queue>` when jobs are enqueued (the
/// most urgent priority among them, so a fetcher partway through a backlog knows whether to
/// look back at the head: see `runtime::fetcher`), and the bare queue name from everything else
/// (pause, run now, retry, the alert triggers), which means "look from the head".
pub(crate) const NOTIFY_CHANNEL: &str = notify_channel!();

/// [`MAX_KEPT_ATTEMPT_ERRORS`] as `backstop.append_attempt_error` takes it.
const KEPT_ATTEMPT_ERRORS: i32 = MAX_KEPT_ATTEMPT_ERRORS as i32;

/// Column-wise rows for one multi-row insert (`unnest` of arrays: one statement, one round
/// trip, however many jobs).
#[derive(Debug, Default)]
pub(crate) struct JobInsertColumns {
    pub queues: Vec<String>,
    pub kinds: Vec<String>,
    pub payloads: Vec<String>,
    pub priorities: Vec<i16>,
    pub run_ats: Vec<Option<DateTime<Utc>>>,
    pub delays_secs: Vec<Option<f64>>,
    pub max_attempts: Vec<i32>,
    pub unique_keys: Vec<Option<String>>,
    /// The enqueuing span's trace context, per job (all `None` unless the `opentelemetry`
    /// feature found one).
    pub trace_contexts: Vec<Option<serde_json::Value>>,
}

/// One row back from [`job_insert_many`]: a new job, or the live job that already holds the
/// unique key.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct InsertedJob {
    pub id: i64,
    pub created: bool,
    pub unique_key: Option<String>,
}

/// The enqueue statement, with or without the trace-context column: one unnest per column,
/// so its cost is the same whatever the batch size. Jobs enqueued outside a traced span (and
/// every job when the `opentelemetry` feature is off) use the statement without it, so tracing
/// costs the hot path nothing when it is not used.
macro_rules! job_insert_sql {
    ($column:literal, $value:literal, $param:literal) => {
        concat!(
            "with inserted as (
                insert into backstop.jobs (queue, kind, payload, priority, run_at, max_attempts, unique_key",
            $column,
            ")
                select q, k, p::jsonb, pr, coalesce(ra, now() + make_interval(secs => d), now()), ma, uk",
            $value,
            "
                from unnest($1::text[], $2::text[], $3::text[], $4::int2[], $5::timestamptz[],
                            $6::float8[], $7::int4[], $8::text[]",
            $param,
            ") as t(q, k, p, pr, ra, d, ma, uk",
            $value,
            ")
                -- A live job already holds the key: skip this one (reported below as a duplicate).
                on conflict (unique_key) where unique_key is not null do nothing
                returning id, queue, priority, run_at, unique_key
            ),
            -- One NOTIFY per queue that got runnable work, not one per job (one per job costs
            -- about 40% of throughput). Postgres also folds identical notifications within a
            -- transaction, so many enqueue calls in one transaction wake the workers once.
            notified as (
                select pg_notify('",
            notify_channel!(),
            "', min(priority) || ':' || queue)
                from inserted where run_at <= now()
                group by queue
            )
            select id, true as created, unique_key from inserted
            where (select count(*) from notified) >= 0
            union all
            select j.id, false, j.unique_key from backstop.jobs j
            where j.unique_key = any($8::text[])"
        )
    };
}

pub(crate) async fn job_insert_many<'e, E: PgExecutor<'e>>(
    executor: E,
    rows: &JobInsertColumns,
) -> sqlx::Result<Vec<InsertedJob>> {
    let traced = rows.trace_contexts.iter().any(Option::is_some);
    let statement = if traced {
        job_insert_sql!(", trace_context", ", tc", ", $9::jsonb[]")
    } else {
        job_insert_sql!("", "", "")
    };
    let query = sqlx::query_as(statement)
        .bind(&rows.queues)
        .bind(&rows.kinds)
        .bind(&rows.payloads)
        .bind(&rows.priorities)
        .bind(&rows.run_ats)
        .bind(&rows.delays_secs)
        .bind(&rows.max_attempts)
        .bind(&rows.unique_keys);
    let query = if traced { query.bind(&rows.trace_contexts) } else { query };
    query.fetch_all(executor).await
}

/// A job a worker has claimed.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct ClaimedJob {
    pub id: i64,
    pub queue: String,
    pub kind: String,
    pub payload: String,
    pub priority: i16,
    pub run_at: DateTime<Utc>,
    pub attempts: i32,
    pub max_attempts: i32,
    /// The enqueuing span's trace context (null unless an `opentelemetry` build stored one).
    #[cfg_attr(not(any(feature = "sentry", feature = "opentelemetry")), allow(dead_code))]
    pub trace_context: Option<serde_json::Value>,
}

impl ClaimedJob {
    /// Where this job stands in claim order (`jobs_claim_order`).
    pub fn claim_key(&self) -> ClaimKey {
        ClaimKey { priority: self.priority, run_at: self.run_at, id: self.id }
    }
}

/// A position in claim order, `(priority, run_at, id)`: a claim that starts after it reads the
/// claim index from there instead of from the head of the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct ClaimKey {
    pub priority: i16,
    pub run_at: DateTime<Utc>,
    pub id: i64,
}

/// Where a claim reads the claim index from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClaimFrom {
    /// The head of the queue: the most urgent, longest-waiting jobs.
    Head,
    /// Just after this key (see `runtime::claim_cursor` for what that passes over).
    After(ClaimKey),
    /// The head, but only jobs more urgent than this priority: the few that arrived ahead of
    /// a backlog, without reading what the backlog's claims left in the index.
    MoreUrgentThan(i16),
}

/// The claim statement, bounded as [`ClaimFrom`] says. Every form reads `jobs_claim_order` in
/// order; the bounds are index conditions (the row comparison too), so the scan starts at them
/// rather than filtering its way there.
macro_rules! job_claim_sql {
    ($after:literal) => {
        concat!(
            r#"
        with next as (
            select id from backstop.jobs
            where queue = $1 and locked_by is null and run_at <= coalesce($4, now())
              and not exists (select 1 from backstop.queues q where q.name = $1 and q.paused)
              "#,
            $after,
            r#"
            order by priority, run_at, id
            limit $3
            -- SKIP LOCKED: rows another worker is claiming this instant are passed over, not
            -- waited on, so any number of workers claim side by side without blocking.
            for update skip locked
        )
        update backstop.jobs j
        -- The attempt is counted at claim time so that a crash mid-run still uses it up:
        -- a job that kills its process cannot loop forever.
        set locked_by = $2, locked_at = coalesce($4, now()), attempts = j.attempts + 1
        from next
        where j.id = next.id
        returning j.id, j.queue, j.kind, j.payload::text as payload, j.priority, j.run_at,
                  j.attempts, j.max_attempts, j.trace_context
        "#
        )
    };
}

/// Claims up to `limit` runnable jobs of `queue` for `worker_id`, in claim order, from where
/// `from` says. Returned in claim order.
pub(crate) async fn job_claim_batch(
    conn: &mut PgConnection,
    queue: &str,
    worker_id: &str,
    limit: i64,
    now: Option<DateTime<Utc>>,
    from: ClaimFrom,
) -> sqlx::Result<Vec<ClaimedJob>> {
    let sql = match from {
        ClaimFrom::Head => job_claim_sql!(""),
        ClaimFrom::After(_) => job_claim_sql!("and (priority, run_at, id) > ($5, $6, $7)"),
        ClaimFrom::MoreUrgentThan(_) => job_claim_sql!("and priority < $5"),
    };
    // The bounds' parameters come after these, so every form shares $1 to $4.
    let query = sqlx::query_as(sql).bind(queue).bind(worker_id).bind(limit).bind(now);
    let query = match from {
        ClaimFrom::Head => query,
        ClaimFrom::After(key) => query.bind(key.priority).bind(key.run_at).bind(key.id),
        ClaimFrom::MoreUrgentThan(priority) => query.bind(priority),
    };
    let mut jobs: Vec<ClaimedJob> = query.fetch_all(conn).await?;
    // UPDATE ... RETURNING does not keep the subquery's order.
    jobs.sort_by_key(ClaimedJob::claim_key);
    Ok(jobs)
}

/// Claims one runnable job of `kind` (and with `id`, if given) for `worker_id`: the claim of
/// [`job_claim_batch`] narrowed for the `testing` helpers, which run a chosen job rather than
/// the queue's next.
#[cfg(feature = "testing")]
pub(crate) async fn job_claim_one_for_test(
    conn: &mut PgConnection,
    kind: &str,
    id: Option<i64>,
    worker_id: &str,
) -> sqlx::Result<Option<ClaimedJob>> {
    sqlx::query_as(
        r#"
        with next as (
            select id from backstop.jobs
            where kind = $1 and ($2::bigint is null or id = $2) and locked_by is null and run_at <= now()
            order by priority, run_at, id
            limit 1
            for update skip locked
        )
        update backstop.jobs j
        set locked_by = $3, locked_at = now(), attempts = j.attempts + 1
        from next
        where j.id = next.id
        returning j.id, j.queue, j.kind, j.payload::text as payload, j.priority, j.run_at,
                  j.attempts, j.max_attempts, j.trace_context
        "#,
    )
    .bind(kind)
    .bind(id)
    .bind(worker_id)
    .fetch_optional(conn)
    .await
}

/// Live jobs of `kind`, oldest first, as the executor's transaction sees them.
#[cfg(feature = "testing")]
pub(crate) async fn job_list_of_kind<'e, E: PgExecutor<'e>>(
    executor: E,
    kind: &str,
) -> sqlx::Result<Vec<crate::testing::EnqueuedJob>> {
    sqlx::query_as(
        "select id, queue, kind, payload, priority, run_at, max_attempts, unique_key
         from backstop.jobs where kind = $1 order by id",
    )
    .bind(kind)
    .fetch_all(executor)
    .await
}

/// How many live jobs `queue` holds (waiting, scheduled, running or retrying).
#[cfg(feature = "testing")]
pub(crate) async fn job_count_in_queue<'e, E: PgExecutor<'e>>(executor: E, queue: &str) -> sqlx::Result<i64> {
    sqlx::query_scalar("select count(*) from backstop.jobs where queue = $1")
        .bind(queue)
        .fetch_one(executor)
        .await
}

pub(crate) async fn job_complete_many(
    conn: &mut PgConnection,
    ids: &[i64],
    worker_id: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        r#"
        with done as (
            -- `locked_by` guards against a job that was rescued from us (we were presumed
            -- dead) and claimed again elsewhere: that run owns it now.
            delete from backstop.jobs where id = any($1) and locked_by = $2
            returning queue, kind
        )
        insert into backstop.job_stats as s (minute, queue, kind, completed)
        select date_trunc('minute', now()), queue, kind, count(*) from done
        group by queue, kind
        -- A fixed order of upserted counter rows, so two processes completing at once
        -- cannot deadlock on them.
        order by queue, kind
        on conflict (minute, queue, kind) do update set completed = s.completed + excluded.completed
        "#,
    )
    .bind(ids)
    .bind(worker_id)
    .execute(conn)
    .await
    .map(drop)
}

/// Records a failed attempt and schedules the next. `false` if the job is no longer ours. The
/// error history keeps its first and newest entries (`backstop.append_attempt_error`).
pub(crate) async fn job_retry_later(
    conn: &mut PgConnection,
    id: i64,
    worker_id: &str,
    run_at: DateTime<Utc>,
    error: &StoredText,
    history_entry: &serde_json::Value,
) -> sqlx::Result<bool> {
    let row: Option<(i32,)> = sqlx::query_as(
        r#"
        with failed as (
            update backstop.jobs
            set locked_by = null, locked_at = null, run_at = $3, last_error = $4,
                errors = backstop.append_attempt_error(errors, $5::jsonb, $6)
            where id = $1 and locked_by = $2
            returning queue, kind
        )
        insert into backstop.job_stats as s (minute, queue, kind, failed)
        select date_trunc('minute', now()), queue, kind, 1 from failed
        on conflict (minute, queue, kind) do update set failed = s.failed + 1
        returning 1
        "#,
    )
    .bind(id)
    .bind(worker_id)
    .bind(run_at)
    .bind(error.as_str())
    .bind(history_entry)
    .bind(KEPT_ATTEMPT_ERRORS)
    .fetch_optional(conn)
    .await?;
    Ok(row.is_some())
}

/// Moves a job and its error history (capped as in [`job_retry_later`]) to the dead-letter
/// table. `locked_by` must match (`None`: the job must be unlocked, as for an operator's
/// cancel). Returns the dead row.
pub(crate) async fn job_move_to_dead(
    conn: &mut PgConnection,
    id: i64,
    locked_by: Option<&str>,
    error: &StoredText,
    history_entry: Option<&serde_json::Value>,
    reason: &str,
) -> sqlx::Result<Option<DeadJob>> {
    sqlx::query_as(
        r#"
        with moved as (
            delete from backstop.jobs
            where id = $1 and locked_by is not distinct from $2
            returning id, queue, kind, payload, priority, attempts, max_attempts, errors,
                      unique_key, created_at, trace_context
        ),
        dead as (
            insert into backstop.dead_jobs (id, queue, kind, payload, priority, attempts,
                max_attempts, errors, last_error, unique_key, created_at, died_at, reason, group_id,
                trace_context)
            select id, queue, kind, payload, priority, attempts, max_attempts,
                   case when $4::jsonb is null then errors
                        else backstop.append_attempt_error(errors, $4::jsonb, $6) end,
                   $3, unique_key, created_at, now(), $5, null, trace_context
            from moved
            returning *
        ),
        counted as (
            insert into backstop.job_stats as s (minute, queue, kind, failed, dead)
            select date_trunc('minute', now()), queue, kind,
                   (reason <> 'cancelled')::int, (reason <> 'cancelled')::int
            from dead
            on conflict (minute, queue, kind) do update
            set failed = s.failed + excluded.failed, dead = s.dead + excluded.dead
        )
        select id, queue, kind, payload, priority, attempts, max_attempts, errors, last_error,
               unique_key, created_at, died_at, reason, discarded_at, group_id
        from dead
        "#,
    )
    .bind(id)
    .bind(locked_by)
    .bind(error.as_str())
    .bind(history_entry)
    .bind(reason)
    .bind(KEPT_ATTEMPT_ERRORS)
    .fetch_optional(conn)
    .await
}

/// The jobs of `queue` locked by `worker_id`, as the database has them (the runtime compares
/// them with the jobs it knows it holds).
pub(crate) async fn job_locked_ids(
    conn: &mut PgConnection,
    queue: &str,
    worker_id: &str,
) -> sqlx::Result<Vec<i64>> {
    // Served by `jobs_locked` (locked_by, locked_at): only this process's rows are read.
    sqlx::query_scalar("select id from backstop.jobs where locked_by = $1 and queue = $2")
        .bind(worker_id)
        .bind(queue)
        .fetch_all(conn)
        .await
}

/// Hands claimed jobs back without running them (graceful shutdown), or jobs whose outcome
/// was lost (see `job_locked_ids`): the claim's attempt is given back too.
pub(crate) async fn job_release_unstarted(
    conn: &mut PgConnection,
    ids: &[i64],
    worker_id: &str,
) -> sqlx::Result<u64> {
    let released: i64 = sqlx::query_scalar(
        r#"
        with released as (
            update backstop.jobs
            set locked_by = null, locked_at = null, attempts = greatest(attempts - 1, 0)
            where id = any($1) and locked_by = $2
            returning queue
        ),
        -- A handed-back job keeps its run_at, so it lands behind the claim cursor of any
        -- fetcher partway through a backlog: the bare queue name sends their next claim to
        -- the head (see `runtime::claim_cursor`).
        notified as (select pg_notify($3, queue) from (select distinct queue from released) q)
        select count(*) from released where (select count(*) from notified) >= 0
        "#,
    )
    .bind(ids)
    .bind(worker_id)
    .bind(NOTIFY_CHANNEL)
    .fetch_one(conn)
    .await?;
    Ok(u64::try_from(released).unwrap_or(0))
}

/// Hands back a job whose failure the database refused to record: unlocked to run at
/// `run_at`, the attempt given back (nothing about it could be kept, and counting it could take
/// the job past its `max_attempts`). `false` if the job is no longer ours.
pub(crate) async fn job_release_unrecorded(
    conn: &mut PgConnection,
    id: i64,
    worker_id: &str,
    run_at: DateTime<Utc>,
) -> sqlx::Result<bool> {
    sqlx::query(
        r#"
        update backstop.jobs
        set locked_by = null, locked_at = null, attempts = greatest(attempts - 1, 0), run_at = $3
        where id = $1 and locked_by = $2
        "#,
    )
    .bind(id)
    .bind(worker_id)
    .bind(run_at)
    .execute(conn)
    .await
    .map(|r| r.rows_affected() == 1)
}

/// Jobs locked by a worker process that stopped heartbeating, locked for the caller's
/// transaction so two rescuers never take the same job.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct StaleJob {
    pub id: i64,
    pub locked_by: String,
    pub attempts: i32,
    pub max_attempts: i32,
    /// The timeout the job was judged by: its owner's own, or the rescuer's when the owner
    /// left no row.
    pub timeout_secs: f64,
}

/// Jobs locked by processes whose row in `backstop.workers` says they stopped heartbeating,
/// each judged by its owner's own timeout, so a rescuer with a shorter one never takes jobs
/// from a live process that beats rarely.
///
/// It starts from the workers' rows, and reads the locks (`jobs_locked`) of silent processes
/// only. Reading every lock instead reads an index entry for every job any process claimed
/// that cleanup has not reached: a millisecond or so during a 2,000,000-job backlog drain, but
/// 0.9 s a rescue, up to 2.5 s, while a long transaction held cleanup back, in every process at
/// every heartbeat.
pub(crate) async fn job_find_stale_of_silent_workers(
    conn: &mut PgConnection,
    now: Option<DateTime<Utc>>,
) -> sqlx::Result<Vec<StaleJob>> {
    sqlx::query_as(
        r#"
        select j.id, j.locked_by, j.attempts, j.max_attempts,
               extract(epoch from w.heartbeat_timeout)::float8 as timeout_secs
        from backstop.workers w
        -- Lateral, and with its own limit, so it stays a scan of each silent process's
        -- locks: a join lets the planner merge-join the whole of `jobs_locked` instead.
        cross join lateral (
            select j.id, j.locked_by, j.attempts, j.max_attempts
            from backstop.jobs j
            where j.locked_by = w.id
              and j.locked_at < coalesce($1, now()) - w.heartbeat_timeout
            limit 1000
            -- Only the job rows: the owner's row stays free for its own heartbeat.
            for update skip locked
        ) j
        where w.last_seen < coalesce($1, now()) - w.heartbeat_timeout
        order by j.id
        limit 1000
        "#,
    )
    .bind(now)
    .fetch_all(conn)
    .await
}

/// Jobs locked by processes that left no row in `backstop.workers` (their row deleted a day
/// after they fell silent, or by hand), judged by the rescuer's `default_timeout_secs`. This
/// reads every lock's index entry, so it runs once a maintenance interval, in one process.
pub(crate) async fn job_find_stale_ownerless(
    conn: &mut PgConnection,
    default_timeout_secs: f64,
    now: Option<DateTime<Utc>>,
) -> sqlx::Result<Vec<StaleJob>> {
    sqlx::query_as(
        r#"
        select j.id, j.locked_by, j.attempts, j.max_attempts, $1::float8 as timeout_secs
        from backstop.jobs j
        where j.locked_by is not null
          and j.locked_at < coalesce($2, now()) - make_interval(secs => $1)
          and not exists (select 1 from backstop.workers w where w.id = j.locked_by)
        order by j.id
        limit 1000
        for update of j skip locked
        "#,
    )
    .bind(default_timeout_secs)
    .bind(now)
    .fetch_all(conn)
    .await
}

/// Records that the worker is alive, with its queues, each queue's concurrency, and the
/// heartbeat timeout after which its jobs may be taken back.
pub(crate) async fn worker_heartbeat(
    conn: &mut PgConnection,
    worker_id: &str,
    queues: &[(String, usize)],
    heartbeat_timeout_secs: f64,
) -> sqlx::Result<()> {
    let names: Vec<&str> = queues.iter().map(|(name, _)| name.as_str()).collect();
    let concurrency: Vec<i32> = queues.iter().map(|(_, n)| i32::try_from(*n).unwrap_or(i32::MAX)).collect();
    sqlx::query(
        r#"
        insert into backstop.workers (id, queues, concurrency, heartbeat_timeout)
        values ($1, $2, $3, make_interval(secs => $4))
        on conflict (id) do update
        set last_seen = now(), queues = excluded.queues, concurrency = excluded.concurrency,
            heartbeat_timeout = excluded.heartbeat_timeout
        "#,
    )
    .bind(worker_id)
    .bind(names)
    .bind(concurrency)
    .bind(heartbeat_timeout_secs)
    .execute(conn)
    .await
    .map(drop)
}

pub(crate) async fn worker_delete(conn: &mut PgConnection, worker_id: &str) -> sqlx::Result<()> {
    sqlx::query("delete from backstop.workers where id = $1").bind(worker_id).execute(conn).await.map(drop)
}

/// Forgets worker processes not seen for a day, or for their own heartbeat timeout if longer
/// (their jobs were rescued long before; a row kept while a process may still be alive keeps
/// its own timeout in force).
pub(crate) async fn worker_delete_stale(conn: &mut PgConnection) -> sqlx::Result<u64> {
    sqlx::query(
        "delete from backstop.workers \
         where last_seen < now() - greatest(interval '1 day', heartbeat_timeout)",
    )
    .execute(conn)
    .await
    .map(|r| r.rows_affected())
}

pub(crate) async fn queue_set_paused<'e, E: PgExecutor<'e>>(
    executor: E,
    queue: &str,
    paused: bool,
) -> sqlx::Result<()> {
    sqlx::query(
        r#"
        with upserted as (
            insert into backstop.queues (name, paused) values ($1, $2)
            on conflict (name) do update set paused = excluded.paused, updated_at = now()
            returning name
        )
        -- Resuming wakes the queue's workers now rather than at their next poll.
        select pg_notify($3, name) from upserted where not $2
        "#,
    )
    .bind(queue)
    .bind(paused)
    .bind(NOTIFY_CHANNEL)
    .execute(executor)
    .await
    .map(drop)
}

pub(crate) async fn queue_paused_list<'e, E: PgExecutor<'e>>(executor: E) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar("select name from backstop.queues where paused order by name")
        .fetch_all(executor)
        .await
}

/// The idempotency pattern of the background-jobs field notes the project started from (a
/// practitioner's write-up of running queues on PostgreSQL, kept outside this repository):
/// `true` if this call inserted the key (do the work), `false` if it was already there (the
/// work was done). A concurrent claimer of the same key waits for this
/// transaction and then gets `false`, or `true` if this transaction rolled back.
pub(crate) async fn idempotency_key_claim<'e, E: PgExecutor<'e>>(
    executor: E,
    key: &str,
) -> sqlx::Result<bool> {
    let inserted: Option<String> = sqlx::query_scalar(
        "insert into backstop.idempotency_keys (key) values ($1) on conflict (key) do nothing returning key",
    )
    .bind(key)
    .fetch_optional(executor)
    .await?;
    Ok(inserted.is_some())
}

/// Whether `key` was claimed (and the claim committed, or is this transaction's).
pub(crate) async fn idempotency_key_exists<'e, E: PgExecutor<'e>>(
    executor: E,
    key: &str,
) -> sqlx::Result<bool> {
    sqlx::query_scalar("select exists (select 1 from backstop.idempotency_keys where key = $1)")
        .bind(key)
        .fetch_one(executor)
        .await
}

/// Deletes up to `batch` keys older than `cutoff`; call until it returns less than `batch`.
/// Batches keep each transaction (and its locks and WAL) small on a big table.
pub(crate) async fn idempotency_key_delete_older_than(
    conn: &mut PgConnection,
    cutoff: DateTime<Utc>,
    batch: i64,
) -> sqlx::Result<u64> {
    sqlx::query(
        r#"
        delete from backstop.idempotency_keys
        where key in (
            select key from backstop.idempotency_keys where created_at < $1 limit $2
        )
        "#,
    )
    .bind(cutoff)
    .bind(batch)
    .execute(conn)
    .await
    .map(|r| r.rows_affected())
}

pub(crate) async fn job_stats_delete_older_than(
    conn: &mut PgConnection,
    cutoff: DateTime<Utc>,
) -> sqlx::Result<u64> {
    sqlx::query("delete from backstop.job_stats where minute < $1")
        .bind(cutoff)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
}

/// Takes the maintenance lock for this transaction, if no other process holds it.
pub(crate) async fn maintenance_try_lock(conn: &mut PgConnection) -> sqlx::Result<bool> {
    sqlx::query_scalar("select pg_try_advisory_xact_lock(hashtext('backstop.maintenance'))")
        .fetch_one(conn)
        .await
}

/// Takes the session-level lock that lets one process at a time rebuild indexes (a
/// transaction-level lock cannot be used: `reindex concurrently` runs outside transactions).
/// Released by [`index_upkeep_unlock`] or when the connection closes.
pub(crate) async fn index_upkeep_try_lock(conn: &mut PgConnection) -> sqlx::Result<bool> {
    sqlx::query_scalar("select pg_try_advisory_lock(hashtext('backstop.index_upkeep'))").fetch_one(conn).await
}

pub(crate) async fn index_upkeep_unlock(conn: &mut PgConnection) -> sqlx::Result<bool> {
    sqlx::query_scalar("select pg_advisory_unlock(hashtext('backstop.index_upkeep'))").fetch_one(conn).await
}

/// The valid GIN indexes on `backstop.jobs` larger than the table itself and than `min_bytes`.
/// GIN keeps the entry of every key it ever held, so under steady load with ids in payloads
/// and errors these grow without bound while the table stays small; a fresh build of them is a
/// fraction of the table.
pub(crate) async fn job_index_outgrown(conn: &mut PgConnection, min_bytes: i64) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        r#"
        select c.relname::text
        from pg_index i
        join pg_class c on c.oid = i.indexrelid
        join pg_am am on am.oid = c.relam
        where i.indrelid = 'backstop.jobs'::regclass
          and am.amname = 'gin'
          and i.indisvalid
          and pg_relation_size(c.oid) > greatest(pg_relation_size(i.indrelid), $1)
        order by c.relname
        "#,
    )
    .bind(min_bytes)
    .fetch_all(conn)
    .await
}

/// Invalid indexes on `backstop.jobs` that an interrupted `reindex concurrently` left behind
/// (`<name>_ccnew`, `<name>_ccnew1`, ...). Every write still maintains them.
pub(crate) async fn job_index_leftovers(conn: &mut PgConnection) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        r#"
        select c.relname::text
        from pg_index i
        join pg_class c on c.oid = i.indexrelid
        where i.indrelid = 'backstop.jobs'::regclass
          and not i.indisvalid
          and c.relname ~ '_ccnew[0-9]*$'
        order by c.relname
        "#,
    )
    .fetch_all(conn)
    .await
}

/// Rebuilds an index of schema `backstop` without blocking writes. Simple protocol: it must
/// not run in a transaction, not even an implicit one around a prepared statement.
pub(crate) async fn index_rebuild(conn: &mut PgConnection, name: &str) -> sqlx::Result<()> {
    let statement = format!("reindex index concurrently backstop.{}", quote_identifier(name));
    // Audited: the only dynamic part is a quoted identifier.
    sqlx::raw_sql(sqlx::AssertSqlSafe(statement)).execute(conn).await.map(|_| ())
}

/// Drops an index of schema `backstop` without blocking writes.
pub(crate) async fn index_drop(conn: &mut PgConnection, name: &str) -> sqlx::Result<()> {
    let statement = format!("drop index concurrently if exists backstop.{}", quote_identifier(name));
    // Audited: the only dynamic part is a quoted identifier.
    sqlx::raw_sql(sqlx::AssertSqlSafe(statement)).execute(conn).await.map(|_| ())
}

/// `name` as a quoted SQL identifier (the names come from the catalog, but are quoted all the
/// same).
fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

pub(crate) async fn cron_schedule_upsert(
    conn: &mut PgConnection,
    name: &str,
    expression: &str,
    kind: &str,
    queue: &str,
    payload: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        r#"
        -- A new schedule starts from now (no backfill); a re-registered one keeps its
        -- last tick, so a restart can catch up on what it missed.
        insert into backstop.cron_schedules (name, expression, kind, queue, payload, last_tick)
        values ($1, $2, $3, $4, $5::jsonb, now())
        on conflict (name) do update
        set expression = excluded.expression, kind = excluded.kind, queue = excluded.queue,
            payload = excluded.payload, updated_at = now()
        "#,
    )
    .bind(name)
    .bind(expression)
    .bind(kind)
    .bind(queue)
    .bind(payload)
    .execute(conn)
    .await
    .map(drop)
}

/// Locks a schedule's row for this transaction; `None` if another process holds it (that
/// process is handling the tick).
pub(crate) async fn cron_schedule_lock(
    conn: &mut PgConnection,
    name: &str,
) -> sqlx::Result<Option<DateTime<Utc>>> {
    sqlx::query_scalar("select last_tick from backstop.cron_schedules where name = $1 for update skip locked")
        .bind(name)
        .fetch_optional(conn)
        .await
}

pub(crate) async fn cron_schedule_advance(
    conn: &mut PgConnection,
    name: &str,
    last_tick: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query("update backstop.cron_schedules set last_tick = $2 where name = $1")
        .bind(name)
        .bind(last_tick)
        .execute(conn)
        .await
        .map(drop)
}

/// The columns of [`JobRecord`], as a macro so statements stay `&'static str` (sqlx refuses
/// SQL built at run time unless it is audited).
macro_rules! job_columns {
    () => {
        "id, queue, kind, payload, priority, run_at, attempts, max_attempts, errors, last_error, \
         unique_key, locked_by, locked_at, created_at"
    };
}

pub(crate) async fn job_get<'e, E: PgExecutor<'e>>(executor: E, id: i64) -> sqlx::Result<Option<JobRecord>> {
    sqlx::query_as(concat!("select ", job_columns!(), " from backstop.jobs where id = $1"))
        .bind(id)
        .fetch_optional(executor)
        .await
}

/// Live jobs of a queue in claim order, after an optional `(priority, run_at, id)` cursor.
pub(crate) async fn job_list<'e, E: PgExecutor<'e>>(
    executor: E,
    queue: Option<&str>,
    limit: i64,
) -> sqlx::Result<Vec<JobRecord>> {
    sqlx::query_as(concat!(
        "select ",
        job_columns!(),
        " from backstop.jobs where ($1::text is null or queue = $1) \
          order by priority, run_at, id limit $2"
    ))
    .bind(queue)
    .bind(limit)
    .fetch_all(executor)
    .await
}

/// Runs waiting or retrying jobs now. Running (locked) jobs are left alone.
pub(crate) async fn job_run_now_many<'e, E: PgExecutor<'e>>(executor: E, ids: &[i64]) -> sqlx::Result<u64> {
    sqlx::query_as(
        r#"
        with updated as (
            update backstop.jobs set run_at = now()
            where id = any($1) and locked_by is null
            returning queue
        ),
        notified as (select pg_notify($2, queue) from (select distinct queue from updated) q)
        select count(*) from updated where (select count(*) from notified) >= 0
        "#,
    )
    .bind(ids)
    .bind(NOTIFY_CHANNEL)
    .fetch_one(executor)
    .await
    .map(|(count,): (i64,)| u64::try_from(count).unwrap_or(0))
}

/// Deletes live jobs that are not running.
pub(crate) async fn job_delete_many<'e, E: PgExecutor<'e>>(executor: E, ids: &[i64]) -> sqlx::Result<u64> {
    sqlx::query("delete from backstop.jobs where id = any($1) and locked_by is null")
        .bind(ids)
        .execute(executor)
        .await
        .map(|r| r.rows_affected())
}

/// The columns of [`DeadJob`].
macro_rules! dead_columns {
    () => {
        "id, queue, kind, payload, priority, attempts, max_attempts, errors, last_error, \
         unique_key, created_at, died_at, reason, discarded_at, group_id"
    };
}

pub(crate) async fn dead_job_get<'e, E: PgExecutor<'e>>(
    executor: E,
    id: i64,
) -> sqlx::Result<Option<DeadJob>> {
    sqlx::query_as(concat!("select ", dead_columns!(), " from backstop.dead_jobs where id = $1"))
        .bind(id)
        .fetch_optional(executor)
        .await
}

/// What [`dead_job_retry_many`] did.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct DeadJobsRetried {
    pub retried: i64,
    /// Dead jobs asked for that stayed dead because a live job holds their unique key, in id
    /// order.
    pub key_taken: Vec<i64>,
}

/// Moves dead jobs back to the live table with attempts reset and their error history kept,
/// under the same id. A dead job whose unique key is held by a live job stays dead and is
/// reported: a job enqueued since, one committed while this runs, or another dead job of the
/// same call (the lowest id goes first).
pub(crate) async fn dead_job_retry_many<'e, E: PgExecutor<'e>>(
    executor: E,
    ids: &[i64],
) -> sqlx::Result<DeadJobsRetried> {
    sqlx::query_as(
        r#"
        with candidates as (
            -- Locked, so two operators retrying the same job at once do it once.
            select d.* from backstop.dead_jobs d
            where d.id = any($1)
            for update of d
        ),
        revived as (
            -- Keep the id so links and logs that name the job still find it.
            insert into backstop.jobs (id, queue, kind, payload, priority, run_at, attempts,
                max_attempts, errors, last_error, unique_key, created_at, trace_context)
            overriding system value
            select id, queue, kind, payload, priority, now(), 0, max_attempts, errors,
                   last_error, unique_key, created_at, trace_context
            from candidates
            order by id
            -- A live job holds the key (or an earlier row of this insert took it, or an enqueue
            -- committed it while we waited on its key): skip the row, no error. Only rows
            -- actually inserted leave the dead-letter table below.
            on conflict do nothing
            returning id, queue
        ),
        moved as (
            delete from backstop.dead_jobs d using revived r where d.id = r.id
            returning d.id
        ),
        notified as (select pg_notify($2, queue) from (select distinct queue from revived) q)
        select (select count(*) from moved) as retried,
               array(select c.id from candidates c
                     where c.unique_key is not null and c.id not in (select id from revived)
                     order by c.id) as key_taken
        where (select count(*) from notified) >= 0
        "#,
    )
    .bind(ids)
    .bind(NOTIFY_CHANNEL)
    .fetch_one(executor)
    .await
}

/// Replaces a dead job's payload (before an operator retries it with the fix).
pub(crate) async fn dead_job_set_payload<'e, E: PgExecutor<'e>>(
    executor: E,
    id: i64,
    payload: &serde_json::Value,
) -> sqlx::Result<bool> {
    sqlx::query("update backstop.dead_jobs set payload = $2 where id = $1")
        .bind(id)
        .bind(payload)
        .execute(executor)
        .await
        .map(|r| r.rows_affected() == 1)
}

pub(crate) async fn dead_job_discard_many<'e, E: PgExecutor<'e>>(
    executor: E,
    ids: &[i64],
) -> sqlx::Result<u64> {
    sqlx::query(
        "update backstop.dead_jobs set discarded_at = now() where id = any($1) and discarded_at is null",
    )
    .bind(ids)
    .execute(executor)
    .await
    .map(|r| r.rows_affected())
}

pub(crate) async fn dead_job_delete_many<'e, E: PgExecutor<'e>>(
    executor: E,
    ids: &[i64],
) -> sqlx::Result<u64> {
    sqlx::query("delete from backstop.dead_jobs where id = any($1)")
        .bind(ids)
        .execute(executor)
        .await
        .map(|r| r.rows_affected())
}

/// Counter rows since `since`, for dashboards.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StatsRow {
    /// The minute the counts belong to.
    pub minute: DateTime<Utc>,
    /// The queue.
    pub queue: String,
    /// The job kind.
    pub kind: String,
    /// Jobs completed in that minute.
    pub completed: i64,
    /// Failed attempts (retried or not).
    pub failed: i64,
    /// Jobs moved to the dead-letter table (cancellations excluded).
    pub dead: i64,
}

pub(crate) async fn job_stats_since<'e, E: PgExecutor<'e>>(
    executor: E,
    since: DateTime<Utc>,
) -> sqlx::Result<Vec<StatsRow>> {
    sqlx::query_as(
        "select minute, queue, kind, completed, failed, dead from backstop.job_stats \
         where minute >= date_trunc('minute', $1) order by minute, queue, kind",
    )
    .bind(since)
    .fetch_all(executor)
    .await
}

// Declared after the column macros above, which they use.
mod alerts;
mod audit;
mod error_groups;
mod graphile;
mod health;
mod migrations;
mod search;

pub(crate) use alerts::{
    ArrivalAlerts, alert_job_count_waiting, alert_job_delete_enqueued_here, alert_job_enqueue_tests,
    alert_webhook_block_until, alert_webhook_confirm, alert_webhook_count_sent, alert_webhook_list,
    alert_webhook_list_broken, alert_webhook_mark_broken, alert_webhook_return_token,
    alert_webhook_take_token, alert_webhook_unbreak, alert_webhook_upsert,
};

pub(crate) use audit::{
    audit_add_page, audit_in_progress, audit_insert, audit_insert_in_progress, audit_list,
};
pub(crate) use error_groups::{
    SplitOff, TemplateRow, error_group_add_moved, error_group_arrivals_move, error_group_arrivals_since,
    error_group_bucket, error_group_fingerprint_holder, error_group_get, error_group_ignore,
    error_group_insert_split, error_group_list, error_group_lock_by_message, error_group_lock_many,
    error_group_lock_template, error_group_lock_undigested, error_group_lock_untemplated,
    error_group_mark_digested, error_group_members, error_group_merge, error_group_move_jobs,
    error_group_record_arrival, error_group_remove_moved, error_group_reopen, error_group_resolve,
    error_group_set_template, error_group_set_template_fixed, error_group_untemplated_count,
    error_group_untemplated_page, error_template_bucket_lock, error_template_bucket_lock_and_list,
};
pub(crate) use graphile::{
    graphile_catalog, graphile_job_complete_many, graphile_job_count, graphile_job_fail_many,
    graphile_job_failed_between, graphile_job_reschedule_now, graphile_job_search, graphile_job_slice,
    graphile_jobs_insert_notify, graphile_migration_latest, graphile_private_rows_hidden,
    source_failure_forget_others, source_failure_record_many, source_job_group_set, source_watermark_advance,
    source_watermark_lock, source_watermark_start,
};
pub(crate) use health::{
    health_alert_announce, health_alert_clear, health_alert_list, health_alert_seen,
    oldest_transaction_seconds, queue_health,
};
pub(crate) use migrations::{
    MIGRATION_HISTORY, migration_history_legacy_table, migration_history_legacy_versions,
    migration_history_list, migration_history_move,
};
pub(crate) use search::{
    FilterArgs, dead_job_count, dead_job_search, job_count, job_search, queue_counts, table_row_estimate,
    worker_list,
};
