//! Cron across processes, missed ticks and key cleanup. (Migrations: `migrations.rs`.)

mod common;

use std::time::Duration;

use backstop::{CronSchedule, MissedTicks, NewJob};
use common::{RunningRunner, count, pool, test_runner, wait_for_count};
use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

fn every_second() -> CronSchedule {
    // Its jobs go to a queue nobody works, so they stay for the test to count.
    CronSchedule::new("every-second", "* * * * * *", NewJob::from_json("report", &json!({})).queue("reports"))
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn three_processes_run_each_cron_tick_once(_: PgPoolOptions, opts: PgConnectOptions) {
    let pool = pool(opts).await;
    let runners: Vec<RunningRunner> = (0..3)
        .map(|i| {
            RunningRunner::start(
                test_runner(&pool).worker_id(format!("w{i}")).queue("default", 1).cron(every_second()),
            )
        })
        .collect();
    wait_for_count(&pool, "select least(count(*), 4) from backstop.jobs", 4, Duration::from_secs(15)).await;
    for r in runners {
        r.stop().await;
    }
    let ticks: Vec<String> = sqlx::query_scalar("select unique_key from backstop.jobs order by unique_key")
        .fetch_all(&pool)
        .await
        .unwrap();
    let times: Vec<chrono::DateTime<chrono::Utc>> =
        ticks.iter().map(|k| k.strip_prefix("cron:every-second:").unwrap().parse().unwrap()).collect();
    // One job per tick, and no tick skipped between the first and the last.
    let span = (*times.last().unwrap() - times[0]).num_seconds();
    assert_eq!(i64::try_from(times.len()).unwrap(), span + 1, "{ticks:?}");
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn missed_ticks_follow_the_chosen_policy(_: PgPoolOptions, opts: PgConnectOptions) {
    let pool = pool(opts).await;
    for (policy, expected) in
        [(MissedTicks::RunOnce, 1), (MissedTicks::RunAll { max: 10 }, 5), (MissedTicks::RunAll { max: 3 }, 3)]
    {
        sqlx::query("delete from backstop.jobs").execute(&pool).await.unwrap();
        let schedule = || {
            CronSchedule::new("minutely", "* * * * *", NewJob::from_json("m", &json!({})).queue("reports"))
                .missed_ticks(policy)
        };
        // Register, then pretend the last tick was five minutes ago (downtime).
        let runner = RunningRunner::start(test_runner(&pool).queue("default", 1).cron(schedule()));
        wait_for_count(&pool, "select count(*) from backstop.cron_schedules", 1, Duration::from_secs(10))
            .await;
        runner.stop().await;
        sqlx::query("delete from backstop.jobs").execute(&pool).await.unwrap();
        sqlx::query("update backstop.cron_schedules set last_tick = date_trunc('minute', now()) - interval '5 minutes'")
            .execute(&pool).await.unwrap();
        let runner = RunningRunner::start(test_runner(&pool).queue("default", 1).cron(schedule()));
        wait_for_count(
            &pool,
            "select count(*) from backstop.cron_schedules where last_tick > now() - interval '1 minute'",
            1,
            Duration::from_secs(10),
        )
        .await;
        runner.stop().await;
        assert_eq!(count(&pool, "select count(*) from backstop.jobs").await, expected, "{policy:?}");
    }
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn maintenance_deletes_idempotency_keys_past_their_age(_: PgPoolOptions, opts: PgConnectOptions) {
    let pool = pool(opts).await;
    sqlx::query("insert into backstop.idempotency_keys (key, created_at) values ('old', now() - interval '31 days'), ('new', now() - interval '29 days')")
        .execute(&pool).await.unwrap();
    let runner = RunningRunner::start(test_runner(&pool).maintenance_interval(Duration::from_millis(100)));
    wait_for_count(
        &pool,
        "select count(*) from backstop.idempotency_keys where key = 'old'",
        0,
        Duration::from_secs(10),
    )
    .await;
    runner.stop().await;
    assert_eq!(
        count(&pool, "select count(*) from backstop.idempotency_keys where key = 'new'").await,
        1,
        "30 days by default"
    );
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn a_bad_cron_expression_is_refused_at_build(_: PgPoolOptions, opts: PgConnectOptions) {
    let pool = pool(opts).await;
    let err = test_runner(&pool)
        .cron(CronSchedule::new("typo", "* * * *", NewJob::from_json("x", &json!({}))))
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("typo"), "{err}");
}

/// Sizes of the payload search index and of the jobs table, in bytes.
async fn payload_index_and_table_bytes(pool: &sqlx::PgPool) -> (i64, i64) {
    sqlx::query_as(
        "select pg_relation_size('backstop.jobs_payload_waiting'), pg_relation_size('backstop.jobs')",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn search_indexes_that_outgrow_the_table_are_rebuilt_and_still_find_jobs(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let pool = pool(opts).await;
    // Steady load with ids in payloads: every job brings keys the GIN index keeps after the job
    // is gone and vacuumed (`runtime::index_upkeep`).
    for round in 0..30 {
        let jobs = (0..5_000)
            .map(|i| NewJob::from_json("churn", &json!({"order": round * 5_000 + i})).queue("nobody"));
        backstop::enqueue_many(&pool, jobs).await.unwrap();
        sqlx::query("delete from backstop.jobs").execute(&pool).await.unwrap();
        sqlx::query("vacuum backstop.jobs").execute(&pool).await.unwrap();
    }
    let kept = (0..10).map(|i| NewJob::from_json("kept", &json!({"order": 1_000_000 + i})).queue("nobody"));
    backstop::enqueue_many(&pool, kept).await.unwrap();
    // What an interrupted `reindex concurrently` leaves: an invalid index named `<index>_ccnew`.
    let failed = sqlx::query("create unique index concurrently jobs_kind_ccnew on backstop.jobs (kind)")
        .execute(&pool)
        .await;
    assert!(failed.is_err(), "ten jobs of one kind: the unique build fails and leaves it invalid");
    let (before, table) = payload_index_and_table_bytes(&pool).await;
    assert!(before > table && before > 1 << 20, "the churn grew the index: {before} bytes, table {table}");

    let rebuilt = backstop::testing::rebuild_outgrown_indexes(&pool, 1 << 20).await.unwrap();

    assert!(rebuilt.contains(&"jobs_payload_waiting".to_owned()), "{rebuilt:?}");
    let (after, _) = payload_index_and_table_bytes(&pool).await;
    assert!(after * 10 < before, "rebuilt: {after} bytes, was {before}");
    let leftovers: i64 = sqlx::query_scalar("select count(*) from pg_class where relname like '%\\_ccnew%'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(leftovers, 0, "the invalid leftover is dropped");
    let valid: bool = sqlx::query_scalar(
        "select indisvalid from pg_index where indexrelid = 'backstop.jobs_payload_waiting'::regclass",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(valid);
    // The rebuilt index serves a payload search (the planner is made to use it).
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("analyze backstop.jobs").execute(&mut *tx).await.unwrap();
    sqlx::query("set local enable_seqscan = off").execute(&mut *tx).await.unwrap();
    sqlx::query("set local enable_indexscan = off").execute(&mut *tx).await.unwrap();
    const SEARCH: &str =
        "select kind from backstop.jobs where payload @> '{\"order\": 1000003}' and locked_by is null";
    let plan: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("explain {SEARCH}")))
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    assert!(plan.iter().any(|line| line.contains("jobs_payload_waiting")), "{plan:#?}");
    let found: Vec<String> = sqlx::query_scalar(SEARCH).fetch_all(&mut *tx).await.unwrap();
    assert_eq!(found, ["kept"]);
    drop(tx);
    let again = backstop::testing::rebuild_outgrown_indexes(&pool, 1 << 20).await.unwrap();
    assert!(again.is_empty(), "a fresh index is left alone: {again:?}");
}
