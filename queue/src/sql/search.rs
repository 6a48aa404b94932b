//! The console's reads: filtered, keyset-paginated lists and per-queue counts.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;

use crate::rows::{DeadJob, JobRecord, QueueCounts};

/// The filter arguments both tables share, already in the shape the SQL binds.
#[derive(Debug, Default)]
pub(crate) struct FilterArgs<'a> {
    pub queue: Option<&'a str>,
    pub kind: Option<&'a str>,
    /// JSON text for `payload @> $n::jsonb`.
    pub payload_contains: Option<String>,
    /// Words for `websearch_to_tsquery('simple', $n)`.
    pub error_search: Option<&'a str>,
    /// Enqueued (live) or died (dead) at or after this.
    pub since: Option<DateTime<Utc>>,
    /// ... and before this.
    pub until: Option<DateTime<Utc>>,
    /// Only dead jobs of this error group (live jobs belong to none).
    pub group: Option<i64>,
}

/// A live job's state in SQL, the one place it is written (the same rule as
/// `JobRecord::state` in Rust; `live_state_rule_agrees_with_rust` checks they agree): whether
/// the row is, at `now()`, in the state the SQL text expression `$name` names (`scheduled`,
/// `queued`, `running`, `retrying`; `dead` matches no live row, and null every one).
///
/// One predicate per state rather than a `case` that computes the name: with the name a
/// literal or a bound parameter, PostgreSQL folds this to that state's predicate while
/// planning, and only a query that states a partial index's predicate can use that index
/// (`jobs_retrying`, and the search indexes that cover waiting jobs only).
macro_rules! live_state_is {
    ($name:literal) => {
        concat!(
            "case ",
            $name,
            "::text
                when 'running'   then locked_by is not null
                when 'retrying'  then locked_by is null and attempts > 0
                when 'scheduled' then locked_by is null and attempts = 0 and run_at > now()
                when 'queued'    then locked_by is null and attempts = 0 and run_at <= now()
                -- Dead jobs are in backstop.dead_jobs.
                when 'dead'      then false
                else true
              end"
        )
    };
}

/// The `where` clause of the live-job filter: `$1` queue, `$2` kind, `$3` payload JSON, `$4`
/// error words, `$5` state, `$6`/`$7` enqueued from/until, `$8` error group (matches none).
/// A macro so that list and count share it and stay `&'static str`.
macro_rules! live_filter {
    () => {
        concat!(
            live_filter_except_error_words!(),
            r#"
          -- `last_error is not null` lets the planner use jobs_error_text_failed (partial).
          and ($4::text is null or (last_error is not null and "#,
            error_words_match!("$4"),
            "))"
        )
    };
}

/// The live-job filter without its error words (`$4`): what the error search's newest-first
/// probe reads before it looks at the words (see [`JOB_SEARCH`]).
macro_rules! live_filter_except_error_words {
    () => {
        concat!(
            r#"
        where ($1::text is null or queue = $1)
          and ($2::text is null or kind = $2)
          and ($3::jsonb is null or payload @> $3::jsonb)
          and ($6::timestamptz is null or created_at >= $6)
          and ($7::timestamptz is null or created_at < $7)
          -- Error groups hold dead jobs only.
          and $8::bigint is null
          and "#,
            live_state_is!("$5")
        )
    };
}

/// Whether a row's last error has the words of the text parameter `$words` (the expression
/// both tables' full-text indexes are built on).
macro_rules! error_words_match {
    ($words:literal) => {
        concat!(
            "to_tsvector('simple', coalesce(last_error, '')) @@ websearch_to_tsquery('simple', ",
            $words,
            ")"
        )
    };
}

/// The `where` clause of the dead-job filter: `$1`..`$4` as for live jobs, `$5` include
/// discarded, `$6`/`$7` died from/until, `$8` error group.
macro_rules! dead_filter {
    () => {
        concat!(
            dead_filter_except_error_words!(),
            " and ($4::text is null or ",
            error_words_match!("$4"),
            ")"
        )
    };
}

/// The dead-job filter without its error words (`$4`), as for live jobs.
macro_rules! dead_filter_except_error_words {
    () => {
        r#"
        where ($1::text is null or queue = $1)
          and ($2::text is null or kind = $2)
          and ($3::jsonb is null or payload @> $3::jsonb)
          and ($5 or discarded_at is null)
          and ($6::timestamptz is null or died_at >= $6)
          and ($7::timestamptz is null or died_at < $7)
          and ($8::bigint is null or group_id = $8)
        "#
    };
}

/// Binds a filter's arguments in the order the filter clauses number them: `$1` queue, `$2`
/// kind, `$3` payload, `$4` error words, `$5` the state (live) or include-discarded flag (dead),
/// `$6`/`$7` the time range, `$8` the error group. One place, so list and count can never bind them differently.
macro_rules! bind_filter {
    ($query:expr, $filter:expr, $fifth:expr) => {
        $query
            .bind($filter.queue)
            .bind($filter.kind)
            .bind($filter.payload_contains.as_deref())
            .bind($filter.error_search)
            .bind($fifth)
            .bind($filter.since)
            .bind($filter.until)
            .bind($filter.group)
    };
}

/// Up to a page (`$10`) of the newest `$pages` pages' worth of waiting jobs that failed
/// (`jobs_failed_waiting`), below the cursor `$9`, whose error has the words `$4`: read newest
/// first, stopping at a full page.
macro_rules! newest_failed_live_hits {
    ($pages:literal, $and:literal) => {
        concat!(
            "select * from (select ",
            job_columns!(),
            " from backstop.jobs ",
            live_filter_except_error_words!(),
            " and $4::text is not null and last_error is not null and locked_by is null
                  and ($9::bigint is null or id < $9)
                order by id desc limit ",
            $pages,
            " * $10) newest_failed
            where ",
            error_words_match!("$4"),
            $and,
            " order by id desc limit $10"
        )
    };
}

/// The live-job list: the filter, `$9` the last id of the previous page, `$10` the page size.
///
/// Waiting jobs (`locked_by is null`) and running ones are searched apart and merged. The
/// live table's search indexes cover waiting jobs only (so claiming never pays for them), and
/// the planner uses a partial index only when the query states its predicate; the running half
/// is a few rows read through `jobs_locked`.
///
/// Error words are searched in steps, because no estimate tells which way is fast: the
/// planner multiplies the frequencies of a pasted message's words (and of `last_error is not
/// null`) and expects a handful of matches where there are hundreds of thousands; the full-text
/// index then reads every one of them and sorts (2 s for a common message at 5 M live jobs).
/// So the newest waiting jobs that failed (`jobs_failed_waiting`) are read first, newest
/// first, their words checked one by one, stopping at a full page: 10 pages' worth, then, if
/// a quarter page or more matched there, 40 pages' worth. A common error fills the page within
/// those. Only when it does not (a rare error, or one common long ago) are the older failed
/// jobs searched through the full-text index, whose matches are then few or close together;
/// that step is written so that no newest-first scan can serve it (`id + 0`), since the
/// planner, expecting many matches, would otherwise walk every failed job to find a rare one.
const JOB_SEARCH: &str = concat!(
    "with first_hits as materialized (",
    newest_failed_live_hits!("10", ""),
    "),
    more_hits as materialized (",
    newest_failed_live_hits!(
        "40",
        " and (select count(*) from first_hits) between $10 / 4 and $10 - 1"
    ),
    "),
    error_hits as materialized (
        select * from more_hits
        union all
        select * from first_hits where not exists (select from more_hits))
    select * from ((select ",
    job_columns!(),
    " from backstop.jobs ",
    live_filter!(),
    " and $4::text is null and locked_by is null and ($9::bigint is null or id < $9) order by id desc limit $10)
    union all
    (select * from error_hits)
    union all
    (select ",
    job_columns!(),
    " from backstop.jobs where id in (select id from backstop.jobs ",
    live_filter!(),
    " and $4::text is not null and locked_by is null
          and (select count(*) from error_hits) < $10
          -- Older than the failed jobs read above (none if there were fewer: all were read).
          and id < (select id from backstop.jobs ",
    live_filter_except_error_words!(),
    " and $4::text is not null and last_error is not null and locked_by is null
                      and ($9::bigint is null or id < $9)
                    order by id desc
                    offset (case when (select count(*) from first_hits) between $10 / 4 and $10 - 1
                                 then 40 else 10 end) * $10 - 1
                    limit 1)
        order by id + 0 desc limit $10))
    union all
    (select ",
    job_columns!(),
    " from backstop.jobs ",
    live_filter!(),
    " and locked_by is not null and ($9::bigint is null or id < $9) order by id desc limit $10)) halves
    order by id desc
    limit $10"
);

/// Live jobs newest first, keyset-paginated on `id` (the primary key: deep pages cost the same
/// as the first). `state` is `scheduled`, `queued`, `running`, `retrying` or `None` for all.
pub(crate) async fn job_search<'e, E: PgExecutor<'e>>(
    executor: E,
    state: Option<&str>,
    filter: &FilterArgs<'_>,
    before_id: Option<i64>,
    limit: i64,
) -> sqlx::Result<Vec<JobRecord>> {
    bind_filter!(sqlx::query_as(JOB_SEARCH), filter, state)
        .bind(before_id)
        .bind(limit)
        .fetch_all(executor)
        .await
}

/// Up to a page (`$11`) of the newest `$pages` pages' worth of dead jobs, below the cursor
/// `$9`/`$10`, whose error has the words `$4`, as for live jobs.
macro_rules! newest_dead_hits {
    ($pages:literal, $and:literal) => {
        concat!(
            "select * from (select ",
            dead_columns!(),
            " from backstop.dead_jobs ",
            dead_filter_except_error_words!(),
            " and $4::text is not null and ($9::timestamptz is null or (died_at, id) < ($9, $10))
                order by died_at desc, id desc limit ",
            $pages,
            " * $11) newest
            where ",
            error_words_match!("$4"),
            $and,
            " order by died_at desc, id desc limit $11"
        )
    };
}

/// The dead-job list: the filter, `$9`/`$10` the previous page's last `(died_at, id)`, `$11`
/// the page size. Error words are searched in the steps [`JOB_SEARCH`] explains: here a pasted
/// common message took 0.9 s on a million dead jobs, and a word that matches nothing 17 s (the
/// planner expected it in one row of 200 and walked the table newest first).
const DEAD_JOB_SEARCH: &str = concat!(
    "with first_hits as materialized (",
    newest_dead_hits!("10", ""),
    "),
    more_hits as materialized (",
    newest_dead_hits!("40", " and (select count(*) from first_hits) between $11 / 4 and $11 - 1"),
    "),
    error_hits as materialized (
        select * from more_hits
        union all
        select * from first_hits where not exists (select from more_hits))
    select * from ((select ",
    dead_columns!(),
    " from backstop.dead_jobs ",
    dead_filter!(),
    " and $4::text is null and ($9::timestamptz is null or (died_at, id) < ($9, $10))
        order by died_at desc, id desc limit $11)
    union all
    (select * from error_hits)
    union all
    (select ",
    dead_columns!(),
    " from backstop.dead_jobs where id in (select id from backstop.dead_jobs ",
    dead_filter!(),
    " and $4::text is not null
          and (select count(*) from error_hits) < $11
          and (died_at, id) < (select died_at, id from backstop.dead_jobs ",
    dead_filter_except_error_words!(),
    " and $4::text is not null and ($9::timestamptz is null or (died_at, id) < ($9, $10))
                               order by died_at desc, id desc
                               offset (case when (select count(*) from first_hits) between $11 / 4 and $11 - 1
                                            then 40 else 10 end) * $11 - 1
                               limit 1)
        order by died_at + interval '0 s' desc, id desc limit $11))) found
    order by died_at desc, id desc
    limit $11"
);

/// Dead jobs newest first, keyset-paginated on `(died_at, id)`; every filter has an index
/// (see the console migration).
pub(crate) async fn dead_job_search<'e, E: PgExecutor<'e>>(
    executor: E,
    filter: &FilterArgs<'_>,
    include_discarded: bool,
    before: Option<(DateTime<Utc>, i64)>,
    limit: i64,
) -> sqlx::Result<Vec<DeadJob>> {
    let (before_at, before_id) = before.unzip();
    bind_filter!(sqlx::query_as(DEAD_JOB_SEARCH), filter, include_discarded)
        .bind(before_at)
        .bind(before_id)
        .bind(limit)
        .fetch_all(executor)
        .await
}

/// The planner's row estimate for a table: free, and refreshed by autovacuum's analyze.
/// Negative (never analysed) comes back as `None`.
pub(crate) async fn table_row_estimate<'e, E: PgExecutor<'e>>(
    executor: E,
    table: &str,
) -> sqlx::Result<Option<f64>> {
    let estimate: Option<f32> =
        sqlx::query_scalar("select reltuples from pg_class where oid = to_regclass($1)")
            .bind(table)
            .fetch_optional(executor)
            .await?;
    Ok(estimate.filter(|n| *n >= 0.0).map(f64::from))
}

/// Jobs per queue and state, counted over a `sample_percent` block sample of both tables and
/// scaled back up (100 means every row: exact). A block sample reads that share of the table's
/// pages, so the cost is bounded however large the tables grow.
pub(crate) async fn queue_counts<'e, E: PgExecutor<'e>>(
    executor: E,
    live_sample_percent: f64,
    dead_sample_percent: f64,
) -> sqlx::Result<Vec<QueueCounts>> {
    sqlx::query_as(concat!(
        r#"
        with live as (
            select queue,
                   count(*) filter (where "#,
        live_state_is!("'scheduled'"),
        r#") as scheduled,
                   count(*) filter (where "#,
        live_state_is!("'queued'"),
        r#") as queued,
                   count(*) filter (where "#,
        live_state_is!("'running'"),
        r#") as running,
                   count(*) filter (where "#,
        live_state_is!("'retrying'"),
        r#") as retrying,
                   min(run_at) filter (where "#,
        live_state_is!("'queued'"),
        r#") as oldest_queued
            -- tablesample system (100) reads every page: the exact count.
            from backstop.jobs tablesample system ($1::float4)
            group by queue
        ),
        dead as (
            select queue, count(*) as dead
            from backstop.dead_jobs tablesample system ($2::float4)
            where discarded_at is null
            group by queue
        ),
        -- Workers seen in the last minute (a heartbeat is every few seconds), or within their
        -- own heartbeat timeout if longer (a process that beats rarely is alive until then):
        -- how many serve each queue and how many of its jobs they run at once.
        slots as (
            select q.queue, count(*) as workers, coalesce(sum(q.concurrency), 0) as concurrency
            from backstop.workers w, unnest(w.queues, w.concurrency) as q(queue, concurrency)
            where w.last_seen > now() - greatest(interval '1 minute', w.heartbeat_timeout)
              and q.queue is not null
            group by q.queue
        ),
        names as (
            select queue from live union select queue from dead union select name from backstop.queues
            union select queue from slots
        )
        select n.queue,
               (coalesce(l.scheduled, 0) * 100 / $1)::bigint as scheduled,
               (coalesce(l.queued, 0) * 100 / $1)::bigint as queued,
               (coalesce(l.running, 0) * 100 / $1)::bigint as running,
               (coalesce(l.retrying, 0) * 100 / $1)::bigint as retrying,
               (coalesce(d.dead, 0) * 100 / $2)::bigint as dead,
               l.oldest_queued,
               coalesce(q.paused, false) as paused,
               coalesce(s.workers, 0) as workers,
               coalesce(s.concurrency, 0)::bigint as concurrency,
               ($1 >= 100 and $2 >= 100) as exact
        from names n
        left join live l on l.queue = n.queue
        left join dead d on d.queue = n.queue
        left join backstop.queues q on q.name = n.queue
        left join slots s on s.queue = n.queue
        order by n.queue
        "#
    ))
    .bind(live_sample_percent)
    .bind(dead_sample_percent)
    .fetch_all(executor)
    .await
}

/// A worker process and when it last checked in.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct WorkerRow {
    pub id: String,
    pub queues: Vec<String>,
    pub started_at: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
}

pub(crate) async fn worker_list<'e, E: PgExecutor<'e>>(executor: E) -> sqlx::Result<Vec<WorkerRow>> {
    sqlx::query_as("select id, queues, started_at, last_seen from backstop.workers order by started_at")
        .fetch_all(executor)
        .await
}

/// How many live jobs match, up to `$9`: waiting and running jobs counted apart, as in
/// [`JOB_SEARCH`] and for the same reason.
const JOB_COUNT: &str = concat!(
    "select least($9,
        (select count(*) from (select 1 from backstop.jobs ",
    live_filter!(),
    " and locked_by is null limit $9) waiting)
      + (select count(*) from (select 1 from backstop.jobs ",
    live_filter!(),
    " and locked_by is not null limit $9) running))"
);

/// How many live jobs match, counted up to `cap` rows (the count stops there, so it costs at
/// most `cap` index or heap reads however large the table is).
pub(crate) async fn job_count<'e, E: PgExecutor<'e>>(
    executor: E,
    state: Option<&str>,
    filter: &FilterArgs<'_>,
    cap: i64,
) -> sqlx::Result<i64> {
    bind_filter!(sqlx::query_scalar(JOB_COUNT), filter, state).bind(cap).fetch_one(executor).await
}

/// How many dead jobs match, counted up to `cap` rows.
pub(crate) async fn dead_job_count<'e, E: PgExecutor<'e>>(
    executor: E,
    filter: &FilterArgs<'_>,
    include_discarded: bool,
    cap: i64,
) -> sqlx::Result<i64> {
    bind_filter!(
        sqlx::query_scalar(concat!(
            "select count(*) from (select 1 from backstop.dead_jobs ",
            dead_filter!(),
            " limit $9) capped"
        )),
        filter,
        include_discarded
    )
    .bind(cap)
    .fetch_one(executor)
    .await
}

#[cfg(test)]
mod tests {
    //! The live table's searches must reach its partial search indexes, which the planner only
    //! uses when the query spells out their predicates: a rewrite of the filter that loses one
    //! turns a 1 ms search into a scan of millions of rows, with every result still right.

    use super::*;
    use sqlx::PgPool;

    /// 20,000 alike waiting jobs and three rare ones (one of them running), analysed.
    async fn seed(pool: &PgPool) {
        sqlx::query(
            "insert into backstop.jobs (kind, payload)
             select 'common', jsonb_build_object('user_id', i % 100) from generate_series(1, 20000) i",
        )
        .execute(pool)
        .await
        .unwrap();
        sqlx::query(
            r#"insert into backstop.jobs (kind, queue, payload, attempts, last_error, locked_by, locked_at)
               values ('rare', 'default', '{"user_id": -7}', 1, 'disk quota exceeded', null, null),
                      ('rare', 'default', '{"user_id": -7}', 1, 'disk quota exceeded', null, null),
                      ('rare', 'default', '{"user_id": -7}', 1, 'disk quota exceeded', 'w1', now())"#,
        )
        .execute(pool)
        .await
        .unwrap();
        sqlx::query("analyze backstop.jobs").execute(pool).await.unwrap();
    }

    /// The search's results, and the indexes its plan reads.
    async fn search(pool: &PgPool, state: Option<&str>, filter: &FilterArgs<'_>) -> (usize, String) {
        let found = job_search(pool, state, filter, None, 50).await.unwrap().len();
        let explain = format!("explain (format json) {JOB_SEARCH}");
        let plan: serde_json::Value =
            bind_filter!(sqlx::query_scalar(sqlx::AssertSqlSafe(explain)), filter, state)
                .bind(None::<i64>)
                .bind(50_i64)
                .fetch_one(pool)
                .await
                .unwrap();
        (found, plan.to_string())
    }

    /// The state rule is written twice for live jobs, in SQL (`live_state_is!`: the search,
    /// the count and the per-queue counts) and in Rust (`JobRecord::state`): on jobs in every
    /// live state, each agrees with Rust.
    #[sqlx::test(migrator = "crate::MIGRATOR")]
    async fn live_state_rule_agrees_with_rust(pool: PgPool) {
        use crate::state::JobState;
        // (run in, attempts, locked): times an hour away, so the database's clock and this
        // process's agree on which side of now they are.
        let jobs = [
            ("1 hour", 0, false),  // scheduled
            ("-1 hour", 0, false), // queued
            ("-1 hour", 0, true),  // running, first attempt
            ("1 hour", 2, true),   // running, a retry
            ("1 hour", 1, false),  // retrying, backing off
            ("-1 hour", 1, false), // retrying, due
        ];
        for (run_in, attempts, locked) in jobs {
            sqlx::query(
                "insert into backstop.jobs (kind, payload, run_at, attempts, locked_by, locked_at)
                 values ('k', '{}', now() + $1::interval, $2,
                         case when $3 then 'worker-1' end, case when $3 then now() end)",
            )
            .bind(run_in)
            .bind(attempts)
            .bind(locked)
            .execute(&pool)
            .await
            .unwrap();
        }
        let now = Utc::now();
        let all = job_search(&pool, None, &FilterArgs::default(), None, 100).await.unwrap();
        assert_eq!(all.len(), jobs.len());
        let counts = queue_counts(&pool, 100.0, 100.0).await.unwrap();
        let [counts] = counts.as_slice() else { panic!("one queue: {counts:?}") };
        for state in JobState::ALL {
            let expected: Vec<i64> =
                all.iter().filter(|job| job.state(now) == state).map(|job| job.id).collect();
            let found: Vec<i64> = sqlx::query_scalar(concat!(
                "select id from backstop.jobs where ",
                live_state_is!("$1"),
                " order by id desc"
            ))
            .bind(state.as_str())
            .fetch_all(&pool)
            .await
            .unwrap();
            assert_eq!(found, expected, "{state}: the SQL rule and JobRecord::state agree");
            let searched: Vec<i64> =
                job_search(&pool, Some(state.as_str()), &FilterArgs::default(), None, 100)
                    .await
                    .unwrap()
                    .iter()
                    .map(|job| job.id)
                    .collect();
            assert_eq!(searched, expected, "{state}: the search");
            let counted = job_count(&pool, Some(state.as_str()), &FilterArgs::default(), 100).await.unwrap();
            assert_eq!(counted, expected.len() as i64, "{state}: the count");
            let per_queue = match state {
                JobState::Scheduled => counts.scheduled,
                JobState::Queued => counts.queued,
                JobState::Running => counts.running,
                JobState::Retrying => counts.retrying,
                // Counted in backstop.dead_jobs; no live job is dead.
                JobState::Dead => counts.dead,
            };
            assert_eq!(per_queue, expected.len() as i64, "{state}: the per-queue counts");
            if state == JobState::Dead {
                assert!(expected.is_empty());
            } else {
                assert!(!expected.is_empty(), "a job in every live state: none {state}");
            }
        }
    }

    #[sqlx::test(migrator = "crate::MIGRATOR")]
    async fn rare_live_matches_are_found_through_the_search_indexes(pool: PgPool) {
        seed(&pool).await;
        let cases = [
            ("kind", None, FilterArgs { kind: Some("rare"), ..Default::default() }, 3, "jobs_kind_waiting"),
            (
                "queue and kind",
                None,
                FilterArgs { queue: Some("default"), kind: Some("rare"), ..Default::default() },
                3,
                "jobs_kind_waiting",
            ),
            (
                "payload",
                None,
                FilterArgs { payload_contains: Some(r#"{"user_id": -7}"#.into()), ..Default::default() },
                3,
                "jobs_payload_waiting",
            ),
            (
                "error words",
                None,
                FilterArgs { error_search: Some("quota"), ..Default::default() },
                3,
                // The newest failed jobs first; then the older ones, here so few that the
                // planner reads them all through the same index rather than the full-text one.
                "jobs_failed_waiting",
            ),
            ("retrying", Some("retrying"), FilterArgs::default(), 2, "jobs_retrying"),
        ];
        for (what, state, filter, expected, index) in cases {
            let (found, plan) = search(&pool, state, &filter).await;
            assert_eq!(found, expected, "{what}: the running job counts too, unless the state excludes it");
            assert!(plan.contains(index), "{what} should read {index}: {plan}");
            let counted = job_count(&pool, state, &filter, 100).await.unwrap();
            assert_eq!(counted, expected as i64, "{what}: the count agrees with the list");
        }
        // Running jobs are outside the waiting-only indexes: found through jobs_locked.
        let (found, plan) =
            search(&pool, None, &FilterArgs { kind: Some("rare"), ..Default::default() }).await;
        assert!(plan.contains("jobs_locked") && found == 3, "{plan}");
    }

    /// Failed jobs whose errors are common, rare, medium, common long ago (an outage), or
    /// absent: 1,500 live (a few of them running or retried from the dead letters) and 1,500
    /// dead, with the same errors.
    async fn seed_errors(pool: &PgPool) {
        let error = r#"case
                 when i % 97 = 0 then 'disk quota exceeded on /var/data'
                 when i between 200 and 260 then 'connection reset by peer (os error 104)'
                 when i % 25 = 1 then 'certificate expired for hooks.customer.example'
                 when i % 3 = 0 then 'timeout after 30s calling api.partner.example'
                 when i % 3 = 1 then format('HTTP 503 from https://api.partner.example/v2/orders/%s', i)
               end"#;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "insert into backstop.jobs (kind, payload, attempts, last_error, locked_by, locked_at)
             select 'k', '{{}}', case when i % 11 = 0 then 0 else 1 end, {error},
                    case when i % 13 = 0 then 'w1' end, case when i % 13 = 0 then now() end
             from generate_series(1, 1500) i"
        )))
        .execute(pool)
        .await
        .unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "insert into backstop.dead_jobs (id, queue, kind, payload, priority, attempts, max_attempts,
                                             errors, last_error, created_at, died_at, reason, discarded_at)
             select 100000 + i, 'default', 'k', '{{}}', 0, 5, 5, '[]', {error}, now(),
                    now() - make_interval(secs => (i * 7919) % 1500), 'exhausted',
                    case when i % 17 = 0 then now() end
             from generate_series(1, 1500) i"
        )))
        .execute(pool)
        .await
        .unwrap();
        sqlx::query("analyze backstop.jobs").execute(pool).await.unwrap();
        sqlx::query("analyze backstop.dead_jobs").execute(pool).await.unwrap();
    }

    const ERROR_SEARCHES: [&str; 7] = [
        "timeout",
        "timeout after 30s calling api.partner.example",
        "503 -timeout",
        "certificate expired",
        "reset",
        "quota",
        "nosuchword",
    ];

    /// The error search reads the newest failed jobs first and the full-text index only for
    /// what they lack: every page, at every page size, is what one plain query says it is.
    #[sqlx::test(migrator = "crate::MIGRATOR")]
    async fn error_search_pages_are_the_newest_matches_whichever_step_finds_them(pool: PgPool) {
        seed_errors(&pool).await;
        for words in ERROR_SEARCHES {
            let filter = FilterArgs { error_search: Some(words), ..Default::default() };
            let live: Vec<i64> = sqlx::query_scalar(concat!(
                "select id from backstop.jobs where last_error is not null and ",
                error_words_match!("$1"),
                " order by id desc"
            ))
            .bind(words)
            .fetch_all(&pool)
            .await
            .unwrap();
            let dead: Vec<i64> = sqlx::query_scalar(concat!(
                "select id from backstop.dead_jobs where discarded_at is null and ",
                error_words_match!("$1"),
                " order by died_at desc, id desc"
            ))
            .bind(words)
            .fetch_all(&pool)
            .await
            .unwrap();
            assert!(words == "nosuchword" || !live.is_empty(), "{words}: the seed has matches");
            for limit in [1, 3, 4, 10, 50, 1000] {
                let (mut found, mut before) = (Vec::new(), None);
                loop {
                    let page = job_search(&pool, None, &filter, before, limit).await.unwrap();
                    assert!(page.len() as i64 <= limit);
                    let Some(last) = page.last() else { break };
                    before = Some(last.id);
                    found.extend(page.iter().map(|job| job.id));
                }
                assert_eq!(found, live, "{words}, live, pages of {limit}");
                let (mut found, mut before) = (Vec::new(), None);
                loop {
                    let page = dead_job_search(&pool, &filter, false, before, limit).await.unwrap();
                    assert!(page.len() as i64 <= limit);
                    let Some(last) = page.last() else { break };
                    before = Some((last.died_at, last.id));
                    found.extend(page.iter().map(|job| job.id));
                }
                assert_eq!(found, dead, "{words}, dead, pages of {limit}");
            }
        }
        // With another filter: the newest failed jobs read first are those of the state.
        let filter = FilterArgs { error_search: Some("reset"), ..Default::default() };
        let retrying: Vec<i64> = job_search(&pool, Some("retrying"), &filter, None, 4)
            .await
            .unwrap()
            .iter()
            .map(|j| j.id)
            .collect();
        let expected: Vec<i64> = sqlx::query_scalar(
            "select id from backstop.jobs where last_error like 'connection reset%'
             and locked_by is null and attempts > 0 order by id desc limit 4",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        assert_eq!(retrying, expected);
    }
}
