//! Queue health: what each queue looks like to an on-call person (how long its oldest ready job
//! has waited, whether anything serves it, how many jobs died lately against the usual), read
//! from indexes and counters so the check costs the same at ten million jobs as at ten; and the
//! rows that say which problems are open.

use serde_json::Value;
use sqlx::types::Json;
use sqlx::{Acquire, PgExecutor, Postgres};

use crate::rows::{HealthAlert, QueueHealth};

/// One row per queue that has unclaimed jobs, live workers, deaths in the last day, or an open
/// health alert. `$1`: the dead-letter window in seconds; `$2`: the cap on the waiting count.
///
/// The oldest ready job is found without scanning: a skip scan of `jobs_claim_order` (queue,
/// priority, run_at, id) visits each (queue, priority) pair once and reads its first entry,
/// the earliest `run_at` at that priority. At most 10,000 pairs are visited.
const QUEUE_HEALTH: &str = r#"
with recursive heads as (
    (select queue, priority from backstop.jobs where locked_by is null order by queue, priority limit 1)
    union all
    select next.queue, next.priority
    from heads h, lateral (
        select queue, priority from backstop.jobs
        where locked_by is null and (queue, priority) > (h.queue, h.priority)
        order by queue, priority limit 1
    ) next
),
firsts as (
    select h.queue,
           (select run_at from backstop.jobs j
            where j.locked_by is null and j.queue = h.queue and j.priority = h.priority
            order by run_at limit 1) as first_run_at
    from (select * from heads limit 10000) h
),
oldest as (
    select queue, min(first_run_at) filter (where first_run_at <= now()) as oldest_waiting
    from firsts group by queue
),
-- Alive as the overview counts them (admin::queue_counts).
slots as (
    select q.queue, count(*) as workers
    from backstop.workers w, unnest(w.queues) as q(queue)
    where w.last_seen > now() - greatest(interval '1 minute', w.heartbeat_timeout)
    group by q.queue
),
dead as (
    select queue,
           coalesce(sum(dead) filter (where minute >= now() - make_interval(secs => $1)), 0) as recent,
           coalesce(sum(dead) filter (where minute < now() - make_interval(secs => $1)), 0) as before
    from backstop.job_stats
    where minute >= now() - make_interval(secs => $1) - interval '24 hours' and dead > 0
    group by queue
),
-- How much of the day before the window the counters cover (a new install has less than a
-- day of them): the usual rate is what they saw over that time, not over a day they missed.
coverage as (
    select least(interval '24 hours', greatest(interval '0', now() - make_interval(secs => $1) - min(minute))) as span
    from backstop.job_stats
    where minute >= now() - make_interval(secs => $1) - interval '24 hours'
),
names as (
    select queue from oldest where oldest_waiting is not null
    union select queue from slots
    union select queue from dead
    union select queue from backstop.queue_health_alerts
)
select n.queue,
       o.oldest_waiting,
       case when o.oldest_waiting is null then 0 else
           (select count(*) from (
               -- In the claim index's order, so the count walks that index and stops at the
               -- cap, rather than scanning the table for a queue whose rows come late in it.
               select 1 from backstop.jobs j
               where j.queue = n.queue and j.locked_by is null and j.run_at <= now()
               order by j.queue, j.priority, j.run_at limit $2) c)
       end as waiting,
       coalesce(s.workers, 0) as workers,
       coalesce(q.paused, false) as paused,
       coalesce(d.recent, 0)::bigint as dead_recent,
       case when extract(epoch from c.span) > 0
            then coalesce(d.before, 0)::float8 * $1 / extract(epoch from c.span)::float8
            else 0 end as dead_usual,
       now() as checked_at
from names n
left join oldest o using (queue)
left join slots s using (queue)
left join dead d using (queue)
left join backstop.queues q on q.name = n.queue
cross join coverage c
order by n.queue
"#;

pub(crate) async fn queue_health<'c, A: Acquire<'c, Database = Postgres>>(
    conn: A,
    dead_window_secs: f64,
    waiting_cap: i64,
) -> sqlx::Result<Vec<QueueHealth>> {
    let mut tx = conn.begin().await?;
    // The planner cannot know how few (queue, priority) pairs the skip scan visits, estimates
    // the query costly, and JIT-compiles it: a second of compiling for 20 ms of work.
    sqlx::query("set local jit = off").execute(&mut *tx).await?;
    let reading =
        sqlx::query_as(QUEUE_HEALTH).bind(dead_window_secs).bind(waiting_cap).fetch_all(&mut *tx).await?;
    tx.commit().await?;
    Ok(reading)
}

pub(crate) async fn health_alert_list<'e, E: PgExecutor<'e>>(executor: E) -> sqlx::Result<Vec<HealthAlert>> {
    sqlx::query_as(
        "select queue, problem, seen_at, alerted_at, detail from backstop.queue_health_alerts
         order by queue, problem",
    )
    .fetch_all(executor)
    .await
}

/// Records that a check saw the problem; the row as it is now (new, or from an earlier check).
pub(crate) async fn health_alert_seen<'e, E: PgExecutor<'e>>(
    executor: E,
    queue: &str,
    problem: &str,
) -> sqlx::Result<HealthAlert> {
    // The no-op update makes `returning` give the existing row too, and locks it until the
    // transaction ends, so two checks decide one after the other.
    sqlx::query_as(
        "insert into backstop.queue_health_alerts (queue, problem) values ($1, $2)
         on conflict (queue, problem) do update set queue = excluded.queue
         returning queue, problem, seen_at, alerted_at, detail",
    )
    .bind(queue)
    .bind(problem)
    .fetch_one(executor)
    .await
}

/// Marks the problem announced; `false` if it already was (another check announced it).
pub(crate) async fn health_alert_announce<'e, E: PgExecutor<'e>>(
    executor: E,
    queue: &str,
    problem: &str,
    detail: &Value,
) -> sqlx::Result<bool> {
    let announced = sqlx::query(
        "update backstop.queue_health_alerts set alerted_at = now(), detail = $3
         where queue = $1 and problem = $2 and alerted_at is null",
    )
    .bind(queue)
    .bind(problem)
    .bind(Json(detail))
    .execute(executor)
    .await?;
    Ok(announced.rows_affected() == 1)
}

/// Removes the problem's row; the row removed, or `None` if another check removed it first.
pub(crate) async fn health_alert_clear<'e, E: PgExecutor<'e>>(
    executor: E,
    queue: &str,
    problem: &str,
) -> sqlx::Result<Option<HealthAlert>> {
    sqlx::query_as(
        "delete from backstop.queue_health_alerts where queue = $1 and problem = $2
         returning queue, problem, seen_at, alerted_at, detail",
    )
    .bind(queue)
    .bind(problem)
    .fetch_optional(executor)
    .await
}

/// How long the oldest transaction holding back cleanup in this database has been open, in
/// seconds, if one is: a session of this database with a transaction id or a snapshot, other
/// than this one. Only sessions of this database count, as only they hold back the cleanup of
/// its tables (replication slots aside). Roles without `pg_read_all_stats` see only their own
/// sessions' times.
pub(crate) async fn oldest_transaction_seconds<'e, E: PgExecutor<'e>>(
    executor: E,
) -> sqlx::Result<Option<f64>> {
    sqlx::query_scalar(
        "select extract(epoch from clock_timestamp() - min(xact_start))::float8
         from pg_stat_activity
         where datname = current_database() and pid <> pg_backend_pid() and xact_start is not null
           and (backend_xid is not null or backend_xmin is not null)",
    )
    .fetch_one(executor)
    .await
}
