//! Queue health readings against a real PostgreSQL: the oldest ready job per queue from the
//! claim index agrees with a full scan on any mix of queues, priorities, times and claims;
//! workers, pauses and death rates are read as the overview and the counters say; an open
//! problem is announced and cleared once however many checks race.

mod common;

use std::time::Duration;

use backstop::admin::{self, QueueHealth};
use chrono::{DateTime, Utc};
use common::pool;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use serde_json::json;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

const TEN_MINUTES: Duration = Duration::from_secs(600);

/// One generated job: queue index, priority, run_at offset in seconds from now (negative:
/// ready), attempts made, and whether a worker holds it.
type JobSpec = (u8, i16, i32, i32, bool);

async fn insert_jobs(pool: &PgPool, jobs: &[JobSpec]) {
    for (queue, priority, offset, attempts, locked) in jobs {
        sqlx::query(
            "insert into backstop.jobs (queue, kind, priority, run_at, attempts, locked_by, locked_at)
             values ($1, 'k', $2, now() + make_interval(secs => $3), $4,
                     case when $5 then 'someone' end, case when $5 then now() end)",
        )
        .bind(format!("q{queue}"))
        .bind(priority)
        .bind(f64::from(*offset))
        .bind(attempts)
        .bind(locked)
        .execute(pool)
        .await
        .unwrap();
    }
}

/// The same answers by brute force: every unclaimed ready job, per queue.
async fn scanned<'e>(executor: impl sqlx::PgExecutor<'e>) -> Vec<(String, Option<DateTime<Utc>>, i64)> {
    sqlx::query_as(
        "select queue, min(run_at), count(*) from backstop.jobs
         where locked_by is null and run_at <= now() group by queue order by queue",
    )
    .fetch_all(executor)
    .await
    .unwrap()
}

fn ready(reading: &[QueueHealth]) -> Vec<(String, Option<DateTime<Utc>>, i64)> {
    reading
        .iter()
        .filter(|q| q.oldest_waiting.is_some())
        .map(|q| (q.queue.clone(), q.oldest_waiting, q.waiting))
        .collect()
}

fn job_spec() -> impl Strategy<Value = JobSpec> {
    (
        0u8..4,
        prop_oneof![Just(0i16), -5i16..5, Just(i16::MIN), Just(i16::MAX)],
        -7_200i32..600,
        0i32..3,
        any::<bool>(),
    )
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn the_oldest_ready_job_from_the_index_agrees_with_a_full_scan(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let pool = pool(opts).await;
    let mut runner =
        proptest::test_runner::TestRunner::new(ProptestConfig { cases: 24, ..ProptestConfig::default() });
    for _ in 0..24 {
        let jobs = proptest::collection::vec(job_spec(), 0..60).new_tree(&mut runner).unwrap().current();
        sqlx::query("truncate backstop.jobs").execute(&pool).await.unwrap();
        insert_jobs(&pool, &jobs).await;
        // Both read in one transaction: `now()` is the same instant for both.
        let mut tx = pool.begin().await.unwrap();
        let reading = admin::queue_health(&mut *tx, TEN_MINUTES).await.unwrap();
        let expected = scanned(&mut *tx).await;
        tx.commit().await.unwrap();
        assert_eq!(ready(&reading), expected, "jobs: {jobs:?}");
        for queue in &reading {
            if queue.oldest_waiting.is_none() {
                assert_eq!(queue.waiting, 0, "{queue:?}");
            }
        }
    }
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn workers_pauses_and_waiting_counts_are_read_for_each_queue(_: PgPoolOptions, opts: PgConnectOptions) {
    let pool = pool(opts).await;
    insert_jobs(
        &pool,
        &[(0, 0, -30, 0, false), (0, 0, -20, 0, false), (1, 0, -10, 0, false), (2, 0, 60, 0, false)],
    )
    .await;
    sqlx::query(
        "insert into backstop.workers (id, queues, concurrency, last_seen) values
           ('alive', '{q0,q3}', '{4,4}', now()),
           ('gone', '{q1}', '{4}', now() - interval '10 minutes')",
    )
    .execute(&pool)
    .await
    .unwrap();
    admin::pause_queue(&pool, "q1").await.unwrap();

    let reading = admin::queue_health(&pool, TEN_MINUTES).await.unwrap();
    let by_name = |name: &str| {
        reading.iter().find(|q| q.queue == name).unwrap_or_else(|| panic!("{name}: {reading:?}"))
    };
    assert_eq!((by_name("q0").waiting, by_name("q0").workers, by_name("q0").paused), (2, 1, false));
    let wait = by_name("q0").oldest_wait().unwrap();
    assert!(wait >= Duration::from_secs(29) && wait < Duration::from_secs(60), "{wait:?}");
    assert_eq!((by_name("q1").waiting, by_name("q1").workers, by_name("q1").paused), (1, 0, true));
    // Scheduled for later: not waiting, and nothing else makes q2 worth a row.
    assert!(reading.iter().all(|q| q.queue != "q2"), "{reading:?}");
    // Served, with nothing to do.
    assert_eq!((by_name("q3").waiting, by_name("q3").workers, by_name("q3").oldest_waiting), (0, 1, None));
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn deaths_in_the_window_are_compared_with_the_day_before(_: PgPoolOptions, opts: PgConnectOptions) {
    let pool = pool(opts).await;
    // The counters as a day of work leaves them: 2 deaths an hour in `billing` for the 24 hours
    // before the window, then 30 in the last ten minutes; `mail` had its deaths only long ago.
    sqlx::query(
        "insert into backstop.job_stats (minute, queue, kind, dead)
         select date_trunc('minute', now()) - make_interval(mins => 10 + 30 * i), 'billing', 'charge', 1
         from generate_series(0, 46) i
         union all select date_trunc('minute', now()) - interval '3 minutes', 'billing', 'charge', 30
         union all select date_trunc('minute', now()) - interval '3 days', 'mail', 'send', 100",
    )
    .execute(&pool)
    .await
    .unwrap();
    let reading = admin::queue_health(&pool, TEN_MINUTES).await.unwrap();
    let billing = reading.iter().find(|q| q.queue == "billing").unwrap();
    assert_eq!(billing.dead_recent, 30);
    // 47 deaths over the ~23.5 hours the counters cover: about a third per ten minutes.
    assert!((0.3..0.4).contains(&billing.dead_usual), "{billing:?}");
    assert!(reading.iter().all(|q| q.queue != "mail"), "deaths three days ago are not news: {reading:?}");
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn racing_checks_announce_a_problem_once_and_clear_it_once(_: PgPoolOptions, opts: PgConnectOptions) {
    let pool = pool(opts).await;
    let announce = |pool: PgPool| async move {
        let mut tx = pool.begin().await.unwrap();
        let row = admin::health_alert_seen(&mut *tx, "mail", "no_workers").await.unwrap();
        let announced = row.alerted_at.is_none()
            && admin::health_alert_announce(&mut *tx, "mail", "no_workers", &json!({"waiting": 3}))
                .await
                .unwrap();
        tx.commit().await.unwrap();
        announced
    };
    let results = futures_join(8, || announce(pool.clone())).await;
    assert_eq!(results.iter().filter(|a| **a).count(), 1, "{results:?}");
    let open = admin::health_alerts(&pool).await.unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].detail.0, json!({"waiting": 3}));
    assert!(open[0].alerted_at.is_some());

    let clear = |pool: PgPool| async move {
        let mut tx = pool.begin().await.unwrap();
        let closed = admin::health_alert_clear(&mut *tx, "mail", "no_workers").await.unwrap();
        tx.commit().await.unwrap();
        closed.is_some()
    };
    let results = futures_join(8, || clear(pool.clone())).await;
    assert_eq!(results.iter().filter(|c| **c).count(), 1, "{results:?}");
    assert!(admin::health_alerts(&pool).await.unwrap().is_empty());
}

/// Runs `n` copies of a future at once, each on its own task.
async fn futures_join<F, Fut>(n: usize, make: F) -> Vec<bool>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool> + Send + 'static,
{
    let tasks: Vec<_> = (0..n).map(|_| tokio::spawn(make())).collect();
    let mut out = Vec::new();
    for task in tasks {
        out.push(task.await.unwrap());
    }
    out
}

/// At 200,000 ready jobs the reading reads the claim index (one entry per queue and priority,
/// plus the capped count), never the whole table. Checked by PostgreSQL's own scan counters.
#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn the_reading_does_not_scan_the_jobs_table(_: PgPoolOptions, opts: PgConnectOptions) {
    let pool = pool(opts).await;
    sqlx::query(
        "insert into backstop.jobs (queue, kind, priority, run_at)
         select 'q' || (i % 3), 'k', (i % 4)::smallint, now() - make_interval(secs => i % 1000)
         from generate_series(1, 200000) i",
    )
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("analyze backstop.jobs").execute(&pool).await.unwrap();
    let mut conn = pool.acquire().await.unwrap();
    let seq_scans = async |conn: &mut sqlx::PgConnection| -> i64 {
        // Counters reach the shared view when a backend flushes them: make it now.
        sqlx::query("select pg_stat_force_next_flush()").execute(&mut *conn).await.unwrap();
        sqlx::query("select pg_stat_clear_snapshot()").execute(&mut *conn).await.unwrap();
        sqlx::query_scalar("select seq_scan from pg_stat_user_tables where relid = 'backstop.jobs'::regclass")
            .fetch_one(&mut *conn)
            .await
            .unwrap()
    };
    let before = seq_scans(&mut conn).await;
    let reading = admin::queue_health(&mut *conn, TEN_MINUTES).await.unwrap();
    assert_eq!(seq_scans(&mut conn).await, before, "the reading scanned backstop.jobs");
    let capped: Vec<_> =
        scanned(&pool).await.into_iter().map(|(q, at, n)| (q, at, n.min(admin::WAITING_COUNT_CAP))).collect();
    assert_eq!(ready(&reading), capped);
    assert!(reading.iter().all(|q| q.waiting == admin::WAITING_COUNT_CAP), "{reading:?}");
}
