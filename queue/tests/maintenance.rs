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
