//! The database restarts under running workers: they reconnect and carry on, no job lost.
//! Alone in its own test binary because it stops the shared test server.

mod common;

use std::time::Duration;

use backstop::NewJob;
use common::{
    Action, RunningRunner, Scripted, ScriptedWorker, count, pg_ctl, pool, test_runner, wait_for,
    wait_for_count,
};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

#[sqlx::test(migrator = "backstop::MIGRATOR")]
async fn workers_survive_a_database_restart_without_losing_jobs(_: PgPoolOptions, opts: PgConnectOptions) {
    if std::env::var("BACKSTOP_PG_CTL").is_err() {
        // Only the private cluster can be restarted by a test; an external DATABASE_URL is
        // someone else's server.
        eprintln!("SKIPPED: needs the private cluster from `backstop with-postgres`");
        return;
    }
    let pool = pool(opts).await;
    let worker = ScriptedWorker::default();
    let runner = RunningRunner::start(test_runner(&pool).register(worker.clone()));
    let before = (0..200).map(|i| NewJob::new(&Scripted::new(format!("before{i}"), Action::SleepMillis(5))));
    backstop::enqueue_many(&pool, before).await.unwrap();
    // Restart only once the workers are mid-run: some jobs done, others still waiting.
    wait_for("the first jobs to complete", Duration::from_secs(15), || {
        let worker = worker.clone();
        async move { (worker.runs().len() >= 20).then_some(()) }
    })
    .await;

    // Stop the server while jobs are in flight, keep it down for a while, start it again.
    pg_ctl("stop -m fast -w");
    let down_for = Duration::from_secs(2);
    tokio::time::sleep(down_for).await; // the outage itself, not a wait for an outcome
    let options = std::env::var("BACKSTOP_PG_OPTIONS").unwrap();
    pg_ctl(&format!("start -w -o \"{options}\""));

    let after = (0..200).map(|i| NewJob::new(&Scripted::new(format!("after{i}"), Action::Succeed)));
    backstop::enqueue_many(&pool, after).await.expect("the pool reconnects");
    wait_for_count(&pool, "select count(*) from backstop.jobs", 0, Duration::from_secs(60)).await;
    runner.stop().await;

    let mut labels: Vec<String> = worker.runs().into_iter().map(|(l, _)| l).collect();
    labels.sort();
    labels.dedup();
    assert_eq!(labels.len(), 400, "every job ran at least once");
    assert_eq!(count(&pool, "select count(*) from backstop.dead_jobs").await, 0);
}
